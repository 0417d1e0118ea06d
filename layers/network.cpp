#include "layers/network.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

#include "engine/check.h"
#include "layers/add.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/leaky_relu.h"
#include "layers/max_pool.h"
#include "layers/sigmoid.h"
#include "layers/upsample.h"

namespace pneumo {

NetworkParameterCounts network_parameter_counts(const NetworkConfig& config) {
  // Mirrors the constructor below; tests/test_network.cpp checks it against built networks.
  // Called on validated configurations only, so nothing here overflows.
  NetworkParameterCounts counts;
  auto batch_norm = [&](int64_t channels) { counts.trainable += 2 * channels, counts.state += 2 * channels; };
  int64_t channels = config.channels;
  counts.trainable += 9 * channels;  // conv0 (channels,3,3,1)
  for (int64_t d = 1; d <= config.depth; ++d) {
    batch_norm(channels);
    counts.trainable += channels * channels * 2;  // down<d>.conv 1x1, channels -> 2 channels
    channels *= 2;
    for (int64_t b = 1; b <= config.n_blocks; ++b) {
      batch_norm(channels), batch_norm(channels);
      counts.trainable += 2 * 9 * channels * channels;
    }
  }
  batch_norm(channels);
  counts.trainable += channels + 1;  // head.conv weight (1,1,1,channels) and bias
  return counts;
}

void validate_network_config(const NetworkConfig& config) {
  auto fail = [](const std::string& message) { throw Error("network config: " + message); };
  // Bounds first, each small enough that the arithmetic below and in the constructor cannot
  // overflow; the parameter budget then keeps a crafted configuration from allocating terabytes.
  if (config.depth < 1 || config.depth > kMaxNetworkDepth)
    fail("depth must be in 1.." + std::to_string(kMaxNetworkDepth) + ", got " + std::to_string(config.depth));
  if (config.channels < 1 || config.channels > kMaxNetworkChannels)
    fail("channels must be in 1.." + std::to_string(kMaxNetworkChannels) + ", got " + std::to_string(config.channels));
  if (config.n_blocks < 0 || config.n_blocks > kMaxNetworkBlocks)
    fail("n_blocks must be in 0.." + std::to_string(kMaxNetworkBlocks) + ", got " + std::to_string(config.n_blocks));
  if (!(config.dropout >= 0.0f && config.dropout < 1.0f))
    fail("dropout must be in [0, 1), got " + std::to_string(config.dropout));
  const int64_t stride = int64_t{1} << config.depth;
  if (config.input_size < stride || config.input_size > kMaxNetworkInputSize || config.input_size % stride != 0)
    fail("input_size must be a multiple of 2^depth = " + std::to_string(stride) + " in " + std::to_string(stride) +
         ".." + std::to_string(kMaxNetworkInputSize) + ", got " + std::to_string(config.input_size));
  if (!std::isfinite(config.leaky_slope)) fail("leaky_slope must be finite");
  const NetworkParameterCounts counts = network_parameter_counts(config);
  if (counts.trainable + counts.state > kMaxNetworkParameters)
    fail("channels=" + std::to_string(config.channels) + ", n_blocks=" + std::to_string(config.n_blocks) +
         ", depth=" + std::to_string(config.depth) + " make " + std::to_string(counts.trainable + counts.state) +
         " parameters, more than the limit of " + std::to_string(kMaxNetworkParameters));
}

Network::Network(Device device, NetworkConfig config, uint64_t seed) : config_(config) {
  validate_network_config(config_);
  const float slope = config_.leaky_slope;
  int64_t channels = config_.channels;
  int x = -1;  // the image input
  nodes_.reserve(static_cast<size_t>(2 + config_.depth * (4 + 8 * config_.n_blocks) + 5));
  x = add_chain("conv0", std::make_unique<Conv2d>(1, channels, 3, false), x);
  for (int64_t d = 1; d <= config_.depth; ++d) {
    const int64_t in_channels = channels;
    channels *= 2;
    const std::string down = "down" + std::to_string(d);
    x = add_chain(down + ".bn", std::make_unique<BatchNorm2d>(in_channels), x);
    x = add_chain(down + ".relu", std::make_unique<LeakyReLU>(slope), x);
    x = add_chain(down + ".conv", std::make_unique<Conv2d>(in_channels, channels, 1, false), x);
    x = add_chain(down + ".pool", std::make_unique<MaxPool2d>(), x);
    for (int64_t b = 1; b <= config_.n_blocks; ++b) {
      const std::string block = "block" + std::to_string(d) + "_" + std::to_string(b);
      const int block_input = x;
      int y = add_chain(block + ".bn1", std::make_unique<BatchNorm2d>(channels), block_input);
      y = add_chain(block + ".relu1", std::make_unique<LeakyReLU>(slope), y);
      y = add_chain(block + ".conv1", std::make_unique<Conv2d>(channels, channels, 3, false), y);
      y = add_chain(block + ".bn2", std::make_unique<BatchNorm2d>(channels), y);
      y = add_chain(block + ".relu2", std::make_unique<LeakyReLU>(slope), y);
      if (config_.dropout > 0.0f)  // each dropout node draws its own mask stream
        y = add_chain(block + ".dropout",
                      std::make_unique<Dropout>(config_.dropout, seed ^ (0x9E3779B97F4A7C15ull * nodes_.size())), y);
      y = add_chain(block + ".conv2", std::make_unique<Conv2d>(channels, channels, 3, false), y);
      add_node(block + ".add", std::make_unique<Add>(), {y, block_input});
      x = static_cast<int>(nodes_.size()) - 1;
    }
  }
  x = add_chain("head.bn", std::make_unique<BatchNorm2d>(channels), x);
  x = add_chain("head.relu", std::make_unique<LeakyReLU>(slope), x);
  x = add_chain("head.conv", std::make_unique<Conv2d>(channels, 1, 1, true), x);
  x = add_chain("head.sigmoid", std::make_unique<Sigmoid>(), x);
  add_chain("head.upsample", std::make_unique<Upsample>(static_cast<int>(int64_t{1} << config_.depth)), x);

  // One flat store for every node's parameters, in node order, then views bound back.
  std::vector<ParameterSpec> specs;
  for (const auto& node : nodes_)
    for (ParameterSpec spec : node.layer->parameter_specs()) {
      spec.name = node.name + "." + spec.name;
      specs.push_back(std::move(spec));
    }
  store_ = ParameterStore(device, specs, seed);
  for (auto& node : nodes_) node.layer->bind_parameters(store_, node.name);

  last_consumer_.assign(nodes_.size(), -1);
  for (size_t j = 0; j < nodes_.size(); ++j)
    for (int i : nodes_[j].inputs)
      if (i >= 0) last_consumer_[static_cast<size_t>(i)] = static_cast<int>(j);
  plan_in_place();
  set_conv_policy(ConvPolicy{});  // the default direct,gemm until the program names its own
}

// Node j may write over input node i's buffer when j offers to (Layer::can_overwrite_input), j
// is i's only reader (nothing else, forward or backward, needs i's values), i's backward does
// not read its own output, the shapes match, and i's buffer is its own (an overwritten buffer is
// not overwritten again: i's own producer may read it as its input in backward).
void Network::plan_in_place() {
  std::vector<int> readers(nodes_.size(), 0);
  for (const NetworkNode& node : nodes_)
    for (int i : node.inputs)
      if (i >= 0) ++readers[static_cast<size_t>(i)];
  for (NetworkNode& node : nodes_) {
    node.overwrites = -1;
    node.fused = false;
    node.layer->fuse_leaky_relu(std::nullopt);  // undo an earlier plan's fusion
    if (!in_place_) continue;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int i = node.inputs[k];
      if (i < 0) continue;
      const NetworkNode& input = nodes_[static_cast<size_t>(i)];
      if (node.layer->can_overwrite_input(static_cast<int>(k)) && readers[static_cast<size_t>(i)] == 1 &&
          !input.layer->backward_reads_output() && input.overwrites < 0 && input.image_shape == node.image_shape) {
        node.overwrites = i;
        break;
      }
    }
    // Fusion (CPU): a LeakyReLU in place over a layer that can apply it in its own pass (a batch
    // norm) is applied there (Layer::leaky_relu_slope, Layer::fuse_leaky_relu).
    const std::optional<float> slope = node.layer->leaky_relu_slope();
    if (slope && node.overwrites >= 0 && store_.device() == Device::CPU)
      node.fused = nodes_[static_cast<size_t>(node.overwrites)].layer->fuse_leaky_relu(slope);
  }
}

void Network::set_in_place(bool in_place) {
  if (in_place == in_place_) return;
  in_place_ = in_place;
  plan_in_place();
  for (NetworkNode& node : nodes_) node.output = Tensor();  // reallocated by the next forward
  gradient_pool_.clear();
  output_gradient_buffer_ = Tensor();
  batch_ = capacity_batch_ = 0;
}

void Network::set_constant_weights(bool constant) {
  store_.set_constant(constant);
  for (NetworkNode& node : nodes_) node.layer->set_constant_weights(constant);
}

void Network::add_node(const std::string& name, std::unique_ptr<Layer> layer, std::vector<int> inputs) {
  NetworkNode node;
  node.name = name;
  node.inputs = std::move(inputs);
  std::vector<Shape> shapes;
  for (int i : node.inputs)
    shapes.push_back(i < 0 ? Shape{1, config_.input_size, config_.input_size, 1}
                           : nodes_[static_cast<size_t>(i)].image_shape);
  node.image_shape = layer->output_shape(shapes);
  node.layer = std::move(layer);
  nodes_.push_back(std::move(node));
}

int Network::add_chain(const std::string& name, std::unique_ptr<Layer> layer, int input) {
  add_node(name, std::move(layer), {input});
  return static_cast<int>(nodes_.size()) - 1;
}

void Network::configure_layers() {
  for (NetworkNode& node : nodes_) node.layer->configure(layer_settings_);
}

void Network::set_allow_tf32(bool allow) {
  layer_settings_.allow_tf32 = allow;
  configure_layers();
}

void Network::set_conv_policy(const ConvPolicy& policy) {
  layer_settings_.conv_selector = std::make_shared<ConvSelector>(policy);
  configure_layers();
}

ConvSelector& Network::conv_selector() const { return *layer_settings_.conv_selector; }

void Network::set_precision(Precision precision) {
  layer_settings_.precision = precision;
  configure_layers();
}

void Network::set_cudnn_search(CudnnSearch search) {
  layer_settings_.cudnn_search = search;
  configure_layers();
}

Shape Network::input_shape(int64_t batch) const { return {batch, config_.input_size, config_.input_size, 1}; }

void Network::set_dropout_step(uint64_t step, int64_t first_image) {
  layer_settings_.step = step;
  layer_settings_.first_image = first_image;
  configure_layers();
}

std::vector<Shape> Network::input_shapes(const NetworkNode& node, int64_t batch) const {
  std::vector<Shape> shapes;
  for (int i : node.inputs) {
    Shape shape = i < 0 ? input_shape(1) : nodes_[static_cast<size_t>(i)].image_shape;
    shape[0] = batch;
    shapes.push_back(shape);
  }
  return shapes;
}

// Grow-only: buffers are allocated for the largest batch seen; a smaller batch (the last one of
// an epoch, a validation batch) runs in leading views of them, so alternating batch sizes
// never reallocate (each cudaFree would synchronise the device).
void Network::allocate_outputs(int64_t batch) {
  if (batch == batch_) return;
  const bool grow = batch > capacity_batch_;
  if (grow) {
    gradient_pool_.clear();
    for (auto& node : nodes_) node.output = Tensor();  // release every old buffer first
  }
  for (auto& node : nodes_) {
    Shape shape = node.image_shape;
    shape[0] = batch;
    if (node.overwrites >= 0) {  // the input's buffer, already (re)allocated: it comes earlier
      node.output = nodes_[static_cast<size_t>(node.overwrites)].output;
    } else if (grow) {
      node.output = Tensor(device(), shape);
    } else {
      node.output = node.output.leading(shape);
    }
  }
  const Shape output_shape = nodes_.back().output.shape();
  if (grow) {
    output_gradient_buffer_ = Tensor();
    output_gradient_buffer_ = Tensor(device(), output_shape);
    capacity_batch_ = batch;
  } else {
    output_gradient_buffer_ = output_gradient_buffer_.leading(output_shape);
  }
  batch_ = batch;
}

void Network::begin_forward(const Tensor& images) {
  PNEUMO_REQUIRE(images.rank() == 4 && images.N() > 0, "network input: expected (N,S,S,1) images");
  require_shape(images, input_shape(images.N()), "network input images");
  require_device(images, device(), "network input images");
  allocate_outputs(images.N());
  images_ = images;
}

void Network::forward_node(Context& context, int index, bool training) {
  if (training) store_.require_mutable("Network::forward (training)");
  NetworkNode& node = nodes_[static_cast<size_t>(index)];
  if (node.fused) return;  // its batch norm wrote the activated values into the shared buffer
  std::vector<const Tensor*> inputs;
  for (int i : node.inputs) inputs.push_back(i < 0 ? &images_ : &nodes_[static_cast<size_t>(i)].output);
  node.layer->forward(context, inputs, node.output, training);
}

void Network::set_batch_norm_communicator(Communicator* communicator) {
  layer_settings_.batch_norm_communicator = communicator;
  configure_layers();
}

const Tensor& Network::forward(Context& context, const Tensor& images, bool training) {
  PNEUMO_REQUIRE(context.device() == device(), "Network::forward: context and network devices differ");
  begin_forward(images);
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) forward_node(context, i, training);
  return output();
}

// Pool buffers are sized for capacity_batch_ (shape[0] is the current batch), so the same
// buffers serve every batch size up to it.
Tensor Network::acquire_gradient(const Shape& shape) {
  Shape full = shape;
  full[0] = capacity_batch_;
  const int64_t capacity = shape_count(full);
  for (size_t i = 0; i < gradient_pool_.size(); ++i)
    if (gradient_pool_[i].capacity() == capacity) {
      Tensor gradient = gradient_pool_[i].leading(shape);
      gradient_pool_.erase(gradient_pool_.begin() + static_cast<long>(i));
      gradient.zero();
      return gradient;
    }
  return Tensor(device(), full).leading(shape);  // zeroed
}

void Network::release_gradient(Tensor& gradient) {
  gradient_pool_.push_back(gradient);
  gradient = Tensor();
}

void Network::begin_backward(const Tensor& output_gradient, Tensor* input_gradient) {
  PNEUMO_REQUIRE(batch_ > 0 && images_.data() != nullptr, "Network::backward called before forward");
  store_.require_mutable("Network::backward");
  require_shape(output_gradient, output().shape(), "network output gradient");
  require_device(output_gradient, device(), "network output gradient");
  input_gradient_ = Tensor();
  if (input_gradient) {
    require_shape(*input_gradient, images_.shape(), "network input gradient");
    require_device(*input_gradient, device(), "network input gradient");
    input_gradient_ = *input_gradient;
  }
  nodes_.back().output_gradient = Tensor();  // never pool the caller's tensor
  for (auto& node : nodes_)                  // left over only if an earlier backward threw
    if (!node.output_gradient.empty()) release_gradient(node.output_gradient);
  nodes_.back().output_gradient = output_gradient;  // the caller's tensor; read-only here
}

void Network::backward_node(Context& context, int index) {
  NetworkNode& node = nodes_[static_cast<size_t>(index)];
  std::vector<const Tensor*> inputs;
  std::vector<Tensor*> input_gradients;
  for (int i : node.inputs) {
    if (i < 0) {
      inputs.push_back(&images_);
      input_gradients.push_back(input_gradient_.empty() ? nullptr : &input_gradient_);
      continue;
    }
    NetworkNode& input = nodes_[static_cast<size_t>(i)];
    // The first consumer to run backward (the last in forward order) hands out its buffer.
    if (input.output_gradient.empty()) input.output_gradient = acquire_gradient(input.output.shape());
    inputs.push_back(&input.output);
    input_gradients.push_back(&input.output_gradient);
  }
  PNEUMO_REQUIRE(!node.output_gradient.empty(), "Network::backward: node " + node.name + " has no gradient");
  node.layer->backward(context, inputs, node.output, node.output_gradient, input_gradients);
  // All consumers of this node ran before it: its gradient is dead now.
  if (index == static_cast<int>(nodes_.size()) - 1)
    node.output_gradient = Tensor();
  else
    release_gradient(node.output_gradient);
}

void Network::end_backward() { input_gradient_ = Tensor(); }

void Network::backward(Context& context, const Tensor& output_gradient, Tensor* input_gradient) {
  PNEUMO_REQUIRE(context.device() == device(), "Network::backward: context and network devices differ");
  begin_backward(output_gradient, input_gradient);
  for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) backward_node(context, i);
  end_backward();
}

void Network::backward(Context& context, const Tensor& output_gradient, const std::function<void(int)>& after_node) {
  PNEUMO_REQUIRE(context.device() == device(), "Network::backward: context and network devices differ");
  begin_backward(output_gradient, nullptr);
  for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) {
    backward_node(context, i);
    after_node(i);
  }
  end_backward();
}

int64_t Network::gradient_offset(int index) const {
  const NetworkNode& node = nodes_.at(static_cast<size_t>(index));
  int64_t offset = -1;
  for (const ParameterSpec& spec : node.layer->parameter_specs()) {
    if (!spec.trainable) continue;
    const int64_t at = store_.entry(node.name + "." + spec.name).gradient.data() - store_.gradients().data();
    offset = offset < 0 ? at : std::min(offset, at);
  }
  return offset;
}

// ---- summary -------------------------------------------------------------------------------

ModelSummary summarize(const Network& network, int64_t batch) {
  PNEUMO_REQUIRE(batch > 0, "summary: batch must be positive");
  ModelSummary summary;
  summary.batch = batch;
  for (const auto& node : network.nodes()) {
    SummaryRow row;
    row.name = node.name;
    row.kind = node.layer->kind();
    row.output_shape = node.image_shape;
    row.output_shape[0] = batch;
    for (const auto& spec : node.layer->parameter_specs())
      (spec.trainable ? row.parameters : row.state) += shape_count(spec.shape);
    std::vector<Shape> shapes;
    for (int i : node.inputs)
      shapes.push_back(i < 0 ? network.input_shape(1) : network.nodes()[static_cast<size_t>(i)].image_shape);
    const int64_t per_image = node.layer->forward_flops(shapes);
    row.flops = per_image * batch;
    summary.trainable_parameters += row.parameters;
    summary.state_values += row.state;
    summary.flops_per_image += per_image;
    summary.activation_values += shape_count(row.output_shape);
    summary.rows.push_back(std::move(row));
  }
  return summary;
}

MemoryBudget training_memory_budget(const Network& network, int64_t batch) {
  PNEUMO_REQUIRE(batch > 0, "memory budget: batch must be positive");
  const std::vector<NetworkNode>& nodes = network.nodes();
  const auto batch_shape = [&](Shape shape) {
    shape[0] = batch;
    return shape;
  };
  MemoryBudget budget;
  const ParameterStore& store = network.parameters();
  budget.parameters = store.trainable_count();
  budget.state = store.state_count();
  budget.gradients = budget.adam_m = budget.adam_v = store.trainable_count();
  budget.batch_tensors = 2 * shape_count(network.input_shape(batch));
  budget.precision = network.precision();
  for (const NetworkNode& node : nodes) {
    if (node.overwrites < 0) budget.activations += shape_count(batch_shape(node.image_shape));
    std::vector<Shape> inputs;
    bool input_gradient = false;
    for (int i : node.inputs) {
      inputs.push_back(i < 0 ? network.input_shape(batch) : batch_shape(nodes[static_cast<size_t>(i)].image_shape));
      input_gradient = input_gradient || i >= 0;
    }
    budget.layer_scratch =
        std::max(budget.layer_scratch, node.layer->scratch_floats(inputs, network.device(), input_gradient));
  }
  // The gradient pool of Network::backward, replayed on sizes: a node's gradient buffer is taken
  // (from the pool, or newly allocated) when its first consumer runs backward and returned after
  // the node's own backward; buffers are never freed, so the peak is everything ever allocated.
  std::vector<int64_t> pool;
  std::vector<bool> has_gradient(nodes.size(), false);
  int64_t allocated = 0;
  for (int index = static_cast<int>(nodes.size()) - 1; index >= 0; --index) {
    for (int i : nodes[static_cast<size_t>(index)].inputs) {
      if (i < 0 || has_gradient[static_cast<size_t>(i)]) continue;
      has_gradient[static_cast<size_t>(i)] = true;
      const int64_t count = shape_count(batch_shape(nodes[static_cast<size_t>(i)].image_shape));
      auto reusable = std::find(pool.begin(), pool.end(), count);
      if (reusable != pool.end())
        pool.erase(reusable);
      else
        allocated += count;
    }
    if (index != static_cast<int>(nodes.size()) - 1)
      pool.push_back(shape_count(batch_shape(nodes[static_cast<size_t>(index)].image_shape)));
  }
  budget.activation_gradients = allocated + shape_count(network.input_shape(batch));
  return budget;
}

std::string format_memory_budget(const MemoryBudget& budget, int64_t batch) {
  const auto mib = [](int64_t floats) { return static_cast<double>(floats) * 4.0 / (1024.0 * 1024.0); };
  std::ostringstream text;
  char line[256];
  std::snprintf(line, sizeof line, "memory of one training step, batch %lld, %s convolutions (float32 buffers, MiB):\n",
                static_cast<long long>(batch), precision_name(budget.precision));
  text << line;
  const std::pair<const char*, int64_t> rows[] = {
      {"activations (node outputs; in-place ones share a buffer)", budget.activations},
      {"activation gradients (backward pool + loss gradient)", budget.activation_gradients},
      {budget.precision == Precision::Bf16 ? "layer scratch (conv bf16 operand copies, padded, im2col)"
                                           : "layer scratch (conv padded copies, im2col, packed filters)",
       budget.layer_scratch},
      {"parameters", budget.parameters},
      {"batch-norm running statistics", budget.state},
      {"parameter gradients", budget.gradients},
      {"Adam first moments m", budget.adam_m},
      {"Adam second moments v", budget.adam_v},
      {"images and masks of the batch", budget.batch_tensors}};
  for (const auto& [what, floats] : rows) {
    std::snprintf(line, sizeof line, "  %-58s %10.1f\n", what, mib(floats));
    text << line;
  }
  std::snprintf(line, sizeof line, "  %-58s %10.1f  (%.2f GiB)\n", "total", mib(budget.total()),
                mib(budget.total()) / 1024.0);
  text << line;
  return text.str();
}

std::string format_summary(const ModelSummary& summary) {
  std::ostringstream text;
  char line[256];
  std::snprintf(line, sizeof line, "%-18s %-12s %-20s %12s %8s %16s\n", "node", "kind", "output", "parameters", "state",
                "forward FLOPs");
  text << line << std::string(91, '-') << "\n";
  for (const auto& row : summary.rows) {
    std::snprintf(line, sizeof line, "%-18s %-12s %-20s %12lld %8lld %16lld\n", row.name.c_str(), row.kind.c_str(),
                  shape_string(row.output_shape).c_str(), static_cast<long long>(row.parameters),
                  static_cast<long long>(row.state), static_cast<long long>(row.flops));
    text << line;
  }
  text << std::string(91, '-') << "\n";
  const double gflops = static_cast<double>(summary.flops_per_image) * 1e-9;
  std::snprintf(line, sizeof line,
                "trainable parameters %lld, non-trainable state %lld, total %lld\n"
                "forward %.3f GFLOPs per image (%.3f for the batch of %lld); training step ~3x\n"
                "activations %.1f MiB for the batch (float32 outputs of every node)\n",
                static_cast<long long>(summary.trainable_parameters), static_cast<long long>(summary.state_values),
                static_cast<long long>(summary.trainable_parameters) + static_cast<long long>(summary.state_values),
                gflops, gflops * static_cast<double>(summary.batch), static_cast<long long>(summary.batch),
                static_cast<double>(summary.activation_values) * 4.0 / (1024.0 * 1024.0));
  text << line;
  return text.str();
}

}  // namespace pneumo
