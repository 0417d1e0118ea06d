// Trainer: one training run as named stages, so each can be read, tested and extended on its own
// (data-parallel training builds on these):
//   prepare        settings checked, run directory and log, device, data (labels, split, cache,
//                  loaders), network and optimizer
//   restore/save   one run state: network parameters and Adam moments, step, epoch, position in
//                  the epoch, partial epoch sums, best validation mAP, the history, the run's
//                  configuration and a fingerprint of its dataset (a checkpoint's metadata; resume
//                  refuses a checkpoint whose configuration or dataset disagrees with the run's),
//                  and the CPU convolution algorithms chosen (conv-algorithms.txt)
// The run directory is locked (engine/files.h FolderLock) while a process trains in it.
//   train_epoch    the batches of one epoch (or what is left of it after a resume); polls Ctrl-C
//   end_epoch      validation, history, checkpoints (last, best), charts, as one commit:
//                  best (if improved) and the validation grid are written first, then `last`,
//                  whose metadata holds the run's whole history (run.history); history.csv and
//                  curves.png are written after it and are views of it. A kill at any point
//                  leaves `last` at the previous or the new epoch; --resume redraws history.csv
//                  and the curves from it and redoes an unfinished epoch bit for bit, so best,
//                  last, the history and the curves equal an uninterrupted run's.
// run() strings them together; run_training (below) makes the communicator of the job and runs
// `Trainer(settings, resume, communicator).run()`. The settings are apps/run_settings.h; one
// step (forward, loss, backward, Adam) is layers/training_step.h.
//
// Data parallel (engine/distributed.md): under mpirun/srun every rank runs these same stages.
// Each rank's loader draws the same global batches; rank r trains on its fixed slice of each
// (train_step with a communicator); validation shards each batch the same way and rank 0 scores
// the gathered boxes. Rank 0 alone writes the run directory (checkpoints, history, charts, log),
// builds the image cache (the others wait), and every rank stops at the same step on Ctrl-C.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/inspect_record.h"
#include "apps/learning_curves.h"
#include "apps/run_files.h"
#include "apps/run_settings.h"
#include "apps/tensorboard_log.h"
#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "engine/context.h"
#include "engine/distributed.h"
#include "engine/files.h"
#include "layers/adam.h"
#include "layers/network.h"
#include "layers/training_step.h"

namespace pneumo::cli {

struct TrainOutcome {
  std::string last_checkpoint, best_checkpoint;
  double best_validation_map = 0;
  int64_t epochs_done = 0;
  bool interrupted = false;
};

// Running means of the per-batch values, as Keras reports training metrics.
struct EpochSums {
  double loss = 0, accuracy = 0, iou = 0;
  int64_t batches = 0;
  void add(const StepResult& step);
  double mean(double sum) const { return batches ? sum / batches : 0.0; }
};

// Where a run stands: what a checkpoint's "run.*" metadata holds besides parameters and Adam.
struct RunState {
  int64_t epoch = 0;       // epochs finished
  int64_t next_batch = 0;  // batches of epoch `epoch` already trained
  EpochSums partial;       // their sums
  double best_map = -1;    // best validation mAP so far (-1: none yet)
};

class Trainer {
 public:
  // prepare: everything up to the first batch (with resume: restores the run state of
  // <run_dir>/last.safetensors).
  // communicator: the job's (null: a single process). It must outlive the trainer.
  Trainer(const TrainSettings& settings, bool resume, Communicator* communicator = nullptr);
  TrainOutcome run();

  // The stages, public for tests and for the data-parallel trainer.
  // Trains epoch state_.epoch from batch state_.next_batch; returns false when interrupted
  // (Ctrl-C or stop_after_batches), after saving `last`.
  bool train_epoch();
  // Validation, history, checkpoints and charts of the epoch just trained; advances state_.
  void end_epoch(double learning_rate, double seconds);
  void save(const std::string& path, const RunState& state);
  void restore(const std::string& path);

  const RunState& state() const { return state_; }
  Network& network() { return *network_; }
  double learning_rate_of(int64_t epoch) const;

 private:
  void prepare_data();
  // Rank 0: refuses an unusable folder (the root, one holding other files, or another run unless
  // forced), creates it, locks it and removes the temporaries of killed writers.
  void prepare_run_directory(bool resume);
  void start_new_run();
  // history.csv and curves.png from history_ (after a resume: whatever a kill left behind).
  void write_history_views();
  // Every rank runs the same settings and parameters: a hash compared over the ranks (error on a
  // mismatch, naming what differs).
  void check_ranks_agree(const std::string& what, uint64_t hash);
  bool is_root() const { return communicator_->is_root(); }

  TrainSettings settings_;
  SingleProcessCommunicator single_process_;
  Communicator* communicator_;        // &single_process_ or the job's
  std::unique_ptr<FolderLock> lock_;  // rank 0: held while this trainer lives
  RunLog log_;
  Device device_;
  Context context_;
  DatasetLayout layout_;
  LabelSet labels_;
  Split split_;
  std::unique_ptr<ImageCache> cache_;
  std::unique_ptr<BatchLoader> train_loader_, validation_loader_;
  std::unique_ptr<Network> network_;
  Adam adam_;
  std::vector<EpochRecord> history_;
  RunState state_;
  EpochSums epoch_sums_;  // of the epoch being trained
  int64_t batches_this_run_ = 0;
  std::string last_path_, best_path_;
  std::string data_fingerprint_;  // labels file and image list (prepare_data), kept in checkpoints
  // Batch tensors on the device, allocated once per batch size (no device allocation per batch).
  Tensor images_, masks_;                        // (B/ranks,S,S,1) each: this rank's slice
  std::unique_ptr<TrainingRecorder> recorder_;   // with --inspect-every K
  std::unique_ptr<TensorBoardLog> tensorboard_;  // rank 0, in a build with protobuf (apps/tensorboard_log.h)
};

// Runs (or, with resume, continues) a training run: Trainer(settings, resume).run()
// (the stages above). Ctrl-C saves `last` and returns with
// interrupted = true; a non-finite loss throws pneumo::Error and keeps the last good checkpoint.
TrainOutcome run_training(const TrainSettings& settings, bool resume);

}  // namespace pneumo::cli
