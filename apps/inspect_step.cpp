#include "apps/inspect_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "engine/check.h"

namespace pneumo::cli {

TensorStatistics tensor_statistics(const float* values, int64_t count, int bins) {
  TensorStatistics statistics;
  statistics.count = count;
  if (count == 0) return statistics;
  double sum = 0, sum_squares = 0;
  double low = values[0], high = values[0];
  int64_t zeros = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double value = values[i];
    sum += value;
    sum_squares += value * value;
    low = std::min(low, value);
    high = std::max(high, value);
    zeros += value == 0.0;
  }
  statistics.mean = sum / static_cast<double>(count);
  double squared_deviations = 0;  // second pass: no cancellation for large means
  for (int64_t i = 0; i < count; ++i) {
    const double deviation = values[i] - statistics.mean;
    squared_deviations += deviation * deviation;
  }
  statistics.std = std::sqrt(squared_deviations / static_cast<double>(count));
  statistics.min = low;
  statistics.max = high;
  statistics.zero_fraction = static_cast<double>(zeros) / static_cast<double>(count);
  statistics.norm = std::sqrt(sum_squares);
  if (bins > 0) {
    const double width = high > low ? (high - low) / bins : 1.0;
    statistics.bin_edges.resize(static_cast<size_t>(bins) + 1);
    for (int b = 0; b <= bins; ++b) statistics.bin_edges[static_cast<size_t>(b)] = low + width * b;
    statistics.counts.assign(static_cast<size_t>(bins), 0.0);
    for (int64_t i = 0; i < count; ++i) {
      int bin = static_cast<int>((values[i] - low) / width);
      statistics.counts[static_cast<size_t>(std::clamp(bin, 0, bins - 1))] += 1;
    }
  }
  return statistics;
}

namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::vector<float> slice(const std::vector<float>& flat, int64_t offset, int64_t count) {
  return std::vector<float>(flat.begin() + offset, flat.begin() + offset + count);
}

double l2_norm(const std::vector<float>& values) {
  double sum = 0;
  for (float value : values) sum += static_cast<double>(value) * value;
  return std::sqrt(sum);
}

// The first image's (H,W,C) values of an (N,H,W,C) tensor, copied to the host.
std::vector<float> first_image(const Tensor& tensor) {
  return tensor.leading({1, tensor.H(), tensor.W(), tensor.C()}).to_vector();
}

double dead_channel_fraction(const std::vector<float>& values, int64_t channels) {
  std::vector<char> alive(static_cast<size_t>(channels), 0);
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] != 0.0f) alive[i % static_cast<size_t>(channels)] = 1;
  return static_cast<double>(std::count(alive.begin(), alive.end(), 0)) / static_cast<double>(channels);
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

InspectedStep inspect_training_step(Context& context, Network& network, Adam& adam, const Tensor& images,
                                    const Tensor& masks, float learning_rate) {
  PNEUMO_REQUIRE(images.rank() == 4, "inspect: images must be (N,S,S,1)");
  require_shape(images, network.input_shape(images.N()), "inspect images");
  require_shape(masks, images.shape(), "inspect masks");
  // Every node's output is read after the forward, so none may be overwritten in place.
  network.set_in_place(false);
  ParameterStore& store = network.parameters();
  InspectedStep step;
  step.config = network.config();
  step.device = network.device();
  step.batch = images.N();
  step.image_size = images.H();
  step.learning_rate = learning_rate;
  step.adam_step = adam.step_count() + 1;
  step.image = first_image(images);
  step.mask = first_image(masks);
  const std::vector<float> values_before = store.values().to_vector();  // (P)
  const std::vector<float> state_before = store.state().to_vector();    // (S)

  const ModelSummary summary = summarize(network, images.N());
  const auto& nodes = network.nodes();
  const int count = static_cast<int>(nodes.size());
  step.nodes.resize(nodes.size());

  // The step of train_step, one node at a time.
  store.zero_gradients();
  network.begin_forward(images);
  for (int i = 0; i < count; ++i) {
    NodeRecord& record = step.nodes[static_cast<size_t>(i)];
    const NetworkNode& node = nodes[static_cast<size_t>(i)];
    record.name = node.name;
    record.kind = node.layer->kind();
    record.inputs = node.inputs;
    record.parameter_count = summary.rows[static_cast<size_t>(i)].parameters;
    record.flops = summary.rows[static_cast<size_t>(i)].flops;
    context.synchronize();
    const auto start = Clock::now();
    network.forward_node(context, i, /*training=*/true);
    context.synchronize();
    record.forward_ms = milliseconds_since(start);
    step.forward_ms += record.forward_ms;
  }
  Tensor& probability_gradient = network.output_gradient_buffer();  // (N,S,S,1)
  auto start = Clock::now();
  step.loss = iou_bce_loss(context, network.output(), masks, &probability_gradient);
  step.metrics = segmentation_metrics(context, network.output(), masks);
  context.synchronize();
  step.loss_ms = milliseconds_since(start);
  network.begin_backward(probability_gradient, nullptr);
  for (int i = count - 1; i >= 0; --i) {
    NodeRecord& record = step.nodes[static_cast<size_t>(i)];
    const NetworkNode& node = nodes[static_cast<size_t>(i)];
    // Every consumer of this node ran its backward already: the gradient is complete (and is
    // released to the pool by backward_node below), so copy it now.
    const std::vector<float> gradient = node.output_gradient.to_vector();  // (N,H,W,C)
    record.gradient = tensor_statistics(gradient);
    record.output_gradient.assign(gradient.begin(),
                                  gradient.begin() + node.output_gradient.count() / node.output_gradient.N());
    context.synchronize();
    const auto node_start = Clock::now();
    network.backward_node(context, i);
    context.synchronize();
    record.backward_ms = milliseconds_since(node_start);
    step.backward_ms += record.backward_ms;
  }
  network.end_backward();
  start = Clock::now();
  adam.step(context, store, learning_rate);
  context.synchronize();
  step.adam_ms = milliseconds_since(start);

  // Host copies of what the step left behind: node outputs (backward does not touch them),
  // parameters, gradients and state.
  step.probabilities = first_image(network.output());
  const std::vector<float> values_after = store.values().to_vector();
  const std::vector<float> gradients = store.gradients().to_vector();
  const std::vector<float> state_after = store.state().to_vector();
  for (int i = 0; i < count; ++i) {
    NodeRecord& record = step.nodes[static_cast<size_t>(i)];
    const NetworkNode& node = nodes[static_cast<size_t>(i)];
    record.output_shape = node.output.shape();
    const std::vector<float> output = node.output.to_vector();  // (N,H,W,C)
    record.activation = tensor_statistics(output);
    record.dead_channel_fraction = dead_channel_fraction(output, node.output.C());
    record.output.assign(output.begin(), output.begin() + node.output.count() / node.output.N());
    const std::string prefix = node.name + ".";
    for (const ParameterEntry& entry : store.entries()) {
      if (!starts_with(entry.spec.name, prefix)) continue;
      const int64_t size = shape_count(entry.spec.shape);
      if (!entry.spec.trainable) continue;
      ParameterRecord parameter;
      parameter.name = entry.spec.name;
      parameter.shape = entry.spec.shape;
      parameter.before = slice(values_before, entry.offset, size);
      parameter.after = slice(values_after, entry.offset, size);
      parameter.gradient = slice(gradients, entry.offset, size);
      parameter.weight = tensor_statistics(parameter.before);
      parameter.gradient_norm = l2_norm(parameter.gradient);
      std::vector<float> update(static_cast<size_t>(size));
      for (int64_t j = 0; j < size; ++j) update[j] = parameter.after[j] - parameter.before[j];
      parameter.update_norm = l2_norm(update);
      parameter.update_ratio = parameter.weight.norm > 0 ? parameter.update_norm / parameter.weight.norm : 0.0;
      record.parameters.push_back(std::move(parameter));
    }
    if (record.kind == "BatchNorm2d") {
      record.is_batch_norm = true;
      BatchNormRecord& bn = record.batch_norm;
      const int input_index = node.inputs.at(0);
      const Tensor& input = input_index < 0 ? images : nodes[static_cast<size_t>(input_index)].output;
      const std::vector<float> x = input.to_vector();  // (N,H,W,C)
      const int64_t channels = input.C(), rows = input.count() / channels;
      bn.batch_mean.assign(static_cast<size_t>(channels), 0.0);
      bn.batch_variance.assign(static_cast<size_t>(channels), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < channels; ++c) bn.batch_mean[c] += x[r * channels + c];
      for (double& mean : bn.batch_mean) mean /= static_cast<double>(rows);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < channels; ++c) {
          const double deviation = x[r * channels + c] - bn.batch_mean[c];
          bn.batch_variance[c] += deviation * deviation;
        }
      for (double& variance : bn.batch_variance) variance /= static_cast<double>(rows);
      const ParameterEntry& mean = store.entry(node.name + ".running_mean");
      const ParameterEntry& variance = store.entry(node.name + ".running_var");
      bn.running_mean_before = slice(state_before, mean.offset, channels);
      bn.running_mean_after = slice(state_after, mean.offset, channels);
      bn.running_variance_before = slice(state_before, variance.offset, channels);
      bn.running_variance_after = slice(state_after, variance.offset, channels);
    }
  }
  // What each node's code called, asked of the layer after the step (a convolution answers with
  // the algorithms its selector decided during the step, and why).
  for (int i = 0; i < count; ++i) {
    const NetworkNode& node = nodes[static_cast<size_t>(i)];
    step.nodes[static_cast<size_t>(i)].functions =
        node.layer->functions(network.device(), network.input_shapes(node, images.N()),
                              /*input_gradient=*/node.inputs.at(0) >= 0);  // none for the images
  }
  return step;
}

}  // namespace pneumo::cli
