// engine/files.h: the one atomic writer, folders without a shell, outputs that never replace
// inputs, stale temporaries and the run-directory lock, with paths holding spaces, quotes,
// shell syntax and non-ASCII bytes (paths are data).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/files.h"
#include "tests/support/compare.h"

using namespace pneumo;
using pneumo::testing::error_of;
namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

std::vector<std::string> names_in(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A fresh folder under the system's temporary folder whose name is hostile to shells.
std::string scratch_folder(const std::string& test) {
  std::string folder =
      (fs::temp_directory_path() / ("pneumo test_files " + test + " Ann's $(x) \xc3\xa9\xff")).string();
  fs::remove_all(folder);
  return folder;
}

}  // namespace

TEST_CASE("make_directories and write_file_atomic take any bytes in a path; nothing reaches a shell") {
  const std::string root = scratch_folder("write");
  const std::string folder = root + "/a b/'q\"uoted';touch PWNED;/\xe2\x82\xac";
  make_directories(folder);
  CHECK(fs::is_directory(folder));
  make_directories(folder);  // already there: fine
  const std::string path = folder + "/out file.txt";
  write_file_atomic(path, std::string("first"));
  write_file_atomic(path, std::string("second\n\x00 bytes", 14));
  CHECK(read_all(path) == std::string("second\n\x00 bytes", 14));
  CHECK(names_in(folder) == std::vector<std::string>{"out file.txt"});  // no temporary left
  CHECK_FALSE(fs::exists("PWNED"));
  CHECK_FALSE(fs::exists(root + "/PWNED"));
  fs::remove_all(root);
}

TEST_CASE("an atomic write that fails leaves the old file and no temporary") {
  const std::string root = scratch_folder("fail");
  make_directories(root);
  const std::string path = root + "/kept.txt";
  write_file_atomic(path, std::string("old"));
  {
    AtomicFile file(path);
    file.write("new, never committed", 20);
    CHECK(fs::exists(file.temporary_path()));
  }  // destroyed without commit (an exception on the way)
  CHECK(read_all(path) == "old");
  CHECK(names_in(root) == std::vector<std::string>{"kept.txt"});
  // A missing folder, a folder as the target, an empty path: one line naming the path.
  CHECK(error_of([&] {
          write_file_atomic(root + "/missing/x.txt", std::string("x"));
        }).find("the folder does not exist") != std::string::npos);
  make_directories(root + "/a_folder");
  CHECK(error_of([&] { write_file_atomic(root + "/a_folder", std::string("x")); }) ==
        root + "/a_folder: is a folder; expected a file path to write");
  CHECK(error_of([&] { write_file_atomic("", std::string("x")); }) == "cannot write a file at an empty path");
  CHECK(error_of([&] { make_directories(""); }) == "an empty path names no folder");
  // A file in the way of a folder is named.
  CHECK(error_of([&] { make_directories(path + "/below"); }).find("exists and is not a folder") != std::string::npos);
  CHECK(names_in(root) == std::vector<std::string>{"a_folder", "kept.txt"});
  fs::remove_all(root);
}

TEST_CASE("read_regular_file refuses folders, FIFOs and oversized files, naming them, without waiting") {
  const std::string root = scratch_folder("read");
  make_directories(root);
  CHECK(error_of([&] { read_regular_file(root); }) == root + ": is a folder; expected a file");
  const std::string fifo = root + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(error_of([&] { read_regular_file(fifo); }).find("is not a regular file") != std::string::npos);
  write_file_atomic(root + "/big", std::string(100, 'x'));
  CHECK(read_regular_file(root + "/big", 100) == std::string(100, 'x'));
  CHECK(error_of([&] { read_regular_file(root + "/big", 99); }).find("100 bytes, more than the 99") !=
        std::string::npos);
  CHECK(error_of([&] { read_regular_file(root + "/none"); }).find(root + "/none: cannot open") == 0);
  fs::remove_all(root);
}

TEST_CASE("same_file and require_outputs_distinct see through links and refuse an output over an input") {
  const std::string root = scratch_folder("same");
  make_directories(root + "/sub");
  const std::string input = root + "/model.safetensors";
  write_file_atomic(input, std::string("weights"));
  fs::create_symlink(input, root + "/link");
  fs::create_hard_link(input, root + "/hard");
  CHECK(same_file(input, root + "/link"));
  CHECK(same_file(input, root + "/hard"));
  CHECK(same_file(input, root + "/sub/../model.safetensors"));
  CHECK(same_file(root + "/new.onnx", root + "/sub/../new.onnx"));  // neither exists yet
  CHECK_FALSE(same_file(input, root + "/other"));
  CHECK_FALSE(same_file("", input));
  CHECK(error_of([&] {
          require_outputs_distinct({{"--onnx", root + "/link"}}, {{"--checkpoint", input}});
        }).find("--onnx '") == 0);
  CHECK(error_of([&] {
          require_outputs_distinct({{"--onnx", root + "/link"}}, {{"--checkpoint", input}});
        }).find("is the same file as the input --checkpoint") != std::string::npos);
  CHECK(error_of([&] {
          require_outputs_distinct({{"--onnx", root + "/m.onnx"}, {"--reference-out", root + "/sub/../m.onnx"}}, {});
        }).find("is the same file as --onnx") != std::string::npos);
  CHECK(error_of([&] {
          require_outputs_distinct({{"--out", root + "/x.csv"}, {"--labels", ""}}, {{"--labels", ""}});
        }).empty());
  CHECK(read_all(input) == "weights");
  fs::remove_all(root);
}

TEST_CASE("stale temporaries of dead writers go, live ones stay") {
  const std::string root = scratch_folder("stale");
  make_directories(root);
  const std::string own = "best.safetensors.tmp-" + std::to_string(::getpid()) + "-0";
  for (const std::string& name :
       {std::string("best.safetensors.tmp-999999999-1"), std::string("curves.png.tmp.999999999.0"),
        std::string("config.txt.tmp"), own, std::string("notes.txt"), std::string("x.tmp-abc")})
    write_file_atomic(root + "/" + name, std::string("x"));
  CHECK(remove_stale_temporary_files_in(root) == 3);
  CHECK(names_in(root) == std::vector<std::string>{own, "notes.txt", "x.tmp-abc"});
  fs::remove_all(root);
}

TEST_CASE("FolderLock: a second holder is refused, naming the first; released with its holder") {
  const std::string root = scratch_folder("lock");
  make_directories(root);
  {
    FolderLock first(root, "pneumo train");
    const std::string refused = error_of([&] { FolderLock second(root, "pneumo train --resume"); });
    CHECK(refused.find(root + ": in use by 'pneumo train (pid " + std::to_string(::getpid())) == 0);
  }
  FolderLock again(root, "pneumo train --resume");  // the first is gone: no error
  CHECK(fs::exists(root + "/" + FolderLock::file_name()));
  fs::remove_all(root);
}
