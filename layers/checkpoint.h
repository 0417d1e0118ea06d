// Training checkpoints: a ParameterStore (weights, batch-norm state, Adam moments) plus the step,
// the epoch and free-form metadata <-> one safetensors file. Tensor names and layout are in
// layers/checkpoint.md. Data on a CUDA store is copied through the host explicitly.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "engine/parameters.h"

namespace pneumo {

struct CheckpointInfo {
  int64_t step = 0;   // Adam step count (Adam::step_count())
  int64_t epoch = 0;  // epochs completed
  // Extra string metadata, e.g. {"network": "channels=32 blocks=2 depth=4"}. The keys "format",
  // "format_version", "step" and "epoch" are reserved.
  std::map<std::string, std::string> metadata;
  // Every tensor's shape, as read (read_checkpoint_info fills it; nothing is allocated from it).
  std::map<std::string, Shape> tensor_shapes;
};

// Step, epoch and the run counters are at most 2^48: far beyond any real run, and small enough
// that counting on from them (and float/double arithmetic with them) never overflows.
constexpr int64_t kMaxCheckpointCounter = int64_t{1} << 48;

// A counter in a checkpoint's metadata (e.g. "run.next_batch"): a decimal integer in
// 0..kMaxCheckpointCounter, else pneumo::Error naming the file and the key.
int64_t checkpoint_counter(const std::map<std::string, std::string>& metadata, const std::string& key,
                           const std::string& path);

// Throws pneumo::Error unless the checkpoint holds exactly the tensors a network of `trainable`
// parameters and `state` batch-norm values needs (values and both Adam moments): a cheap check of
// the file against the configuration it names, before that network is allocated.
void check_checkpoint_size(const std::string& path, const CheckpointInfo& info, int64_t trainable, int64_t state);

// Writes every parameter's value ("<name>", trainable or not) and, for trainable parameters, the
// Adam moments ("adam_m/<name>", "adam_v/<name>"); gradients are not saved. Atomic: a failure
// leaves an existing file untouched.
void save_checkpoint(const std::string& path, const ParameterStore& store, const CheckpointInfo& info);

// Reads a checkpoint into `store` (OVERWRITES values, state and Adam moments; gradients are left
// alone). Every tensor the store needs must be present with the store's shape, and the file may
// hold no other tensors, and every value must be finite (a NaN or Inf weight or Adam moment is
// reported with the tensor and its first bad index); any mismatch throws pneumo::Error naming the
// file and the tensor, and then the store is unchanged.
CheckpointInfo load_checkpoint(const std::string& path, ParameterStore& store);

// The step, epoch and metadata of a checkpoint (validated like load_checkpoint), without a store:
// e.g. to learn the network configuration before building the network.
CheckpointInfo read_checkpoint_info(const std::string& path);

}  // namespace pneumo
