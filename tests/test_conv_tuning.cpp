// The convolution tuning file (layers/conv2d.h, `pneumo tune`, a run's conv-algorithms.txt):
// written and read back through any path, never through a shell.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"
#include "layers/conv2d.h"

using namespace pneumo;
namespace fs = std::filesystem;

namespace {

// A fresh folder of its own under the system's temporary folder, removed at the end.
struct TemporaryFolder {
  fs::path path;
  explicit TemporaryFolder(const std::string& name)
      : path(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// auto's choice for `geometry` timed on candidates that do nothing: a record of source "timed".
ConvTuningRecord timed_record(ConvDirection direction, const Conv2dGeometry& geometry) {
  const ConvAutoChoice choice = conv_auto_choice(direction, geometry, [](ConvAlgorithm) {});
  REQUIRE(choice.timed_now);
  return choice.record;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The message of the pneumo::Error that reading `path` as the tuning file throws, or "".
std::string load_error(const std::string& path) {
  clear_conv_tuning(false);
  try {
    load_conv_tuning_file(path);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A message fit for a terminal: one line, no control bytes, at most 400 bytes.
bool one_short_line(const std::string& message) {
  for (unsigned char c : message)
    if (c < 0x20 || c == 0x7f) return false;
  return !message.empty() && message.size() <= 400;
}

// While alive, this process's stderr goes to a file; text() is what was written so far.
class CapturedStderr {
 public:
  explicit CapturedStderr(const fs::path& path) : path_(path) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(file, 2);
    ::close(file);
  }
  ~CapturedStderr() { restore(); }
  std::string text() {
    restore();
    return read_text(path_);
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  fs::path path_;
  int saved_ = -1;
};

}  // namespace

TEST_CASE("the tuning file round-trips through a path with spaces, quotes, ';' and non-ASCII bytes") {
  TemporaryFolder root("pneumo-conv-tuning");
  // Once written with `mkdir -p '<folder>'` through a shell: this name ran `touch PWNED`.
  const fs::path folder = root.path / "runs/a';touch PWNED;'b \"c\" \xc3\xa9\xff $(touch PWNED2)";
  const std::string path = (folder / "t.txt").string();
  const fs::path working = fs::current_path();
  clear_conv_tuning(false);
  const Conv2dGeometry forward{2, 8, 8, 32, 32, 3}, gradient{3, 4, 4, 16, 8, 1};
  const ConvTuningRecord first = timed_record(ConvDirection::Forward, forward);
  const ConvTuningRecord second = timed_record(ConvDirection::WeightGradient, gradient);
  write_conv_tuning_file(path);
  CHECK(fs::is_directory(folder));  // the folder under exactly that name
  CHECK(!fs::exists(working / "PWNED"));
  CHECK(!fs::exists(working / "PWNED2"));
  CHECK(!fs::exists(root.path / "PWNED"));
  // One line per record: direction N H W C K kernel threads isa algorithm ms.
  const std::string threads = std::to_string(cpu_thread_count()), isa = cpu_isa_name(cpu_isa());
  const std::string text = read_text(path);
  CHECK(text.find(std::string("\nforward 2 8 8 32 32 3 ") + threads + " " + isa + " " +
                  conv_algorithm_name(first.algorithm) + " ") != std::string::npos);
  CHECK(text.find(std::string("\nweight-gradient 3 4 4 16 8 1 ") + threads + " " + isa + " " +
                  conv_algorithm_name(second.algorithm) + " ") != std::string::npos);

  clear_conv_tuning(false);
  CHECK(conv_tuning_records().empty());
  load_conv_tuning_file(path);
  const std::vector<ConvTuningRecord> records = conv_tuning_records();
  REQUIRE(records.size() == 2);
  for (const ConvTuningRecord& record : records) {
    const ConvTuningRecord& written = record.direction == ConvDirection::Forward ? first : second;
    CHECK(record.direction == written.direction);
    CHECK(record.geometry.N == written.geometry.N);
    CHECK(record.geometry.H == written.geometry.H);
    CHECK(record.geometry.C == written.geometry.C);
    CHECK(record.geometry.K == written.geometry.K);
    CHECK(record.geometry.kernel_size == written.geometry.kernel_size);
    CHECK(record.threads == cpu_thread_count());
    CHECK(record.isa == isa);
    CHECK(record.algorithm == written.algorithm);
    CHECK(record.source == path);
  }
  // The file's choice is auto's answer for its shape now, without timing.
  const ConvAutoChoice read = conv_auto_choice(
      ConvDirection::Forward, forward, [](ConvAlgorithm) { FAIL("a shape of the tuning file was timed again"); });
  CHECK(!read.timed_now);
  CHECK(read.record.algorithm == first.algorithm);
  CHECK(read.record.source == path);
  clear_conv_tuning(true);
}

TEST_CASE("a missing tuning file is no tuning; one that is not a small text file is an error naming it") {
  TemporaryFolder root("pneumo-conv-tuning-bad");
  const std::string folder = root.path.string();
  CHECK(load_error(folder + "/missing.txt") == "");
  CHECK(load_error(folder + "/no-folder/missing.txt") == "");
  fs::create_symlink(folder + "/nowhere", folder + "/dangling.txt");
  CHECK(load_error(folder + "/dangling.txt") == "");
  CHECK(conv_tuning_records().empty());

  const std::string quoted_folder = "tuning file '" + folder;
  std::string message = load_error(folder);  // once silently no tuning
  CHECK(message == quoted_folder + "': is a folder; expected a file");
  message = load_error("/dev/zero");  // once silently no tuning (read as one empty line)
  CHECK(message == "tuning file '/dev/zero': is not a regular file (a device, FIFO or socket); expected a file");

  // A FIFO without a writer once blocked the open forever: refused at once.
  const std::string fifo = folder + "/fifo.txt";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::future<std::string> reading = std::async(std::launch::async, [&] { return load_error(fifo); });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    FAIL_CHECK("reading a FIFO as the tuning file still waits for a writer after 10 s");
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // let the reader go
    if (writer >= 0) ::close(writer);
  }
  CHECK(reading.get() ==
        quoted_folder + "/fifo.txt': is not a regular file (a device, FIFO or socket); expected a file");

  // 100 MB on one line: refused by its size, not echoed back.
  const fs::path huge = root.path / "huge.txt";
  write_text(huge, "forward ");
  fs::resize_file(huge, 100'000'000);
  message = load_error(huge.string());
  CHECK(message == quoted_folder + "/huge.txt': 100000000 bytes, more than the 1048576 bytes expected of this file");

  // The path itself may hold a newline or an escape: quoted, still one line.
  const std::string odd = folder + "/odd\n\x1b[2Jname";
  fs::create_directories(odd);
  message = load_error(odd);
  CHECK(message == quoted_folder + "/odd\\x0a\\x1b[2Jname': is a folder; expected a file");
  CHECK(one_short_line(message));
  CHECK(conv_tuning_records().empty());
  clear_conv_tuning(true);
}

TEST_CASE("a bad tuning-file line is named by number, its bytes escaped and cut short") {
  TemporaryFolder root("pneumo-conv-tuning-lines");
  const fs::path path = root.path / "t.txt";
  const std::string file = "tuning file '" + path.string() + "'";
  const auto error_for = [&](const std::string& text) {
    write_text(path, text);
    return load_error(path.string());
  };
  // The well-formed line reads; each bad one below fails on its own line number.
  CHECK(error_for(std::string("# comment\n") + "forward 1 8 8 4 4 3 1 avx2 gemm 0.125\n") == "");
  REQUIRE(conv_tuning_records().size() == 1);
  CHECK(conv_tuning_records()[0].algorithm == ConvAlgorithm::Gemm);
  CHECK(conv_tuning_records()[0].milliseconds == 0.125);

  // Terminal escapes and binary bytes in a line: escaped, never raw.
  std::string message = error_for(std::string("# comment\nforward 1 8 \x1b[2J\x07\xff\x00 4\n", 32));
  CHECK(message == file +
                       " line 2: expected 'direction N H W C K kernel threads isa algorithm ms', "
                       "got 'forward 1 8 \\x1b[2J\\x07\\xff\\x00 4'");
  message = error_for("forward 1 8 8 4 4 3 1 avx2 \x1b]0;owned\x07 0.1\n");
  CHECK(message == file +
                       " line 1: unknown algorithm '\\x1b]0;owned\\x07' (expected one of "
                       "reference,gemm,direct,winograd2,winograd4)");
  message = error_for("\x1b[31mforward 1 8 8 4 4 3 1 avx2 gemm 0.1\n");
  CHECK(message == file +
                       " line 1: unknown direction '\\x1b[31mforward' (expected forward, "
                       "input-gradient or weight-gradient)");
  // auto is not a choice a file can record.
  CHECK(error_for("forward 1 8 8 4 4 3 1 avx2 auto 0.1\n") ==
        file + " line 1: unknown algorithm 'auto' (expected one of reference,gemm,direct,winograd2,winograd4)");
  // A line or a field of almost 1 MiB: cut short, with its length.
  message = error_for(std::string(1'000'000, 'x') + "\n");
  CHECK(one_short_line(message));
  CHECK(contains(message, " line 1: expected 'direction N H W C K kernel threads isa algorithm ms', got 'xxx"));
  CHECK(contains(message, "xxx'... (1000000 bytes)"));
  message = error_for("forward 1 8 8 4 4 3 1 avx2 " + std::string(1'000'000, 'y') + " 0.1\n");
  CHECK(one_short_line(message));
  CHECK(contains(message, " line 1: unknown algorithm 'yyy"));
  CHECK(contains(message, "yyy'... (1000000 bytes)"));
  clear_conv_tuning(true);
}

TEST_CASE("auto's own read of PNEUMO_CONV_TUNING fails the same way, naming the file") {
  TemporaryFolder root("pneumo-conv-tuning-auto");
  const char* before = std::getenv("PNEUMO_CONV_TUNING");
  const std::string saved = before ? before : "";
  ::setenv("PNEUMO_CONV_TUNING", root.path.c_str(), 1);  // a folder
  clear_conv_tuning(true);
  const Conv2dGeometry g{1, 8, 8, 4, 4, 3};
  bool timed = false;
  CHECK_THROWS_WITH_AS(conv_auto_choice(ConvDirection::Forward, g, [&](ConvAlgorithm) { timed = true; }),
                       ("tuning file '" + root.path.string() + "': is a folder; expected a file").c_str(), Error);
  CHECK(!timed);  // not silently timed instead
  if (before)
    ::setenv("PNEUMO_CONV_TUNING", saved.c_str(), 1);
  else
    ::unsetenv("PNEUMO_CONV_TUNING");
  clear_conv_tuning(true);
}

TEST_CASE("a tuning-file entry that cannot run its shape is said on stderr once, then timed") {
  TemporaryFolder root("pneumo-conv-tuning-unusable");
  const fs::path path = root.path / "t.txt";
  const std::string machine = " " + std::to_string(cpu_thread_count()) + " " + cpu_isa_name(cpu_isa());
  // winograd needs a 3x3 kernel: neither entry (this layer at batch 1 and at batch 3) can run.
  write_text(path, "forward 1 8 8 4 4 1" + machine + " winograd4 0.500\n" + "forward 3 8 8 4 4 1" + machine +
                       " winograd2 0.250\n");
  clear_conv_tuning(false);
  load_conv_tuning_file(path.string());
  REQUIRE(conv_tuning_records().size() == 2);
  int runs = 0;
  const auto count = [&](ConvAlgorithm algorithm) {
    CHECK(conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, {1, 8, 8, 4, 4, 1}) == "");
    ++runs;
  };
  ConvAutoChoice first, again, other_batch;
  std::string said;
  {
    CapturedStderr captured(root.path / "stderr.txt");
    first = conv_auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 1}, count);
    again = conv_auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 1}, count);
    other_batch = conv_auto_choice(ConvDirection::Forward, {5, 8, 8, 4, 4, 1}, count);
    said = captured.text();
  }
  CHECK(first.timed_now);
  CHECK(first.record.source == "timed");
  CHECK(runs > 0);
  CHECK(!again.timed_now);
  CHECK(!other_batch.timed_now);
  CHECK(other_batch.record.algorithm == first.record.algorithm);
  const std::string file = "conv auto: tuning file '" + path.string() + "': entry ";
  CHECK(said == file + "'forward 1 8 8 4 4 1" + machine + " winograd4' cannot run forward of " +
                    "1x8x8x4 -> 4, 1x1 (winograd4 runs 3x3 convolutions only, this one is 1x1); timing it instead\n" +
                    file + "'forward 3 8 8 4 4 1" + machine + " winograd2' cannot run forward of " +
                    "3x8x8x4 -> 4, 1x1 (winograd2 runs 3x3 convolutions only, this one is 1x1); timing it instead\n");
  clear_conv_tuning(true);
}
