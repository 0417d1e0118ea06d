#include "layers/conv2d.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "engine/check.h"
#include "engine/files.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/conv3x3_single_channel.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_reference.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"

namespace pneumo {

namespace {

// im2col columns are built for a chunk of image rows at a time, so scratch stays near this many
// floats (16 MiB) whatever the batch and image size; a chunk is still thousands of GEMM rows.
constexpr int64_t kColumnBudgetFloats = int64_t{1} << 22;

// Splits the N*H image rows into equal chunks whose columns fit the budget.
int64_t rows_per_chunk(const Conv2dGeometry& geometry, int64_t column_width) {
  const int64_t total_rows = geometry.N * geometry.H;
  const int64_t max_rows = std::max<int64_t>(1, kColumnBudgetFloats / (geometry.W * column_width));
  const int64_t chunks = (total_rows + max_rows - 1) / max_rows;
  return (total_rows + chunks - 1) / chunks;
}

float* grow(std::vector<float>& scratch, int64_t count) {
  if (static_cast<int64_t>(scratch.size()) < count) scratch.resize(static_cast<size_t>(count));
  return scratch.data();
}

// The bias loops are memory-bound and small next to the convolution; they stay single-threaded.

// output (P,K) += bias (K) on every pixel row.
void add_bias_cpu(float* output, const float* bias, int64_t pixels, int64_t K) {
  for (int64_t p = 0; p < pixels; ++p) {
    float* row = output + p * K;
    for (int64_t k = 0; k < K; ++k) row[k] += bias[k];
  }
}

// bias_gradient (K) += sum over pixel rows of output_gradient (P,K), summed in double.
void accumulate_bias_gradient_cpu(float* bias_gradient, const float* output_gradient, int64_t pixels, int64_t K) {
  std::vector<double> sum(static_cast<size_t>(K), 0.0);  // (K)
  for (int64_t p = 0; p < pixels; ++p) {
    const float* row = output_gradient + p * K;
    for (int64_t k = 0; k < K; ++k) sum[k] += row[k];
  }
  for (int64_t k = 0; k < K; ++k) bias_gradient[k] += static_cast<float>(sum[k]);
}

// flipped (C,R,S,K)[c,i,j,k] = weight (K,R,S,C)[k,R-1-i,S-1-j,c], transposed through 16x16
// (k,c) tiles so reads and writes are both contiguous runs; threaded over c blocks.
void flip_filter(float* flipped, const float* weight, int64_t K, int64_t C, int64_t R) {
  constexpr int64_t kBlock = 16;
  const int64_t taps = R * R;
  parallel_for((C + kBlock - 1) / kBlock, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c_block = begin; c_block < end; ++c_block) {
      const int64_t c_begin = c_block * kBlock, c_end = std::min(C, c_begin + kBlock);
      for (int64_t k_begin = 0; k_begin < K; k_begin += kBlock) {
        const int64_t k_end = std::min(K, k_begin + kBlock);
        for (int64_t tap = 0; tap < taps; ++tap) {
          float tile[kBlock][kBlock];  // (k, c): read along c, written along k
          for (int64_t k = k_begin; k < k_end; ++k) {
            const float* source = weight + (k * taps + (taps - 1 - tap)) * C;  // (C)
            for (int64_t c = c_begin; c < c_end; ++c) tile[k - k_begin][c - c_begin] = source[c];
          }
          for (int64_t c = c_begin; c < c_end; ++c) {
            float* destination = flipped + (c * taps + tap) * K;  // (K)
            for (int64_t k = k_begin; k < k_end; ++k) destination[k] = tile[k - k_begin][c - c_begin];
          }
        }
      }
    }
  });
}

}  // namespace

// ---- names and what each algorithm can run ---------------------------------------------------

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::Auto: return "auto";
    case ConvAlgorithm::Reference: return "reference";
    case ConvAlgorithm::Gemm: return "gemm";
    case ConvAlgorithm::Direct: return "direct";
    case ConvAlgorithm::Winograd2: return "winograd2";
    case ConvAlgorithm::Winograd4: return "winograd4";
  }
  return "?";
}

const char* conv_direction_name(ConvDirection direction) {
  switch (direction) {
    case ConvDirection::Forward: return "forward";
    case ConvDirection::InputGradient: return "input-gradient";
    case ConvDirection::WeightGradient: return "weight-gradient";
  }
  return "?";
}

std::vector<ConvAlgorithm> concrete_conv_algorithms() {
  return {ConvAlgorithm::Reference, ConvAlgorithm::Gemm, ConvAlgorithm::Direct, ConvAlgorithm::Winograd2,
          ConvAlgorithm::Winograd4};
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  std::string names = "auto";
  if (name == "auto") return ConvAlgorithm::Auto;
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    if (name == conv_algorithm_name(algorithm)) return algorithm;
    names += std::string(", ") + conv_algorithm_name(algorithm);
  }
  throw Error("unknown convolution algorithm '" + name + "': expected one of " + names);
}

std::string describe_geometry(const Conv2dGeometry& geometry) {
  std::ostringstream text;
  text << geometry.N << "x" << geometry.H << "x" << geometry.W << "x" << geometry.C << " -> " << geometry.K << ", "
       << geometry.kernel_size << "x" << geometry.kernel_size;
  return text.str();
}

namespace {

int winograd_tile(ConvAlgorithm algorithm) { return algorithm == ConvAlgorithm::Winograd2 ? 2 : 4; }

bool uses_single_channel_kernel(const Conv2dGeometry& geometry) {
  return geometry.kernel_size == 3 && geometry.C == 1 && conv3x3_single_channel_supported(geometry.K);
}

}  // namespace

std::string conv_algorithm_unsupported_reason(ConvAlgorithm algorithm, ConvDirection direction,
                                              const Conv2dGeometry& geometry) {
  const std::string name = conv_algorithm_name(algorithm);
  switch (algorithm) {
    case ConvAlgorithm::Auto: return "auto is not a concrete algorithm";
    case ConvAlgorithm::Reference:
    case ConvAlgorithm::Gemm: return "";
    case ConvAlgorithm::Direct: {
      if (cpu_isa() == CpuIsa::Scalar)
        return "direct needs AVX2+FMA or AVX-512, and this CPU (capped by PNEUMO_CPU_ISA) offers "
               "neither";
      if (direction == ConvDirection::Forward) {
        if (uses_single_channel_kernel(geometry) || conv_direct_supported(geometry.K)) return "";
        return "direct forward needs a multiple of 32 output channels (or, AVX-512 only, one "
               "input channel and 16 or 32 outputs), got " +
               std::to_string(geometry.K) + " output channels";
      }
      if (direction == ConvDirection::WeightGradient && uses_single_channel_kernel(geometry)) return "";
      if (conv_direct_supported(geometry.C)) return "";
      return "direct " + std::string(conv_direction_name(direction)) + " needs a multiple of 32 input channels, got " +
             std::to_string(geometry.C);
    }
    case ConvAlgorithm::Winograd2:
    case ConvAlgorithm::Winograd4:
      if (geometry.kernel_size != 3)
        return name + " runs 3x3 convolutions only, this one is " + std::to_string(geometry.kernel_size) + "x" +
               std::to_string(geometry.kernel_size);
      return "";
  }
  return "unknown algorithm";
}

namespace {

void require_runnable(ConvAlgorithm algorithm, ConvDirection direction, const Conv2dGeometry& geometry) {
  const std::string reason = conv_algorithm_unsupported_reason(algorithm, direction, geometry);
  if (!reason.empty())
    throw Error(std::string("Conv2d ") + conv_direction_name(direction) + " of " + describe_geometry(geometry) +
                ": algorithm '" + conv_algorithm_name(algorithm) + "' cannot run it: " + reason);
}

// ---- the process-wide choice and auto's tuning table -------------------------------------------

struct ConvSettings {
  std::mutex mutex;
  bool algorithm_read = false;
  std::vector<ConvAlgorithm> algorithms = {ConvAlgorithm::Direct, ConvAlgorithm::Gemm};
  std::string origin = "the default ";  // what default_conv_algorithms_origin puts before the list
  bool report = false;
  bool file_read = false;
  bool read_file = true;
  std::map<std::string, ConvTuningRecord> records;  // by tuning_key
  std::set<std::string> unusable_reported;          // tuning_keys of file entries said to be unusable
  std::set<std::string> choices_reported;           // layer, direction and shape but N, once printed
};

ConvSettings& settings() {
  static ConvSettings instance;
  return instance;
}

std::string tuning_key(ConvDirection direction, const Conv2dGeometry& g, int threads, const std::string& isa) {
  std::ostringstream key;
  key << conv_direction_name(direction) << ' ' << g.N << ' ' << g.H << ' ' << g.W << ' ' << g.C << ' ' << g.K << ' '
      << g.kernel_size << ' ' << threads << ' ' << isa;
  return key.str();
}

// Reads `path` into records (caller holds the mutex). A missing file (or a link to none) is no
// tuning; anything else that is not a regular file of at most 1 MiB of well-formed lines is an
// error of one line: the path quoted (it may hold any byte), a bad line's number and its text or
// field escaped and cut short (a file's bytes are untrusted).
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
    if (direction == "forward")
      record.direction = ConvDirection::Forward;
    else if (direction == "input-gradient")
      record.direction = ConvDirection::InputGradient;
    else if (direction == "weight-gradient")
      record.direction = ConvDirection::WeightGradient;
    else
      throw Error(where + ": unknown direction " + quoted(direction, 40) +
                  " (expected forward, input-gradient or weight-gradient)");
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

}  // namespace

std::vector<ConvAlgorithm> parse_conv_algorithms(const std::string& names) {
  std::vector<ConvAlgorithm> algorithms;
  size_t begin = 0;
  while (true) {
    const size_t comma = names.find(',', begin);
    const std::string name = names.substr(begin, comma == std::string::npos ? comma : comma - begin);
    if (name.empty()) throw Error("convolution algorithms '" + names + "': empty name (expected NAME[,NAME...])");
    algorithms.push_back(parse_conv_algorithm(name));
    if (comma == std::string::npos) return algorithms;
    begin = comma + 1;
  }
}

std::string conv_algorithms_name(const std::vector<ConvAlgorithm>& algorithms) {
  std::string names;
  for (ConvAlgorithm algorithm : algorithms)
    names += (names.empty() ? "" : ",") + std::string(conv_algorithm_name(algorithm));
  return names;
}

ConvAlgorithm first_runnable_conv_algorithm(const std::vector<ConvAlgorithm>& preferences, ConvDirection direction,
                                            const Conv2dGeometry& geometry) {
  std::string reasons;
  for (ConvAlgorithm algorithm : preferences) {
    if (algorithm == ConvAlgorithm::Auto) return algorithm;
    const std::string reason = conv_algorithm_unsupported_reason(algorithm, direction, geometry);
    if (reason.empty()) return algorithm;
    reasons += (reasons.empty() ? "" : "; ") + reason;
  }
  throw Error(std::string("Conv2d ") + conv_direction_name(direction) + " of " + describe_geometry(geometry) +
              ": no algorithm of '" + conv_algorithms_name(preferences) + "' can run it: " + reasons);
}

namespace {

// Reads PNEUMO_CONV_ALGO and PNEUMO_CONV_ALGO_REPORT once (caller holds the mutex).
void read_environment(ConvSettings& s) {
  if (s.algorithm_read) return;
  s.algorithm_read = true;
  const char* names = std::getenv("PNEUMO_CONV_ALGO");
  if (names && *names) {
    try {
      s.algorithms = parse_conv_algorithms(names);
      s.origin = "PNEUMO_CONV_ALGO=";
    } catch (const Error& error) {
      throw Error(std::string("PNEUMO_CONV_ALGO: ") + error.what());
    }
  }
  const char* report = std::getenv("PNEUMO_CONV_ALGO_REPORT");
  if (report && *report && std::string(report) != "0") s.report = true;
}

}  // namespace

std::vector<ConvAlgorithm> default_conv_algorithms() {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  read_environment(s);
  return s.algorithms;
}

void set_default_conv_algorithms(const std::vector<ConvAlgorithm>& algorithms, const std::string& origin) {
  if (algorithms.empty()) throw Error("set_default_conv_algorithms: empty list");
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  read_environment(s);  // the environment is read first, so this call wins
  s.algorithms = algorithms;
  s.origin = origin + " ";
}

std::string default_conv_algorithms_origin() {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  read_environment(s);
  return s.origin + conv_algorithms_name(s.algorithms);
}

void set_conv_algorithm_report(bool report) {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  read_environment(s);
  s.report = report;
}

std::string conv_tuning_file_path() {
  const char* path = std::getenv("PNEUMO_CONV_TUNING");
  if (path && *path) return path;
  const char* cache = std::getenv("XDG_CACHE_HOME");
  if (cache && *cache) return std::string(cache) + "/pneumo/conv-tuning.txt";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/pneumo/conv-tuning.txt";
}

void load_conv_tuning_file(const std::string& path) {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  read_environment(s);
  if (!s.file_read && s.read_file) {  // the machine's file first, so `path` wins
    s.file_read = true;
    read_tuning_file(conv_tuning_file_path(), s.records);
  }
  read_tuning_file(path, s.records);
}

void clear_conv_tuning(bool read_tuning_file_next) {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.records.clear();
  s.unusable_reported.clear();
  s.choices_reported.clear();
  s.file_read = false;
  s.read_file = read_tuning_file_next;
}

std::vector<ConvTuningRecord> conv_tuning_records() {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::vector<ConvTuningRecord> records;
  for (const auto& [key, record] : s.records) records.push_back(record);
  return records;
}

void write_conv_tuning_file(const std::string& path) {
  std::map<std::string, ConvTuningRecord> records;
  read_tuning_file(path, records);  // keep the file's other shapes
  for (const ConvTuningRecord& record : conv_tuning_records())
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

ConvAlgorithm conv_auto_algorithm(ConvDirection direction, const Conv2dGeometry& geometry,
                                  const std::function<void(ConvAlgorithm)>& run_candidate) {
  return conv_auto_choice(direction, geometry, run_candidate).record.algorithm;
}

ConvAutoChoice conv_auto_choice(ConvDirection direction, const Conv2dGeometry& geometry,
                                const std::function<void(ConvAlgorithm)>& run_candidate) {
  ConvSettings& s = settings();
  const int threads = cpu_thread_count();
  const std::string isa = cpu_isa_name(cpu_isa());
  const std::string key = tuning_key(direction, geometry, threads, isa);
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    read_environment(s);
    if (!s.file_read && s.read_file) {
      s.file_read = true;
      read_tuning_file(conv_tuning_file_path(), s.records);
    }
    // A tuning-file entry whose algorithm cannot run its shape (edited by hand, or written
    // under other kernels) is timed again instead, and said once per entry on stderr, so that
    // a file which is not what runs does not go unnoticed.
    const auto usable = [&](const std::string& entry_key, const ConvTuningRecord& record) {
      const std::string reason = conv_algorithm_unsupported_reason(record.algorithm, direction, geometry);
      if (reason.empty()) return true;
      if (record.source != "timed" && s.unusable_reported.insert(entry_key).second)
        std::fprintf(stderr, "conv auto: tuning file %s: entry '%s %s' cannot run %s of %s (%s); timing it instead\n",
                     quoted(record.source, 200).c_str(), entry_key.c_str(), conv_algorithm_name(record.algorithm),
                     conv_direction_name(direction), describe_geometry(record.geometry).c_str(), reason.c_str());
      return false;
    };
    auto found = s.records.find(key);
    if (found != s.records.end() && usable(found->first, found->second)) return {found->second, false};
    // The same layer at another batch size (validation, the last partial batch) takes the choice
    // already made for it: after a run's first step nothing is timed again, so a run that saves
    // its choices (apps/trainer.cpp) and resumes with them computes bit for bit the same.
    for (const auto& entry : s.records) {
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
  std::lock_guard<std::mutex> lock(s.mutex);
  s.records[key] = record;  // --show-conv-algos prints it with the layer (Conv2d::resolve_algorithm)
  return {record, true};
}

// ---- the algorithms ----------------------------------------------------------------------------

int64_t conv2d_prepared_filter_floats(const Conv2dGeometry& geometry, ConvAlgorithm algorithm) {
  const int64_t C = geometry.C, K = geometry.K;
  switch (algorithm) {
    case ConvAlgorithm::Direct:
      if (uses_single_channel_kernel(geometry)) return 0;
      return int64_t{geometry.kernel_size} * geometry.kernel_size * C * K;
    case ConvAlgorithm::Winograd2:
    case ConvAlgorithm::Winograd4: return winograd_filter_floats(winograd_tile(algorithm), C, K);
    default: return 0;
  }
}

namespace {

// The one place the forward's filter is prepared, for a runnable algorithm that prepares one
// (conv2d_prepared_filter_floats > 0): at every forward into the scratch, or once (constant
// weights) into the layer's own buffer.
void prepare_forward_filter(float* prepared, const float* weight, const Conv2dGeometry& geometry,
                            ConvAlgorithm algorithm) {
  if (algorithm == ConvAlgorithm::Direct)
    pack_direct_filter(prepared, weight, geometry.K, geometry.C, geometry.kernel_size, false);
  else
    winograd_transform_filter(prepared, weight, geometry.K, geometry.C, winograd_tile(algorithm), false);
}

}  // namespace

void conv2d_prepare_filter_cpu(float* prepared, const float* weight, const Conv2dGeometry& geometry,
                               ConvAlgorithm algorithm) {
  require_runnable(algorithm, ConvDirection::Forward, geometry);
  if (conv2d_prepared_filter_floats(geometry, algorithm) > 0)
    prepare_forward_filter(prepared, weight, geometry, algorithm);
}

void conv2d_forward_cpu(float* output, const float* input, const float* weight, const float* bias,
                        const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch,
                        const float* prepared) {
  require_runnable(algorithm, ConvDirection::Forward, geometry);
  const int64_t N = geometry.N, H = geometry.H, W = geometry.W, C = geometry.C, K = geometry.K;
  const int R = geometry.kernel_size;
  switch (algorithm) {
    case ConvAlgorithm::Reference: conv_reference_forward_cpu(output, input, weight, bias, N, H, W, C, K, R); return;
    case ConvAlgorithm::Direct:
      if (uses_single_channel_kernel(geometry)) {
        // One input channel (the image): its own kernel, which adds the bias itself.
        conv3x3_single_channel_forward_cpu(output, input, weight, bias, N, H, W, K);
      } else if (R == 3) {
        // The direct kernel over the zero-padded input; it adds the bias itself.
        const int64_t padded_count = padded_image_count(N, H, W, C);
        const int64_t filter_count = prepared ? 0 : 9 * C * K;
        float* padded = grow(scratch, padded_count + filter_count);  // (N,H+2,W+2,C+16)
        if (!prepared) {
          float* packed = padded + padded_count;  // (K*3*3*C), direct layout
          prepare_forward_filter(packed, weight, geometry, algorithm);
          prepared = packed;
        }
        pad_image_cpu(padded, input, N, H, W, C);
        conv_direct_cpu(output, padded, prepared, bias, N, H, W, C, K, 3, false);
      } else {
        if (!prepared) {
          float* packed = grow(scratch, C * K);  // (K*C), direct layout
          prepare_forward_filter(packed, weight, geometry, algorithm);
          prepared = packed;
        }
        conv_direct_cpu(output, input, prepared, bias, N, H, W, C, K, 1, false);
      }
      return;
    case ConvAlgorithm::Winograd2:
    case ConvAlgorithm::Winograd4: {
      const int m = winograd_tile(algorithm);
      const int64_t filter_count = prepared ? 0 : winograd_filter_floats(m, C, K);
      float* transformed = grow(scratch, filter_count + winograd_scratch_floats(m, C, K));  // U, then blocks
      if (!prepared) {
        prepare_forward_filter(transformed, weight, geometry, algorithm);  // ((m+2)^2, K/OB, C, OB)
        prepared = transformed;
      }
      conv_winograd_cpu(output, input, prepared, bias, N, H, W, C, K, m, false, transformed + filter_count);
      return;
    }
    case ConvAlgorithm::Gemm:
    case ConvAlgorithm::Auto: break;
  }
  if (R == 1) {
    // output (P,K) = input (P,C) x weight (K,C)^T
    cpu_sgemm(false, true, geometry.pixels(), K, C, 1.0f, input, C, weight, C, 0.0f, output, K);
  } else {
    const int64_t column_width = int64_t{R} * R * C;  // weight read as (K, R*R*C)
    const int64_t total_rows = N * H;
    const int64_t chunk_rows = rows_per_chunk(geometry, column_width);
    float* columns = grow(scratch, chunk_rows * W * column_width);  // (chunk_rows*W, R*R*C)
    for (int64_t first = 0; first < total_rows; first += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, total_rows - first);
      im2col_same_cpu(columns, input, H, W, C, R, first, rows);
      // output rows of the chunk (rows*W, K) = columns (rows*W, R*R*C) x weight (K, R*R*C)^T
      cpu_sgemm(false, true, rows * W, K, column_width, 1.0f, columns, column_width, weight, column_width, 0.0f,
                output + first * W * K, K);
    }
  }
  if (bias) add_bias_cpu(output, bias, geometry.pixels(), K);
}

void conv2d_input_gradient_cpu(float* input_gradient, const float* output_gradient, const float* weight,
                               const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch) {
  require_runnable(algorithm, ConvDirection::InputGradient, geometry);
  const int64_t N = geometry.N, H = geometry.H, W = geometry.W, C = geometry.C, K = geometry.K;
  const int R = geometry.kernel_size;
  // d input is the 'same' convolution of d output with the spatially flipped, in/out-swapped
  // weight: flipped (C,R,S,K)[c,i,j,k] = weight (K,R,S,C)[k,R-1-i,S-1-j,c]. Every algorithm
  // but reference runs that convolution, accumulating into input_gradient.
  switch (algorithm) {
    case ConvAlgorithm::Reference:
      conv_reference_input_gradient_cpu(input_gradient, output_gradient, weight, N, H, W, C, K, R);
      return;
    case ConvAlgorithm::Direct:
      if (R == 3) {
        const int64_t padded_count = padded_image_count(N, H, W, K);
        float* padded = grow(scratch, padded_count + 9 * C * K);  // (N,H+2,W+2,K+16)
        float* packed = padded + padded_count;                    // (C*3*3*K), direct layout
        pad_image_cpu(padded, output_gradient, N, H, W, K);
        pack_direct_filter(packed, weight, K, C, 3, true);
        conv_direct_cpu(input_gradient, padded, packed, nullptr, N, H, W, K, C, 3, true);
      } else {
        float* packed = grow(scratch, C * K);  // (C*K), direct layout
        pack_direct_filter(packed, weight, K, C, 1, true);
        conv_direct_cpu(input_gradient, output_gradient, packed, nullptr, N, H, W, K, C, 1, true);
      }
      return;
    case ConvAlgorithm::Winograd2:
    case ConvAlgorithm::Winograd4: {
      const int m = winograd_tile(algorithm);
      const int64_t filter_count = winograd_filter_floats(m, K, C);
      float* transformed = grow(scratch, filter_count + winograd_scratch_floats(m, K, C));
      winograd_transform_filter(transformed, weight, K, C, m, true);
      conv_winograd_cpu(input_gradient, output_gradient, transformed, nullptr, N, H, W, K, C, m, true,
                        transformed + filter_count);
      return;
    }
    case ConvAlgorithm::Gemm:
    case ConvAlgorithm::Auto: break;
  }
  if (R == 1) {
    // input_gradient (P,C) += output_gradient (P,K) x weight (K,C)
    cpu_sgemm(false, false, geometry.pixels(), C, K, 1.0f, output_gradient, K, weight, C, 1.0f, input_gradient, C);
    return;
  }
  // im2col of d output + one GEMM that accumulates straight into input_gradient (beta = 1), with
  // no col2im scatter.
  const int64_t column_width = int64_t{R} * R * K;
  const int64_t chunk_rows = rows_per_chunk(geometry, column_width);
  const int64_t column_count = chunk_rows * W * column_width;
  float* columns = grow(scratch, column_count + C * column_width);  // (chunk_rows*W, R*R*K)
  float* flipped = columns + column_count;                          // (C,R,S,K)
  flip_filter(flipped, weight, K, C, R);
  for (int64_t first = 0; first < N * H; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, N * H - first);
    im2col_same_cpu(columns, output_gradient, H, W, K, R, first, rows);
    // input_gradient rows (rows*W, C) += columns (rows*W, R*R*K) x flipped (C, R*R*K)^T
    cpu_sgemm(false, true, rows * W, C, column_width, 1.0f, columns, column_width, flipped, column_width, 1.0f,
              input_gradient + first * W * C, C);
  }
}

void conv2d_weight_gradient_cpu(float* weight_gradient, float* bias_gradient, const float* output_gradient,
                                const float* input, const Conv2dGeometry& geometry, ConvAlgorithm algorithm,
                                std::vector<float>& scratch) {
  require_runnable(algorithm, ConvDirection::WeightGradient, geometry);
  const int64_t N = geometry.N, H = geometry.H, W = geometry.W, C = geometry.C, K = geometry.K;
  const int R = geometry.kernel_size;
  if (algorithm == ConvAlgorithm::Reference) {
    conv_reference_weight_gradient_cpu(weight_gradient, bias_gradient, output_gradient, input, N, H, W, C, K, R);
    return;
  }
  if (bias_gradient) accumulate_bias_gradient_cpu(bias_gradient, output_gradient, geometry.pixels(), K);
  if (algorithm == ConvAlgorithm::Winograd2 || algorithm == ConvAlgorithm::Winograd4) {
    const int m = winograd_tile(algorithm);
    float* buffer = grow(scratch, winograd_weight_gradient_scratch_floats(m, C, K));
    conv_winograd_weight_gradient_cpu(weight_gradient, input, output_gradient, N, H, W, C, K, m, buffer);
    return;
  }
  if (algorithm == ConvAlgorithm::Direct) {
    if (uses_single_channel_kernel(geometry)) {
      conv3x3_single_channel_weight_gradient_cpu(weight_gradient, output_gradient, input, N, H, W, K);
    } else if (R == 3) {
      // Direct kernel over the zero-padded input, per-thread partial sums.
      const int64_t padded_count = padded_image_count(N, H, W, C);
      const int64_t partial_count = (cpu_thread_count() - 1) * K * 9 * C;
      float* padded = grow(scratch, padded_count + partial_count);  // (N,H+2,W+2,C+16)
      float* partials = padded + padded_count;                      // (threads-1, K,3,3,C)
      pad_image_cpu(padded, input, N, H, W, C);
      conv_weight_gradient_direct_cpu(weight_gradient, padded, output_gradient, N, H, W, C, K, 3, partials);
    } else {
      // A GEMM with a very long inner dimension (all pixels), which the direct kernel runs
      // faster than OpenBLAS.
      float* partials = grow(scratch, (cpu_thread_count() - 1) * K * C);  // (threads-1, K,C)
      conv_weight_gradient_direct_cpu(weight_gradient, input, output_gradient, N, H, W, C, K, 1, partials);
    }
    return;
  }
  if (R == 1) {
    // weight_gradient (K,C) += output_gradient (P,K)^T x input (P,C)
    cpu_sgemm(true, false, K, C, geometry.pixels(), 1.0f, output_gradient, K, input, C, 1.0f, weight_gradient, C);
    return;
  }
  const int64_t column_width = int64_t{R} * R * C;
  const int64_t chunk_rows = rows_per_chunk(geometry, column_width);
  float* columns = grow(scratch, chunk_rows * W * column_width);  // (chunk_rows*W, R*R*C)
  for (int64_t first = 0; first < N * H; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, N * H - first);
    im2col_same_cpu(columns, input, H, W, C, R, first, rows);
    // weight_gradient (K, R*R*C) += output_gradient rows (rows*W, K)^T x columns (rows*W, R*R*C)
    cpu_sgemm(true, false, K, column_width, rows * W, 1.0f, output_gradient + first * W * K, K, columns, column_width,
              1.0f, weight_gradient, column_width);
  }
}

int64_t conv2d_cpu_scratch_floats(const Conv2dGeometry& geometry, ConvDirection direction, ConvAlgorithm algorithm) {
  const int64_t N = geometry.N, H = geometry.H, W = geometry.W, C = geometry.C, K = geometry.K;
  const int R = geometry.kernel_size;
  const auto im2col_columns = [&](int64_t column_width) {
    return rows_per_chunk(geometry, column_width) * W * column_width;
  };
  switch (direction) {
    case ConvDirection::Forward:
      switch (algorithm) {
        case ConvAlgorithm::Reference: return 0;
        case ConvAlgorithm::Direct:
          if (uses_single_channel_kernel(geometry)) return 0;
          return R == 3 ? padded_image_count(N, H, W, C) + 9 * C * K : C * K;
        case ConvAlgorithm::Winograd2:
        case ConvAlgorithm::Winograd4: {
          const int m = winograd_tile(algorithm);
          return winograd_filter_floats(m, C, K) + winograd_scratch_floats(m, C, K);
        }
        case ConvAlgorithm::Gemm:
        case ConvAlgorithm::Auto: return R == 1 ? 0 : im2col_columns(int64_t{R} * R * C);
      }
      break;
    case ConvDirection::InputGradient:
      switch (algorithm) {
        case ConvAlgorithm::Reference: return 0;
        case ConvAlgorithm::Direct: return R == 3 ? padded_image_count(N, H, W, K) + 9 * C * K : C * K;
        case ConvAlgorithm::Winograd2:
        case ConvAlgorithm::Winograd4: {
          const int m = winograd_tile(algorithm);
          return winograd_filter_floats(m, K, C) + winograd_scratch_floats(m, K, C);
        }
        case ConvAlgorithm::Gemm:
        case ConvAlgorithm::Auto: return R == 1 ? 0 : im2col_columns(int64_t{R} * R * K) + C * R * R * K;
      }
      break;
    case ConvDirection::WeightGradient:
      switch (algorithm) {
        case ConvAlgorithm::Reference: return 0;
        case ConvAlgorithm::Winograd2:
        case ConvAlgorithm::Winograd4: return winograd_weight_gradient_scratch_floats(winograd_tile(algorithm), C, K);
        case ConvAlgorithm::Direct:
          if (uses_single_channel_kernel(geometry)) return 0;
          return R == 3 ? padded_image_count(N, H, W, C) + (cpu_thread_count() - 1) * K * 9 * C
                        : (cpu_thread_count() - 1) * K * C;
        case ConvAlgorithm::Gemm:
        case ConvAlgorithm::Auto: return R == 1 ? 0 : im2col_columns(int64_t{R} * R * C);
      }
      break;
  }
  return 0;
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, bool bias)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size), has_bias_(bias) {
  if (in_channels <= 0 || out_channels <= 0)
    throw Error("Conv2d: channel counts must be positive, got in_channels=" + std::to_string(in_channels) +
                " out_channels=" + std::to_string(out_channels));
  if (kernel_size != 1 && kernel_size != 3)
    throw Error("Conv2d: kernel_size must be 1 or 3, got " + std::to_string(kernel_size));
}

Conv2dGeometry Conv2d::geometry_for(const Shape& input) const {
  Conv2dGeometry geometry;
  geometry.N = input[0];
  geometry.H = input[1];
  geometry.W = input[2];
  geometry.C = input[3];
  geometry.K = out_channels_;
  geometry.kernel_size = kernel_size_;
  return geometry;
}

Shape Conv2d::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "Conv2d input");
  if (inputs[0][3] != in_channels_)
    throw Error("Conv2d: input " + shape_string(inputs[0]) + " has " + std::to_string(inputs[0][3]) +
                " channels, expected " + std::to_string(in_channels_));
  return {inputs[0][0], inputs[0][1], inputs[0][2], out_channels_};
}

int64_t Conv2d::forward_flops(const std::vector<Shape>& inputs) const {
  const Shape output = output_shape(inputs);
  const int64_t output_count = shape_count(output);
  const int64_t taps = int64_t{kernel_size_} * kernel_size_ * in_channels_;
  return 2 * output_count * taps + (has_bias_ ? output_count : 0);
}

std::vector<ParameterSpec> Conv2d::parameter_specs() const {
  const int64_t R = kernel_size_;
  // Keras glorot_uniform on a (kh,kw,in,out) kernel: fan_in = kh*kw*in, fan_out = kh*kw*out.
  std::vector<ParameterSpec> specs = {{"weight",
                                       {out_channels_, R, R, in_channels_},
                                       Initializer::GlorotUniform,
                                       true,
                                       R * R * in_channels_,
                                       R * R * out_channels_}};
  if (has_bias_) specs.push_back({"bias", {out_channels_}, Initializer::Zeros, true});
  return specs;
}

void Conv2d::bind_parameters(const ParameterStore& store, const std::string& prefix) {
  name_ = prefix;
  const ParameterEntry& weight = store.entry(prefix + ".weight");
  require_shape(weight.value, {out_channels_, kernel_size_, kernel_size_, in_channels_}, "Conv2d weight");
  weight_ = weight.value;
  weight_gradient_ = weight.gradient;
  if (has_bias_) {
    const ParameterEntry& bias = store.entry(prefix + ".bias");
    require_shape(bias.value, {out_channels_}, "Conv2d bias");
    bias_ = bias.value;
    bias_gradient_ = bias.gradient;
  }
}

void Conv2d::set_allow_tf32(bool allow) { allow_tf32_ = allow; }

int64_t Conv2d::scratch_floats(const std::vector<Shape>& inputs, Device device, bool input_gradient) const {
  if (device != Device::CPU) return 0;
  const Conv2dGeometry geometry = geometry_for(inputs.at(0));
  int64_t floats = 0;
  for (ConvDirection direction :
       {ConvDirection::Forward, ConvDirection::InputGradient, ConvDirection::WeightGradient}) {
    if (direction == ConvDirection::InputGradient && !input_gradient) continue;
    const ConvAlgorithm chosen = preferred_algorithm(direction, geometry);
    if (chosen != ConvAlgorithm::Auto) {
      floats = std::max(floats, conv2d_cpu_scratch_floats(geometry, direction, chosen));
      continue;
    }
    // auto picks by timing: budget for the hungriest candidate it may pick.
    for (ConvAlgorithm candidate : concrete_conv_algorithms())
      if (conv_algorithm_unsupported_reason(candidate, direction, geometry).empty())
        floats = std::max(floats, conv2d_cpu_scratch_floats(geometry, direction, candidate));
  }
  return floats;
}

std::vector<Layer::HeldTensor> Conv2d::held_tensors() const {
  std::vector<HeldTensor> held = {{&weight_, "weight"}, {&weight_gradient_, "weight gradient"}};
  if (has_bias_) {
    held.push_back({&bias_, "bias"});
    held.push_back({&bias_gradient_, "bias gradient"});
  }
  return held;
}

namespace {

// One grow-only scratch buffer for every CPU Conv2d of a thread (the layers of a network run one
// after another), instead of one per layer: its size is the largest single need, not the sum.
std::vector<float>& conv_scratch() {
  thread_local std::vector<float> scratch;
  return scratch;
}

}  // namespace

int64_t conv2d_cpu_shared_scratch_capacity() { return static_cast<int64_t>(conv_scratch().size()); }

void conv2d_release_cpu_scratch() { std::vector<float>().swap(conv_scratch()); }

namespace {

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

// Why `chosen` is the first entry of the default list that runs the shape: the list and where it
// comes from, and each entry skipped before it with its reason.
std::string default_list_reason(const std::vector<ConvAlgorithm>& list, ConvAlgorithm chosen, ConvDirection direction,
                                const Conv2dGeometry& geometry) {
  if (list.size() == 1) return "forced (" + default_conv_algorithms_origin() + ")";
  std::string skipped;
  for (ConvAlgorithm algorithm : list) {
    if (algorithm == chosen) break;
    skipped += (skipped.empty() ? "" : "; ") + conv_algorithm_unsupported_reason(algorithm, direction, geometry);
  }
  return "first runnable of " + default_conv_algorithms_origin() + (skipped.empty() ? "" : " (" + skipped + ")");
}

// --show-conv-algos: true the first time a layer asks for `direction` at this shape while the
// report is on. The batch is left out: validation and the last partial batch take the same choice.
bool first_report_of(const std::string& layer, ConvDirection direction, const Conv2dGeometry& g) {
  ConvSettings& s = settings();
  std::lock_guard<std::mutex> lock(s.mutex);
  read_environment(s);
  if (!s.report) return false;
  std::ostringstream key;
  key << layer << ' ' << conv_direction_name(direction) << ' ' << g.H << ' ' << g.W << ' ' << g.C << ' ' << g.K << ' '
      << g.kernel_size;
  return s.choices_reported.insert(key.str()).second;
}

}  // namespace

ConvAlgorithm Conv2d::preferred_algorithm(ConvDirection direction, const Conv2dGeometry& geometry) const {
  const std::optional<ConvAlgorithm>& own = algorithms_[static_cast<int>(direction)];
  try {
    return first_runnable_conv_algorithm(own ? std::vector<ConvAlgorithm>{*own} : default_conv_algorithms(), direction,
                                         geometry);
  } catch (const Error& error) {
    throw Error((name_.empty() ? std::string() : name_ + ": ") + error.what());
  }
}

ConvAlgorithm Conv2d::resolve_algorithm(ConvDirection direction, const Conv2dGeometry& geometry,
                                        const std::function<void(ConvAlgorithm)>& run_candidate,
                                        std::string* reason) const {
  // --show-conv-algos prints every layer's choice once, whatever made it (forced, a list, auto's
  // tuning file or timing), with the why of pneumo summary --conv-algos.
  std::string reported_reason;
  const bool report = first_report_of(name_, direction, geometry);
  if (report && !reason) reason = &reported_reason;
  const ConvAlgorithm chosen = preferred_algorithm(direction, geometry);
  const bool own = algorithms_[static_cast<int>(direction)].has_value();
  const std::vector<ConvAlgorithm> list = default_conv_algorithms();
  if (reason) *reason = own ? "set on this layer" : default_list_reason(list, chosen, direction, geometry);
  ConvAlgorithm algorithm = chosen;
  if (chosen == ConvAlgorithm::Auto) {
    const ConvAutoChoice automatic = conv_auto_choice(direction, geometry, run_candidate);
    if (reason) {
      // auto named alone (or first) says enough by itself; reached down a list, both are said.
      if (!own && list.front() == ConvAlgorithm::Auto)
        *reason = auto_reason(automatic, geometry);
      else
        *reason += " -> " + auto_reason(automatic, geometry);
    }
    algorithm = automatic.record.algorithm;
  }
  if (report)
    std::fprintf(stderr, "conv: %-18s %-15s %-28s %-10s %s\n", name_.empty() ? "(unnamed)" : name_.c_str(),
                 conv_direction_name(direction), describe_geometry(geometry).c_str(), conv_algorithm_name(algorithm),
                 reason->c_str());
  return algorithm;
}

std::function<void(ConvAlgorithm)> Conv2d::trial_runner(ConvDirection direction, const Conv2dGeometry& geometry,
                                                        const float* input, const float* output_gradient, float* output,
                                                        std::vector<float>& trial) const {
  const float* weight = weight_.data();  // (K,R,S,C)
  switch (direction) {
    case ConvDirection::Forward: {
      const float* bias = has_bias_ ? bias_.data() : nullptr;  // (K)
      return [=](ConvAlgorithm candidate) {
        conv2d_forward_cpu(output, input, weight, bias, geometry, candidate, conv_scratch());
      };
    }
    case ConvDirection::InputGradient:
      return [=, &trial](ConvAlgorithm candidate) {
        trial.assign(static_cast<size_t>(geometry.pixels() * geometry.C), 0.0f);  // (N,H,W,C)
        conv2d_input_gradient_cpu(trial.data(), output_gradient, weight, geometry, candidate, conv_scratch());
      };
    case ConvDirection::WeightGradient: {
      const int64_t weight_count = weight_.count();
      const bool bias = has_bias_;
      return [=, &trial](ConvAlgorithm candidate) {
        trial.assign(static_cast<size_t>(weight_count + geometry.K), 0.0f);  // (K,R,S,C) + (K)
        conv2d_weight_gradient_cpu(trial.data(), bias ? trial.data() + weight_count : nullptr, output_gradient, input,
                                   geometry, candidate, conv_scratch());
      };
    }
  }
  throw Error("Conv2d::trial_runner: unknown direction");
}

ConvAlgorithmDecision Conv2d::explain_algorithm(ConvDirection direction, const Shape& input) const {
  output_shape({input});  // checks (N,H,W,C) with this layer's C
  if (weight_.empty()) throw Error("Conv2d " + name_ + ": explain_algorithm before bind_parameters");
  require_device(weight_, Device::CPU, "Conv2d weight (explain_algorithm is about the CPU)");
  ConvAlgorithmDecision decision{geometry_for(input), ConvAlgorithm::Auto, ""};
  const Conv2dGeometry& g = decision.geometry;
  // Random operands of the real shape, made only when auto times a candidate.
  std::vector<float> images, output_gradient, output, trial;  // (N,H,W,C), (N,H,W,K) x2, trial
  std::function<void(ConvAlgorithm)> run;
  const auto run_candidate = [&](ConvAlgorithm candidate) {
    if (!run) {
      std::mt19937 generator(1);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      const auto random = [&](std::vector<float>& values, int64_t count) {
        values.resize(static_cast<size_t>(count));
        for (float& value : values) value = uniform(generator);
      };
      if (direction != ConvDirection::InputGradient) random(images, g.pixels() * g.C);
      if (direction != ConvDirection::Forward) random(output_gradient, g.pixels() * g.K);
      if (direction == ConvDirection::Forward) output.resize(static_cast<size_t>(g.pixels() * g.K));
      run = trial_runner(direction, g, images.data(), output_gradient.data(), output.data(), trial);
    }
    run(candidate);
  };
  decision.algorithm = resolve_algorithm(direction, g, run_candidate, &decision.reason);
  return decision;
}

void Conv2d::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  const Conv2dGeometry geometry = geometry_for(input.shape());
  std::vector<float> unused;  // the forward's candidates write into output, which the run overwrites
  const auto run = trial_runner(ConvDirection::Forward, geometry, input.data(), nullptr, output.data(), unused);
  const ConvAlgorithm algorithm = resolve_algorithm(ConvDirection::Forward, geometry, run);
  const int64_t prepared_floats = conv2d_prepared_filter_floats(geometry, algorithm);
  if (!constant_weights_ || prepared_floats == 0) {
    run(algorithm);
    return;
  }
  // Constant weights: the filter is prepared at the first forward (per algorithm) and kept.
  if (prepared_algorithm_ != algorithm) {
    prepared_.assign(static_cast<size_t>(prepared_floats), 0.0f);
    conv2d_prepare_filter_cpu(prepared_.data(), weight_.data(), geometry, algorithm);
    prepared_algorithm_ = algorithm;
  }
  conv2d_forward_cpu(output.data(), input.data(), weight_.data(), has_bias_ ? bias_.data() : nullptr, geometry,
                     algorithm, conv_scratch(), prepared_.data());
}

void Conv2d::set_constant_weights(bool constant) {
  constant_weights_ = constant;
  std::vector<float>().swap(prepared_);
  prepared_algorithm_ = ConvAlgorithm::Auto;
}

void Conv2d::backward_cpu(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                          const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  const Tensor& input = *inputs[0];
  const Conv2dGeometry geometry = geometry_for(input.shape());
  std::vector<float>& scratch = conv_scratch();
  // auto times its candidates into throw-away buffers (the real gradients accumulate).
  std::vector<float> trial;
  if (input_gradients[0]) {
    const ConvAlgorithm algorithm = resolve_algorithm(
        ConvDirection::InputGradient, geometry,
        trial_runner(ConvDirection::InputGradient, geometry, input.data(), output_gradient.data(), nullptr, trial));
    conv2d_input_gradient_cpu(input_gradients[0]->data(), output_gradient.data(), weight_.data(), geometry, algorithm,
                              scratch);
  }
  const ConvAlgorithm algorithm = resolve_algorithm(
      ConvDirection::WeightGradient, geometry,
      trial_runner(ConvDirection::WeightGradient, geometry, input.data(), output_gradient.data(), nullptr, trial));
  std::vector<float>().swap(trial);
  conv2d_weight_gradient_cpu(weight_gradient_.data(), has_bias_ ? bias_gradient_.data() : nullptr,
                             output_gradient.data(), input.data(), geometry, algorithm, scratch);
}

}  // namespace pneumo
