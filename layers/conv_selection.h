// How a CPU convolution's algorithm is chosen: one explicit value, ConvPolicy, built once by the
// program (the CLI from --conv-algo / --conv-tuning / --show-conv-algos and the environment, a
// training run from its config.txt on --resume), and one ConvSelector per network that holds the
// policy and auto's memory. Nothing here is process-wide: two networks with two policies choose
// independently, and no file is read that the policy does not name. See layers/conv2d.md,
// "Algorithms"; the rows it chooses between are in layers/conv2d_cpu_kernels.h.
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "layers/conv_algorithm.h"

namespace pneumo {

struct ConvPolicy {
  // A preference list: the first entry that can run a layer's shape and direction is used (Auto
  // always can); when none can, the layer throws with every entry's reason. A single name is
  // strict: "winograd4" fails on a 1x1 layer, "winograd4,direct,gemm" uses Winograd where it can.
  // The library's default direct,gemm sums exactly like the reference loops (the tests' path); a
  // program's default is `fast` (conv_policy_from_environment). Both are fixed rules per shape and
  // instruction set, so the same command computes the same bits in every process.
  std::vector<ConvAlgorithm> algorithms = {ConvAlgorithm::Direct, ConvAlgorithm::Gemm};
  // What set the list, said with it: "the default", "--conv-algo", "PNEUMO_CONV_ALGO=",
  // "conv_algorithms of RUN/config.txt:".
  std::string origin = "the default";
  // auto's choices are read from this file (written by `pneumo tune`) before anything is timed;
  // empty: none, auto times each new shape. Read only when auto is reached, and its use is said
  // (describe(), --show-conv-algos, the training log).
  std::string tuning_file;
  std::string tuning_origin;  // what named it: "--conv-tuning", "PNEUMO_CONV_TUNING", "config.txt"
  // Print each layer's choice on stderr when first made (--show-conv-algos).
  bool report = false;

  // "the default direct,gemm", "--conv-algo auto, tuning file 'PATH'".
  std::string describe() const;
  bool uses_auto() const;
};

// The policy of a program (`pneumo`, the benchmarks) before its command line: `fast` (the
// calibrated rule, layers/conv_fast_rule.h) unless the environment says otherwise:
// PNEUMO_CONV_ALGO (a list), PNEUMO_CONV_TUNING (a tuning file), PNEUMO_CONV_ALGO_REPORT=1.
// Called once by a program's entry point (apps/main.cpp, bench_network), never by a layer.
// Throws pneumo::Error naming the variable on a bad value.
ConvPolicy conv_policy_from_environment();

// The first of `preferences` (a layer's own, else a policy's list) that runs `direction` of
// `geometry` (Auto if reached), or throws pneumo::Error naming the shape and every entry's reason.
ConvAlgorithm first_runnable_conv_algorithm(const std::vector<ConvAlgorithm>& preferences, ConvDirection direction,
                                            const Conv2dGeometry& geometry);

// One of auto's choices: (direction, shape, threads, instruction set) -> algorithm.
struct ConvTuningRecord {
  ConvDirection direction;
  Conv2dGeometry geometry;
  int threads;
  std::string isa;
  ConvAlgorithm algorithm;
  double milliseconds;     // the winner's time
  std::string source;      // "timed" or the tuning file's path
  std::string candidates;  // "direct 4.1 ms, gemm 9.3 ms, ..." when timed
};
// auto's answer for one call and what it went by: the record of this shape, of the same layer at
// another batch size (record.geometry.N differs: after a run's first step nothing is timed
// again), or of timing each candidate with run_candidate now (timed_now).
struct ConvAutoChoice {
  ConvTuningRecord record;
  bool timed_now = false;
};

// A CPU Conv2d's algorithm for one direction of one input shape, and why: "forced (--conv-algo
// winograd4)", "first runnable of the default direct,gemm (direct forward needs ...)",
// "auto: timed now: direct 4.10 ms, gemm 9.30 ms", "auto: tuning file PATH (2.100 ms)", ...
struct ConvAlgorithmDecision {
  Conv2dGeometry geometry;
  ConvAlgorithm algorithm;  // concrete
  std::string reason;
};

// The policy and auto's memory, shared by the convolutions of one network (LayerSettings). Safe
// to call from several threads.
class ConvSelector {
 public:
  explicit ConvSelector(ConvPolicy policy = {});
  const ConvPolicy& policy() const { return policy_; }

  // The concrete algorithm for a direction of a layer named `layer`: its own (own_algorithm) or
  // the policy's choice, auto resolved (timing run_candidate when the shape is new); why, into
  // *reason when non-null; printed once per layer, direction and shape when the policy reports.
  ConvAlgorithm decide(const std::string& layer, const ConvAlgorithm* own_algorithm, ConvDirection direction,
                       const Conv2dGeometry& geometry, const std::function<void(ConvAlgorithm)>& run_candidate,
                       std::string* reason = nullptr);

  // auto: the choice for this shape. On first use the policy's tuning file (if any) is read; a
  // shape not found there is timed: each supported algorithm but reference runs twice on the
  // layer's real data and the faster second run wins. A file entry whose algorithm cannot run its
  // shape is timed again, and said on stderr once per entry (file, entry, reason).
  ConvAutoChoice auto_choice(ConvDirection direction, const Conv2dGeometry& geometry,
                             const std::function<void(ConvAlgorithm)>& run_candidate);
  // fast: the rule's choice for this shape (layers/conv_fast_rule.h), remembered like auto's (a
  // record of source "fast rule"), so a run's conv-algorithms.txt holds it and --resume takes it
  // from there even if a later version of the rule chose otherwise. `why` says which.
  ConvAlgorithm fast_choice(ConvDirection direction, const Conv2dGeometry& geometry, std::string* why);
  std::vector<ConvTuningRecord> records() const;
  // Adds the records of a tuning file (a missing file adds none), replacing those of the same
  // key: a training run reloads the choices it saved so that a resumed run computes the same.
  // Throws a one-line pneumo::Error naming the file (quoted) when it is a folder, FIFO or device,
  // larger than 1 MiB, or has a malformed line (its number and text, escaped).
  void load(const std::string& path);
  // Writes every record (the file's previous records for other shapes are kept). Throws
  // pneumo::Error naming the file when it cannot be written.
  void write(const std::string& path) const;

 private:
  void read_policy_file();  // the policy's tuning file, once (caller holds mutex_)
  ConvPolicy policy_;
  mutable std::mutex mutex_;
  bool policy_file_read_ = false;
  std::map<std::string, ConvTuningRecord> records_;  // by tuning key
  std::set<std::string> unusable_reported_;          // tuning keys of file entries said to be unusable
  std::set<std::string> choices_reported_;           // layer, direction and shape but N, once printed
};

// The path `pneumo tune` writes by default: PNEUMO_CONV_TUNING, else
// $XDG_CACHE_HOME/pneumo/conv-tuning.txt, else ~/.cache/pneumo/conv-tuning.txt. Nothing reads it
// unless a policy names it (--conv-tuning PATH or PNEUMO_CONV_TUNING).
std::string default_conv_tuning_path();

}  // namespace pneumo
