#include "layers/conv_selection.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "engine/files.h"
#include "kernels/cpu/cpu_isa.h"
#include "layers/conv2d_cpu_kernels.h"
#include "layers/conv_fast_rule.h"

namespace pneumo {

namespace {

// "the default direct,gemm", "PNEUMO_CONV_ALGO=auto", "--conv-algo winograd4,direct,gemm".
std::string list_description(const ConvPolicy& policy) {
  const std::string& origin = policy.origin;
  const bool joined = !origin.empty() && origin.back() == '=';
  return origin + (joined || origin.empty() ? "" : " ") + conv_algorithms_name(policy.algorithms);
}

std::string tuning_key(ConvDirection direction, const Conv2dGeometry& g, int threads, const std::string& isa) {
  std::ostringstream key;
  key << conv_direction_name(direction) << ' ' << g.N << ' ' << g.H << ' ' << g.W << ' ' << g.C << ' ' << g.K << ' '
      << g.kernel_size << ' ' << threads << ' ' << isa;
  return key.str();
}

// Reads `path` into records. A missing file (or a link to none) is no tuning; anything else that
// is not a regular file of at most 1 MiB of well-formed lines is an error of one line: the path
// quoted (it may hold any byte), a bad line's number and its text or field escaped and cut short
// (a file's bytes are untrusted).
void read_tuning_file(const std::string& path, std::map<std::string, ConvTuningRecord>& records) {
  std::error_code error;
  if (std::filesystem::status(path, error).type() == std::filesystem::file_type::not_found) return;
  const std::string file = "tuning file " + quoted(path, 200);
  std::string text;
  try {
    text = read_regular_file(path, size_t(1) << 20);  // refuses folders, FIFOs, devices, > 1 MiB
  } catch (const Error& refused) {
    // read_regular_file starts with the path as given: say it quoted instead.
    std::string why = refused.what();
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
    throw Error(file + ": " + why);
  }
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    const std::string where = file + " line " + std::to_string(number);
    std::istringstream fields(line);
    std::string direction, isa, algorithm;
    ConvTuningRecord record;
    Conv2dGeometry& g = record.geometry;
    if (!(fields >> direction >> g.N >> g.H >> g.W >> g.C >> g.K >> g.kernel_size >> record.threads >> isa >>
          algorithm >> record.milliseconds))
      throw Error(where + ": expected 'direction N H W C K kernel threads isa algorithm ms', got " + quoted(line, 120));
    const auto named_direction = std::find_if(std::begin(kConvDirections), std::end(kConvDirections),
                                              [&](ConvDirection d) { return direction == conv_direction_name(d); });
    if (named_direction == std::end(kConvDirections))
      throw Error(where + ": unknown direction " + quoted(direction, 40) +
                  " (expected forward, input-gradient or weight-gradient)");
    record.direction = *named_direction;
    // A concrete algorithm (auto chose it); the name is matched here, not echoed unquoted.
    const std::vector<ConvAlgorithm> concrete = concrete_conv_algorithms();
    const auto named = std::find_if(concrete.begin(), concrete.end(), [&](ConvAlgorithm candidate) {
      return algorithm == conv_algorithm_name(candidate);
    });
    if (named == concrete.end())
      throw Error(where + ": unknown algorithm " + quoted(algorithm, 40) + " (expected one of " +
                  conv_algorithms_name(concrete) + ")");
    record.algorithm = *named;
    record.isa = isa;
    record.source = path;
    records[tuning_key(record.direction, g, record.threads, isa)] = record;
  }
}

// Why auto chose choice.record.algorithm for `geometry` (see ConvAlgorithmDecision).
std::string auto_reason(const ConvAutoChoice& choice, const Conv2dGeometry& geometry) {
  const ConvTuningRecord& record = choice.record;
  const std::string other_batch =
      record.geometry.N == geometry.N ? "" : ", as chosen at batch " + std::to_string(record.geometry.N);
  if (record.source != "timed") {
    char milliseconds[32];
    std::snprintf(milliseconds, sizeof milliseconds, "%.3f ms", record.milliseconds);
    return "auto: tuning file " + record.source + other_batch + " (" + milliseconds + ")";
  }
  if (choice.timed_now) return "auto: timed now: " + record.candidates;
  return "auto: timed earlier in this process" + other_batch + ": " + record.candidates;
}

// Why `chosen` is the first entry of the policy's list that runs the shape: the list and where
// it comes from, and each entry skipped before it with its reason.
std::string list_reason(const ConvPolicy& policy, ConvAlgorithm chosen, ConvDirection direction,
                        const Conv2dGeometry& geometry) {
  if (policy.algorithms.size() == 1) return "forced (" + list_description(policy) + ")";
  std::string skipped;
  for (ConvAlgorithm algorithm : policy.algorithms) {
    if (algorithm == chosen) break;
    skipped += (skipped.empty() ? "" : "; ") + conv_algorithm_unsupported_reason(algorithm, direction, geometry);
  }
  return "first runnable of " + list_description(policy) + (skipped.empty() ? "" : " (" + skipped + ")");
}

}  // namespace

std::string ConvPolicy::describe() const {
  std::string text = list_description(*this);
  if (uses_auto())
    text += tuning_file.empty() ? " (no tuning file: auto times each new shape)"
                                : " (auto reads tuning file " + quoted(tuning_file, 200) +
                                      (tuning_origin.empty() ? "" : ", named by " + tuning_origin) + ")";
  return text;
}

bool ConvPolicy::uses_auto() const {
  return std::find(algorithms.begin(), algorithms.end(), ConvAlgorithm::Auto) != algorithms.end();
}

ConvPolicy conv_policy_from_environment() {
  ConvPolicy policy;
  policy.algorithms = {ConvAlgorithm::Fast};  // a program's default: the calibrated rule
  const char* names = std::getenv("PNEUMO_CONV_ALGO");
  if (names && *names) {
    try {
      policy.algorithms = parse_conv_algorithms(names);
      policy.origin = "PNEUMO_CONV_ALGO=";
    } catch (const Error& error) {
      throw Error(std::string("PNEUMO_CONV_ALGO: ") + error.what());
    }
  }
  const char* tuning = std::getenv("PNEUMO_CONV_TUNING");
  if (tuning && *tuning) {
    policy.tuning_file = tuning;
    policy.tuning_origin = "PNEUMO_CONV_TUNING";
  }
  const char* report = std::getenv("PNEUMO_CONV_ALGO_REPORT");
  if (report && *report && std::string(report) != "0") policy.report = true;
  return policy;
}

std::string default_conv_tuning_path() {
  const char* path = std::getenv("PNEUMO_CONV_TUNING");
  if (path && *path) return path;
  const char* cache = std::getenv("XDG_CACHE_HOME");
  if (cache && *cache) return std::string(cache) + "/pneumo/conv-tuning.txt";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/pneumo/conv-tuning.txt";
}

ConvSelector::ConvSelector(ConvPolicy policy) : policy_(std::move(policy)) {
  if (policy_.algorithms.empty()) throw Error("convolution policy: empty algorithm list");
}

void ConvSelector::read_policy_file() {
  if (policy_file_read_) return;
  policy_file_read_ = true;
  if (!policy_.tuning_file.empty()) read_tuning_file(policy_.tuning_file, records_);
}

ConvAlgorithm first_runnable_conv_algorithm(const std::vector<ConvAlgorithm>& preferences, ConvDirection direction,
                                            const Conv2dGeometry& geometry) {
  std::string reasons;
  for (ConvAlgorithm algorithm : preferences) {
    if (algorithm == ConvAlgorithm::Auto || algorithm == ConvAlgorithm::Fast) return algorithm;  // always run
    const std::string reason = conv_algorithm_unsupported_reason(algorithm, direction, geometry);
    if (reason.empty()) return algorithm;
    reasons += (reasons.empty() ? "" : "; ") + reason;
  }
  throw Error(std::string("Conv2d ") + conv_direction_name(direction) + " of " + describe_geometry(geometry) +
              ": no algorithm of '" + conv_algorithms_name(preferences) + "' can run it: " + reasons);
}

ConvAlgorithm ConvSelector::decide(const std::string& layer, const ConvAlgorithm* own_algorithm,
                                   ConvDirection direction, const Conv2dGeometry& geometry,
                                   const std::function<void(ConvAlgorithm)>& run_candidate, std::string* reason) {
  // --show-conv-algos prints every layer's choice once, whatever made it (forced, a list, auto's
  // tuning file or timing), with the why of pneumo summary --conv-algos. The batch is left out:
  // validation and the last partial batch take the same choice.
  bool report = false;
  if (policy_.report) {
    std::ostringstream key;
    key << layer << ' ' << conv_direction_name(direction) << ' ' << geometry.H << ' ' << geometry.W << ' ' << geometry.C
        << ' ' << geometry.K << ' ' << geometry.kernel_size;
    std::lock_guard<std::mutex> lock(mutex_);
    report = choices_reported_.insert(key.str()).second;
  }
  std::string reported_reason;
  if (report && !reason) reason = &reported_reason;
  ConvAlgorithm chosen;
  try {
    chosen = first_runnable_conv_algorithm(
        own_algorithm ? std::vector<ConvAlgorithm>{*own_algorithm} : policy_.algorithms, direction, geometry);
  } catch (const Error& error) {
    throw Error((layer.empty() ? std::string() : layer + ": ") + error.what());
  }
  if (reason) *reason = own_algorithm ? "set on this layer" : list_reason(policy_, chosen, direction, geometry);
  ConvAlgorithm algorithm = chosen;
  if (chosen == ConvAlgorithm::Fast) {
    std::string why;
    algorithm = fast_choice(direction, geometry, &why);
    if (reason) {
      // fast named alone (or first) says enough by itself; reached down a list, both are said.
      if (!own_algorithm && policy_.algorithms.front() == ConvAlgorithm::Fast)
        *reason = "fast rule (" + list_description(policy_) + "): " + why;
      else
        *reason += " -> fast rule: " + why;
    }
  } else if (chosen == ConvAlgorithm::Auto) {
    const ConvAutoChoice automatic = auto_choice(direction, geometry, run_candidate);
    if (reason) {
      // auto named alone (or first) says enough by itself; reached down a list, both are said.
      if (!own_algorithm && policy_.algorithms.front() == ConvAlgorithm::Auto)
        *reason = auto_reason(automatic, geometry);
      else
        *reason += " -> " + auto_reason(automatic, geometry);
    }
    algorithm = automatic.record.algorithm;
  }
  if (report)
    std::fprintf(stderr, "conv: %-18s %-15s %-28s %-10s %s\n", layer.empty() ? "(unnamed)" : layer.c_str(),
                 conv_direction_name(direction), describe_geometry(geometry).c_str(), conv_algorithm_name(algorithm),
                 reason->c_str());
  return algorithm;
}

ConvAutoChoice ConvSelector::auto_choice(ConvDirection direction, const Conv2dGeometry& geometry,
                                         const std::function<void(ConvAlgorithm)>& run_candidate) {
  const int threads = cpu_thread_count();
  const std::string isa = cpu_isa_name(cpu_isa());
  const std::string key = tuning_key(direction, geometry, threads, isa);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    read_policy_file();
    // A tuning-file entry whose algorithm cannot run its shape (edited by hand, or written
    // under other kernels) is timed again instead, and said once per entry on stderr, so that
    // a file which is not what runs does not go unnoticed.
    const auto usable = [&](const std::string& entry_key, const ConvTuningRecord& record) {
      const std::string reason = conv_algorithm_unsupported_reason(record.algorithm, direction, geometry);
      if (reason.empty()) return true;
      if (record.source != "timed" && unusable_reported_.insert(entry_key).second)
        std::fprintf(stderr, "conv auto: tuning file %s: entry '%s %s' cannot run %s of %s (%s); timing it instead\n",
                     quoted(record.source, 200).c_str(), entry_key.c_str(), conv_algorithm_name(record.algorithm),
                     conv_direction_name(direction), describe_geometry(record.geometry).c_str(), reason.c_str());
      return false;
    };
    auto found = records_.find(key);
    if (found != records_.end() && usable(found->first, found->second)) return {found->second, false};
    // The same layer at another batch size (validation, the last partial batch) takes the choice
    // already made for it: after a run's first step nothing is timed again, so a run that saves
    // its choices (apps/training_run.cpp) and resumes with them computes bit for bit the same.
    for (const auto& entry : records_) {
      const ConvTuningRecord& record = entry.second;
      const Conv2dGeometry& g = record.geometry;
      if (record.direction == direction && record.threads == threads && record.isa == isa && g.H == geometry.H &&
          g.W == geometry.W && g.C == geometry.C && g.K == geometry.K && g.kernel_size == geometry.kernel_size &&
          usable(entry.first, record))
        return {record, false};
    }
  }
  // Time every supported candidate but reference: a warm-up run (scratch, caches), then the
  // timed run, skipped when the warm-up was already 5x slower than the best so far: a warm-up may
  // grow and first touch the shared scratch, so a tighter bound skips candidates that win
  // (benchmarks/README.md, "Tuning the CPU convolutions").
  using Clock = std::chrono::steady_clock;
  ConvTuningRecord record{direction, geometry, threads, isa, ConvAlgorithm::Gemm, 1e300, "timed", ""};
  for (ConvAlgorithm candidate : concrete_conv_algorithms()) {
    if (candidate == ConvAlgorithm::Reference ||
        !conv_algorithm_unsupported_reason(candidate, direction, geometry).empty())
      continue;
    auto start = Clock::now();
    run_candidate(candidate);
    double milliseconds = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (milliseconds < 5 * record.milliseconds) {
      start = Clock::now();
      run_candidate(candidate);
      milliseconds = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    char text[64];
    std::snprintf(text, sizeof text, "%s%s %.2f ms", record.candidates.empty() ? "" : ", ",
                  conv_algorithm_name(candidate), milliseconds);
    record.candidates += text;
    if (milliseconds < record.milliseconds) {
      record.milliseconds = milliseconds;
      record.algorithm = candidate;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  records_[key] = record;  // --show-conv-algos prints it with the layer (decide)
  return {record, true};
}

ConvAlgorithm ConvSelector::fast_choice(ConvDirection direction, const Conv2dGeometry& geometry, std::string* why) {
  const int threads = cpu_thread_count();
  const std::string isa = cpu_isa_name(cpu_isa());
  const std::string key = tuning_key(direction, geometry, threads, isa);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = records_.find(key);
  if (found != records_.end() &&
      conv_algorithm_unsupported_reason(found->second.algorithm, direction, geometry).empty()) {
    const ConvTuningRecord& record = found->second;
    if (why) *why = record.source == "fast rule" ? record.candidates : "as recorded in " + record.source;
    return record.algorithm;
  }
  const ConvRuleChoice rule = fast_conv_algorithm(direction, geometry);
  records_[key] = {direction, geometry, threads, isa, rule.algorithm, 0.0, "fast rule", rule.why};
  if (why) *why = rule.why;
  return rule.algorithm;
}

std::vector<ConvTuningRecord> ConvSelector::records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ConvTuningRecord> records;
  for (const auto& [key, record] : records_) records.push_back(record);
  return records;
}

void ConvSelector::load(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  read_policy_file();  // the policy's file first, so `path` wins
  read_tuning_file(path, records_);
}

void ConvSelector::write(const std::string& path) const {
  std::map<std::string, ConvTuningRecord> records;
  read_tuning_file(path, records);  // keep the file's other shapes
  for (const ConvTuningRecord& record : this->records())
    records[tuning_key(record.direction, record.geometry, record.threads, record.isa)] = record;
  make_directories(folder_of(path));  // engine/files.h: std::filesystem, never a shell
  std::string text = "# pneumo convolution tuning (pneumo tune): direction N H W C K kernel threads isa algorithm ms\n";
  for (const auto& [key, record] : records) {
    char milliseconds[32];
    std::snprintf(milliseconds, sizeof milliseconds, "%.3f", record.milliseconds);
    text += key + ' ' + conv_algorithm_name(record.algorithm) + ' ' + milliseconds + '\n';
  }
  write_file_atomic(path, text);
}

}  // namespace pneumo
