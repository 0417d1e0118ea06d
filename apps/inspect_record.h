// Per-layer statistics over a training run (`pneumo train --inspect-every K`): every K Adam steps
// the recorder snapshots the parameters before the step and, after it, appends one row per
// network node to <run_dir>/inspect.csv: activation mean and spread, zero and dead-unit
// fractions (of the batch's first image), and for nodes with parameters the weight norm,
// gradient norm and update-to-weight ratio of that step. `pneumo inspect --run RUN` draws them
// (apps/inspect_page.h). Trainer calls due() / before_step() / after_step() around train_step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/context.h"
#include "layers/network.h"

namespace pneumo::cli {

struct LayerStatisticsRow {
  int64_t step = 0;   // Adam step of the update (counted from 1)
  int64_t epoch = 0;  // counted from 1
  std::string node, kind;
  double activation_mean = 0, activation_std = 0;
  double zero_fraction = 0;                                     // share of output values that are exactly 0
  double dead_unit_fraction = 0;                                // share of channels that are 0 at every position
  bool has_parameters = false;                                  // the three below are only meaningful then
  double weight_norm = 0, gradient_norm = 0, update_ratio = 0;  // over all trainable parameters of the node
};

constexpr const char* kInspectCsvHeader =
    "step,epoch,node,kind,activation_mean,activation_std,zero_fraction,dead_unit_fraction,weight_norm,"
    "gradient_norm,update_ratio";

std::string format_statistics_row(const LayerStatisticsRow& row);
// Reads inspect.csv; throws pneumo::Error naming the file, line and field on a malformed row.
std::vector<LayerStatisticsRow> read_statistics_csv(const std::string& path);

class TrainingRecorder {
 public:
  // Opens <run_dir>/inspect.csv: a new run starts it afresh; a resumed run keeps the rows of
  // steps up to `first_step` - 1 (later rows would be recorded again).
  TrainingRecorder(const std::string& run_dir, int64_t every, int64_t first_step);

  // Whether the step with this Adam step number (counted from 1) is recorded: step % every == 0
  // (and the first step of a run, so a short run has a starting point).
  bool due(int64_t step) const;
  // Before train_step: copies the parameter values (device to device).
  void before_step(const Network& network);
  // After train_step: computes the rows from the network's buffers and appends them.
  void after_step(const Network& network, int64_t step, int64_t epoch);

  double seconds_spent() const { return seconds_; }  // inside before_step + after_step
  int64_t steps_recorded() const { return steps_recorded_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int64_t every_;
  Tensor values_before_;  // (P) on the network's device
  double seconds_ = 0;
  int64_t steps_recorded_ = 0;
};

// The rows of one step computed from the network after train_step; values_before (P) on the host.
std::vector<LayerStatisticsRow> layer_statistics(const Network& network, const std::vector<float>& values_before,
                                                 int64_t step, int64_t epoch);

}  // namespace pneumo::cli
