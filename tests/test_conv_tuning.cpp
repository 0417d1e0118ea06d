// The convolution tuning file (layers/conv2d.h, `pneumo tune`, a run's conv-algorithms.txt):
// written and read back through any path, never through a shell.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
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
  const ConvAutoChoice read = conv_auto_choice(ConvDirection::Forward, forward, [](ConvAlgorithm) {
    FAIL("a shape of the tuning file was timed again");
  });
  CHECK(!read.timed_now);
  CHECK(read.record.algorithm == first.algorithm);
  CHECK(read.record.source == path);
  clear_conv_tuning(true);
}
