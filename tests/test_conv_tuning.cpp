// The convolution policy and tuning file (layers/conv_selection.h, `pneumo tune`, a run's
// conv-algorithms.txt): written and read back through any path, never through a shell; read only
// where the policy names it; auto's memory is the selector's, not the process's.
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
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"
#include "layers/conv2d.h"
#include "layers/conv_selection.h"

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
ConvTuningRecord timed_record(ConvSelector& selector, ConvDirection direction, const Conv2dGeometry& geometry) {
  const ConvAutoChoice choice = selector.auto_choice(direction, geometry, [](ConvAlgorithm) {});
  REQUIRE(choice.timed_now);
  return choice.record;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The message of the pneumo::Error that reading `path` as a tuning file into `selector` throws,
// or "".
std::string load_error(ConvSelector& selector, const std::string& path) {
  try {
    selector.load(path);
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
  ConvSelector timing;
  const Conv2dGeometry forward{2, 8, 8, 32, 32, 3}, gradient{3, 4, 4, 16, 8, 1};
  const ConvTuningRecord first = timed_record(timing, ConvDirection::Forward, forward);
  const ConvTuningRecord second = timed_record(timing, ConvDirection::WeightGradient, gradient);
  timing.write(path);
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

  ConvSelector reading;
  CHECK(reading.records().empty());
  reading.load(path);
  const std::vector<ConvTuningRecord> records = reading.records();
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
  const ConvAutoChoice read = reading.auto_choice(
      ConvDirection::Forward, forward, [](ConvAlgorithm) { FAIL("a shape of the tuning file was timed again"); });
  CHECK(!read.timed_now);
  CHECK(read.record.algorithm == first.algorithm);
  CHECK(read.record.source == path);
  // The same file named by a policy: auto's answer without timing, from the first call on.
  ConvPolicy policy;
  policy.algorithms = {ConvAlgorithm::Auto};
  policy.tuning_file = path;
  ConvSelector named(policy);
  const ConvAutoChoice from_policy = named.auto_choice(
      ConvDirection::Forward, forward, [](ConvAlgorithm) { FAIL("a shape of the policy's tuning file was timed"); });
  CHECK(from_policy.record.algorithm == first.algorithm);
  CHECK(from_policy.record.source == path);
}

TEST_CASE("a missing tuning file is no tuning; one that is not a small text file is an error naming it") {
  TemporaryFolder root("pneumo-conv-tuning-bad");
  const std::string folder = root.path.string();
  ConvSelector selector;
  const auto load_error = [&](const std::string& path) { return ::load_error(selector, path); };
  CHECK(load_error(folder + "/missing.txt") == "");
  CHECK(load_error(folder + "/no-folder/missing.txt") == "");
  fs::create_symlink(folder + "/nowhere", folder + "/dangling.txt");
  CHECK(load_error(folder + "/dangling.txt") == "");
  CHECK(selector.records().empty());

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
  CHECK(selector.records().empty());
}

TEST_CASE("a bad tuning-file line is named by number, its bytes escaped and cut short") {
  TemporaryFolder root("pneumo-conv-tuning-lines");
  const fs::path path = root.path / "t.txt";
  const std::string file = "tuning file '" + path.string() + "'";
  std::unique_ptr<ConvSelector> selector;  // a fresh one per file
  const auto error_for = [&](const std::string& text) {
    write_text(path, text);
    selector = std::make_unique<ConvSelector>();
    return load_error(*selector, path.string());
  };
  // The well-formed line reads; each bad one below fails on its own line number.
  CHECK(error_for(std::string("# comment\n") + "forward 1 8 8 4 4 3 1 avx2 gemm 0.125\n") == "");
  REQUIRE(selector->records().size() == 1);
  CHECK(selector->records()[0].algorithm == ConvAlgorithm::Gemm);
  CHECK(selector->records()[0].milliseconds == 0.125);

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
}

TEST_CASE("auto's own read of the policy's tuning file fails the same way, naming the file") {
  TemporaryFolder root("pneumo-conv-tuning-auto");
  ConvPolicy policy;
  policy.algorithms = {ConvAlgorithm::Auto};
  policy.tuning_file = root.path.string();  // a folder
  ConvSelector selector(policy);
  const Conv2dGeometry g{1, 8, 8, 4, 4, 3};
  bool timed = false;
  CHECK_THROWS_WITH_AS(selector.auto_choice(ConvDirection::Forward, g, [&](ConvAlgorithm) { timed = true; }),
                       ("tuning file '" + root.path.string() + "': is a folder; expected a file").c_str(), Error);
  CHECK(!timed);  // not silently timed instead
}

// Sets an environment variable for the life of the object (unset when it was unset).
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const std::string& value) : name_(name) {
    const char* before = std::getenv(name);
    had_ = before != nullptr;
    if (had_) before_ = before;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnvironment() {
    if (had_)
      ::setenv(name_, before_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string before_;
};

TEST_CASE("no file the policy does not name is read: a tuning file in the home folder changes nothing") {
  // `pneumo tune` writes here by default; once, auto read it in every process, so two runs of
  // one command computed differently depending on a file the user never named.
  TemporaryFolder root("pneumo-conv-tuning-home");
  const ScopedEnvironment home("HOME", root.path.string());
  const ScopedEnvironment cache("XDG_CACHE_HOME", (root.path / "cache").string());
  const ScopedEnvironment no_tuning("PNEUMO_CONV_TUNING", "");
  const std::string machine = " " + std::to_string(cpu_thread_count()) + " " + cpu_isa_name(cpu_isa());
  const fs::path file = root.path / "cache/pneumo/conv-tuning.txt";
  CHECK(default_conv_tuning_path() == file.string());  // where tune writes
  fs::create_directories(file.parent_path());
  // reference, which timing never picks: if it comes back, the file was read.
  write_text(file, "forward 1 8 8 4 4 3" + machine + " reference 0.001\n");
  const ConvPolicy environment = conv_policy_from_environment();
  CHECK(environment.tuning_file.empty());
  ConvPolicy policy = environment;
  policy.algorithms = {ConvAlgorithm::Auto};
  ConvSelector selector(policy);
  int runs = 0;
  const ConvAutoChoice choice =
      selector.auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 3}, [&](ConvAlgorithm) { ++runs; });
  CHECK(choice.timed_now);
  CHECK(runs > 0);
  CHECK(choice.record.algorithm != ConvAlgorithm::Reference);
  // Named (PNEUMO_CONV_TUNING, as --conv-tuning does in apps/main.cpp), it is read and said so.
  const ScopedEnvironment named("PNEUMO_CONV_TUNING", file.string());
  ConvPolicy reading = conv_policy_from_environment();
  CHECK(reading.tuning_file == file.string());
  CHECK(reading.tuning_origin == "PNEUMO_CONV_TUNING");
  reading.algorithms = {ConvAlgorithm::Auto};
  CHECK(contains(reading.describe(), "auto reads tuning file '" + file.string() + "', named by PNEUMO_CONV_TUNING"));
  ConvSelector from_file(reading);
  CHECK(from_file
            .auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 3},
                         [](ConvAlgorithm) { FAIL("a shape of the named tuning file was timed"); })
            .record.algorithm == ConvAlgorithm::Reference);
}

TEST_CASE("two selectors keep their own memory: one network's timing is not another's choice") {
  ConvPolicy policy;
  policy.algorithms = {ConvAlgorithm::Auto};
  ConvSelector first(policy), second(policy);
  int first_runs = 0, second_runs = 0;
  first.auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 3}, [&](ConvAlgorithm) { ++first_runs; });
  CHECK(first_runs > 0);
  CHECK(first.records().size() == 1);
  CHECK(second.records().empty());
  second.auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 3}, [&](ConvAlgorithm) { ++second_runs; });
  CHECK(second_runs == first_runs);  // timed again, not taken from the other selector
}

TEST_CASE("a tuning-file entry that cannot run its shape is said on stderr once, then timed") {
  TemporaryFolder root("pneumo-conv-tuning-unusable");
  const fs::path path = root.path / "t.txt";
  const std::string machine = " " + std::to_string(cpu_thread_count()) + " " + cpu_isa_name(cpu_isa());
  // winograd needs a 3x3 kernel: neither entry (this layer at batch 1 and at batch 3) can run.
  write_text(path, "forward 1 8 8 4 4 1" + machine + " winograd4 0.500\n" + "forward 3 8 8 4 4 1" + machine +
                       " winograd2 0.250\n");
  ConvSelector selector;
  selector.load(path.string());
  REQUIRE(selector.records().size() == 2);
  int runs = 0;
  const auto count = [&](ConvAlgorithm algorithm) {
    CHECK(conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, {1, 8, 8, 4, 4, 1}) == "");
    ++runs;
  };
  ConvAutoChoice first, again, other_batch;
  std::string said;
  {
    CapturedStderr captured(root.path / "stderr.txt");
    first = selector.auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 1}, count);
    again = selector.auto_choice(ConvDirection::Forward, {1, 8, 8, 4, 4, 1}, count);
    other_batch = selector.auto_choice(ConvDirection::Forward, {5, 8, 8, 4, 4, 1}, count);
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
}

TEST_CASE("fast: a fixed rule per shape and instruction set, every choice runnable, the same in every selector") {
  // Every convolution shape of the notebook's network (256x256, 32 channels, depth 4) at batch 8.
  std::vector<Conv2dGeometry> shapes = {{8, 256, 256, 1, 32, 3}, {8, 16, 16, 512, 1, 1}};
  for (int64_t size = 256, channels = 32; size >= 32; size /= 2, channels *= 2) {
    shapes.push_back({8, size, size, channels, channels * 2, 1});              // down.conv (before the pool)
    shapes.push_back({8, size / 2, size / 2, channels * 2, channels * 2, 3});  // block convs
  }
  ConvPolicy policy;
  policy.algorithms = {ConvAlgorithm::Fast};
  ConvSelector first(policy), second(policy);
  const bool simd = cpu_isa() != CpuIsa::Scalar;
  for (const Conv2dGeometry& g : shapes)
    for (ConvDirection direction : kConvDirections) {
      CAPTURE(describe_geometry(g));
      CAPTURE(conv_direction_name(direction));
      std::string why;
      const ConvAlgorithm chosen = first.decide(
          "layer", nullptr, direction, g, [](ConvAlgorithm) { FAIL("fast timed a candidate"); }, &why);
      CHECK(chosen != ConvAlgorithm::Fast);
      CHECK(conv_algorithm_unsupported_reason(chosen, direction, g) == "");  // runnable here
      CHECK(contains(why, "fast rule ("));
      CHECK(second.decide("layer", nullptr, direction, g, [](ConvAlgorithm) {}) == chosen);
      if (!simd) {
        CHECK(chosen == ConvAlgorithm::Gemm);
        continue;
      }
      // The rule as layers/conv_fast_rule.cpp writes it (from the timings listed there).
      const bool winograd =
          g.kernel_size == 3 && g.C > 1 && !(direction == ConvDirection::WeightGradient && g.C >= 512);
      if (winograd) CHECK(chosen == ConvAlgorithm::Winograd4);
      if (g.kernel_size == 3 && g.C >= 512 && direction == ConvDirection::WeightGradient)
        CHECK(chosen == ConvAlgorithm::Gemm);
      if (g.kernel_size == 1 && g.C > 64 && direction != ConvDirection::WeightGradient)
        CHECK(chosen == ConvAlgorithm::Gemm);
    }
  // Nothing timed; each choice remembered as the rule's (a run writes them to conv-algorithms.txt).
  CHECK(first.records().size() == shapes.size() * 3);
  for (const ConvTuningRecord& record : first.records()) CHECK(record.source == "fast rule");
  // Read back (a resumed run), a recorded choice wins over the rule, and says where it came from.
  TemporaryFolder root("pneumo-conv-fast");
  const std::string path = (root.path / "conv-algorithms.txt").string();
  const std::string machine = " " + std::to_string(cpu_thread_count()) + " " + cpu_isa_name(cpu_isa());
  write_text(path, "forward 8 16 16 512 512 3" + machine + " reference 0.000\n");
  ConvSelector resumed(policy);
  resumed.load(path);
  std::string why;
  CHECK(resumed.decide(
            "block4_1.conv1", nullptr, ConvDirection::Forward, {8, 16, 16, 512, 512, 3}, [](ConvAlgorithm) {}, &why) ==
        ConvAlgorithm::Reference);
  CHECK(contains(why, "as recorded in " + path));
  // A program's default is fast; the library's (ConvPolicy{}) stays the exact direct,gemm.
  const ScopedEnvironment no_list("PNEUMO_CONV_ALGO", "");
  CHECK(conv_policy_from_environment().algorithms == std::vector<ConvAlgorithm>{ConvAlgorithm::Fast});
  CHECK(ConvPolicy{}.algorithms == std::vector<ConvAlgorithm>{ConvAlgorithm::Direct, ConvAlgorithm::Gemm});
}
