// A training run's settings: TrainSettings (with the notebook's preset and a small CPU preset),
// their config.txt form (settings_to_map / settings_from_map, read back by --resume) and the
// network's checkpoint metadata. The run itself (the epoch loop) is apps/training_run.h; one
// step of it is layers/training_step.h. The run directory a run fills:
//   config.txt            the settings used (key = value), read back by --resume
//   history.csv           one row per finished epoch (rewritten from `last` on --resume)
//   curves.png            learning curves: loss, accuracy, IoU (train and validation)
//   last.safetensors      checkpoint after the last finished epoch (or at Ctrl-C)
//   best.safetensors      checkpoint of the epoch with the best validation mAP
//   validation_labels.csv the validation split's labels (for `pneumo evaluate`)
//   validation_grid.png   a validation batch with true (green) and predicted (orange) boxes
//   inspect.csv           per-layer statistics every K steps, with --inspect-every K
//   log.txt               everything printed
//   conv-algorithms.txt   the CPU convolution algorithm chosen per shape (reused by --resume)
//   .pneumo.lock          held while a process trains here (a second one is refused)
// An epoch ends in one commit (apps/training_run.h): best, then the validation grid, then `last`, which
// carries the run's whole history; history.csv and curves.png are views of it, redrawn on --resume.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "data/input/loader.h"
#include "layers/conv_selection.h"
#include "layers/network.h"

namespace pneumo::cli {

struct TrainSettings {
  std::string data_dir;  // dataset in the RSNA layout
  std::string run_dir = "runs/run";
  std::string cache_dir;  // "" = <data_dir>
  std::string device = "auto";
  std::string preset = "cpu";
  NetworkConfig network;
  int64_t batch_size = 32;
  int64_t epochs = 25;
  double learning_rate = 1e-3;      // base of the cosine annealing
  int64_t validation_count = 2560;  // < 0: use validation_fraction
  double validation_fraction = 0.1;
  int64_t max_images = 0;  // 0 = every training image; else the first N of a seeded shuffle
  uint64_t seed = 1;
  int64_t workers = 4;
  bool flip = true;
  double threshold = 0.5;  // probability threshold of the post-processing
  double max_unreadable_fraction = 0.0;
  int64_t stop_after_batches = 0;  // > 0: behave as if Ctrl-C came after this many batches (tests)
  // Data-parallel runs (engine/distributed.md): batch-norm statistics over the global batch
  // (synchronized, equal to one process) or over each rank's slice (per-rank, as PyTorch's DDP).
  bool synchronized_batch_norm = true;
  int64_t inspect_every = 0;
  // Data-parallel runs: sum the gradients in buckets of this many MB overlapped with the backward
  // pass (0: one sum after it). Not part of config.txt: it changes speed, not the step.
  double gradient_bucket_mb = 0;  // > 0: per-layer statistics every K steps (apps/inspect_record.h)
  // How the run's CPU convolutions choose their algorithms (layers/conv_selection.h): its list
  // and tuning file are recorded in config.txt (conv_algorithms, conv_tuning) and reused by
  // --resume, with the choices auto or the fast rule made (RUN/conv-algorithms.txt), so a resumed run computes
  // the same. Read from a config.txt without conv_algorithms (a run from before it was
  // recorded), the list is empty: the resuming command fills it in.
  ConvPolicy conv_policy;
  // CUDA: TF32 tensor cores in cuDNN (off: full fp32) and how cuDNN's algorithms are chosen
  // (heuristic, find, deterministic: layers/conv2d_cudnn_algorithm.h). Part of the run (config.txt).
  bool tf32 = false;
  std::string cudnn = "heuristic";
  // The convolutions' precision (layers/precision.h): fp32 or bf16. Part of the run (config.txt).
  Precision precision = Precision::Fp32;
  // Write a new run into a folder that holds other files, or replace the run already there.
  bool force_run_dir = false;
};

// The files of a run directory (above, and TensorBoard's events.out.tfevents.*), and whether `name` is one of them or
// one of their temporaries: a new run refuses a folder holding anything else unless forced.
bool is_run_file_name(const std::string& name);

// "notebook": 256x256, 32 channels, 2 blocks, depth 4, batch 32, 25 epochs, lr 1e-3, 2560
// validation images. "cpu": a small network and image size that trains in minutes on 2 cores.
TrainSettings preset_settings(const std::string& name);

std::map<std::string, std::string> settings_to_map(const TrainSettings& settings);
TrainSettings settings_from_map(const std::map<std::string, std::string>& values, const std::string& source);

// Network configuration <-> checkpoint metadata ("network.input_size", ...).
void add_network_metadata(std::map<std::string, std::string>& metadata, const NetworkConfig& config);
NetworkConfig network_config_from_metadata(const std::map<std::string, std::string>& metadata,
                                           const std::string& source);

// Typed fields of a key = value map (config.txt, checkpoint metadata); errors name the source
// and the field.
int64_t metadata_integer(const std::map<std::string, std::string>& values, const std::string& key,
                         const std::string& source);
double metadata_number(const std::map<std::string, std::string>& values, const std::string& key,
                       const std::string& source);

// Reads <run_dir>/config.txt.
TrainSettings read_run_settings(const std::string& run_dir);

}  // namespace pneumo::cli
