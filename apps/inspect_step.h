// Inspecting one training step: the network runs forward, the loss, backward and one Adam step
// node by node (exactly the computation of train_step, layers/training_step.h), and every
// tensor of the step that a learner wants to see is copied to the host on the way: each node's
// output and d loss / d output for the first image, each parameter before and after the update
// with its gradient, batch-norm batch and running statistics, per-node forward and backward
// times. Network + batch in, InspectedStep out; apps/inspect_page.h draws it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/tensor.h"
#include "layers/adam.h"
#include "layers/loss.h"
#include "layers/network.h"

namespace pneumo::cli {

// Summary statistics of a set of values (computed in double).
struct TensorStatistics {
  int64_t count = 0;
  double mean = 0, std = 0;  // std: population standard deviation
  double min = 0, max = 0;
  double zero_fraction = 0;       // share of values exactly 0
  double norm = 0;                // L2 norm
  std::vector<double> bin_edges;  // (bins + 1), from min to max
  std::vector<double> counts;     // (bins)
};
TensorStatistics tensor_statistics(const float* values, int64_t count, int bins = 40);
inline TensorStatistics tensor_statistics(const std::vector<float>& values, int bins = 40) {
  return tensor_statistics(values.data(), static_cast<int64_t>(values.size()), bins);
}

// One trainable parameter of a node, host copies of this step's tensors.
struct ParameterRecord {
  std::string name;  // full store name, e.g. "block1_1.conv1.weight"
  Shape shape;
  std::vector<float> before, gradient, after;  // values before the Adam step, d loss / d value, after
  TensorStatistics weight;                     // of `before`
  double gradient_norm = 0;
  double update_norm = 0;   // || after - before ||
  double update_ratio = 0;  // update_norm / || before || (0 when the weight is 0)
};

// Batch norm: the statistics this training forward normalised with, beside the running
// statistics before and after the step's update (all (C)).
struct BatchNormRecord {
  std::vector<double> batch_mean, batch_variance;  // over (N,H,W) of the node's input, biased
  std::vector<float> running_mean_before, running_variance_before, running_mean_after, running_variance_after;
};

struct NodeRecord {
  std::string name, kind;
  LayerFunctions functions;                // what its forward and backward called (Layer::functions)
  Shape output_shape;                      // (N,H,W,C) of this step
  std::vector<int> inputs;                 // node indices; -1 = the image
  int64_t parameter_count = 0, flops = 0;  // trainable parameters; forward FLOPs for the batch
  double forward_ms = 0, backward_ms = 0;  // measured (device synchronised around each node)
  std::vector<float> output;               // (H,W,C) of the first image
  std::vector<float> output_gradient;      // (H,W,C): d loss / d output, first image
  TensorStatistics activation;             // of the whole (N,H,W,C) output
  TensorStatistics gradient;               // of the whole (N,H,W,C) d loss / d output
  double dead_channel_fraction = 0;        // share of channels that are 0 at every position
  std::vector<ParameterRecord> parameters;
  bool is_batch_norm = false;
  BatchNormRecord batch_norm;
};

struct InspectedStep {
  NetworkConfig config;
  Device device = Device::CPU;
  int64_t batch = 0, image_size = 0;
  float learning_rate = 0;
  int64_t adam_step = 0;  // Adam's step number of this update (counted from 1)
  LossValues loss;        // before the update, as train_step reports it
  SegmentationMetrics metrics;
  std::vector<float> image, mask, probabilities;  // (S,S) of the first image
  std::vector<NodeRecord> nodes;                  // in network order
  double forward_ms = 0, loss_ms = 0, backward_ms = 0, adam_ms = 0;
};

// images, masks (N,S,S,1) on the network's device. Zeroes the gradients, runs the training
// forward, iou_bce_loss and its gradient, backward and adam.step(learning_rate) one node at a
// time: afterwards the network and `adam` are exactly as after train_step (tested), and the
// parameter gradients and node outputs of the step are still in the network (it turns the
// network's in-place outputs off, Network::set_in_place, so every node's output is its own).
InspectedStep inspect_training_step(Context& context, Network& network, Adam& adam, const Tensor& images,
                                    const Tensor& masks, float learning_rate);

}  // namespace pneumo::cli
