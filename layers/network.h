// Network: the notebook's residual segmentation CNN (create_network) as a small graph of layer
// nodes. Images (N,S,S,1) flow forward through the nodes in order to probabilities (N,S,S,1);
// backward walks the nodes in reverse from d loss / d probabilities, ACCUMULATING into the
// parameter gradients of the network's own flat ParameterStore (zero them once per step).
//
// Nodes and parameter names (also the checkpoint tensor names), depth d = 1..depth,
// block b = 1..n_blocks, channels doubling at each depth:
//   conv0                      Conv2d 3x3, 1 -> channels, no bias       conv0.weight
//   down<d>.bn|.relu|.conv|.pool  BN, LeakyReLU, Conv2d 1x1 (no bias), MaxPool 2x2
//                              down<d>.bn.{gamma,beta,running_mean,running_var}, down<d>.conv.weight
//   block<d>_<b>.bn1|.relu1|.conv1|.bn2|.relu2|.conv2|.add   residual block, add = conv2 + block input
//                              block<d>_<b>.bn1.*, .conv1.weight, .bn2.*, .conv2.weight
//                              (with dropout > 0, a block<d>_<b>.dropout node between relu2 and
//                              conv2; it has no parameters, so the names above do not change)
//   head.bn|.relu|.conv|.sigmoid|.upsample   BN, LeakyReLU, Conv2d 1x1 -> 1 with bias, sigmoid,
//                              nearest upsampling by 2^depth     head.bn.*, head.conv.{weight,bias}
// Conv weights are (K,R,S,C); activations NHWC (engine/layout.md).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/parameters.h"
#include "engine/tensor.h"
#include "layers/conv2d_cudnn_algorithm.h"
#include "layers/conv_selection.h"
#include "layers/layer.h"

namespace pneumo {

class Communicator;  // engine/distributed.h

struct NetworkConfig {
  int64_t input_size = 256;  // S: images are S x S, S divisible by 2^depth
  int64_t channels = 32;     // channels of conv0; doubled at each depth
  int64_t n_blocks = 2;      // residual blocks per depth
  int64_t depth = 4;         // downsampling stages
  float leaky_slope = 0.0f;  // the notebook's LeakyReLU(0)
  float dropout = 0.0f;      // rate of a Dropout before each block's conv2; 0 = none (the notebook)
};

// Bounds of a configuration (a checkpoint's metadata is untrusted input): depth 1..10, channels
// 1..4096, n_blocks 0..64, input_size 2^depth..16384, and at most 2^28 parameters in all (1 GiB
// per float buffer), so no field can overflow the build arithmetic or ask for terabytes.
constexpr int64_t kMaxNetworkDepth = 10;
constexpr int64_t kMaxNetworkChannels = 4096;
constexpr int64_t kMaxNetworkBlocks = 64;
constexpr int64_t kMaxNetworkInputSize = 16384;
constexpr int64_t kMaxNetworkParameters = int64_t{1} << 28;

// Throws pneumo::Error naming the field when the configuration is out of bounds or cannot build
// a network.
void validate_network_config(const NetworkConfig& config);

// Parameter counts of the network `config` builds (trainable, and non-trainable batch-norm state),
// computed without building it; `config` must be valid.
struct NetworkParameterCounts {
  int64_t trainable = 0, state = 0;
};
NetworkParameterCounts network_parameter_counts(const NetworkConfig& config);

struct NetworkNode {
  std::string name;  // e.g. "block2_1.conv1"; parameters are name + "." + relative
  std::unique_ptr<Layer> layer;
  std::vector<int> inputs;  // indices of earlier nodes; -1 is the network's image input
  Shape image_shape;        // output shape for one image, (1,H,W,C)
  Tensor output;            // (N,H,W,C), a leading view of a buffer for the largest batch
                            // (in place: the same buffer as output of node `overwrites`)
  int overwrites = -1;      // in place: the input node whose buffer this node writes its
                            // output over (plan_in_place), -1 when it has its own
  bool fused = false;       // CPU: its producer (a batch norm) already applied this
                            // LeakyReLU in place, so forward skips it (plan_in_place)
  Tensor output_gradient;   // (N,H,W,C), d loss / d output; only live during backward
};

class Network {
 public:
  // Builds the graph and its ParameterStore on `device`, initialized from `seed` (Glorot
  // uniform conv weights, BN gamma 1 / beta 0 / running mean 0 / running var 1, zero bias).
  Network(Device device, NetworkConfig config, uint64_t seed);

  const NetworkConfig& config() const { return config_; }
  Device device() const { return store_.device(); }
  ParameterStore& parameters() { return store_; }
  const ParameterStore& parameters() const { return store_; }
  int64_t trainable_parameter_count() const { return store_.trainable_count(); }
  int64_t state_count() const { return store_.state_count(); }
  const std::vector<NetworkNode>& nodes() const { return nodes_; }
  Shape input_shape(int64_t batch) const;  // (N,S,S,1)
  // CUDA only: lets every convolution use TF32 tensor cores (Conv2d::set_allow_tf32); off by
  // default, so the GPU computes in full fp32 like the CPU.
  void set_allow_tf32(bool allow);
  // CUDA only: how every convolution's cuDNN algorithm is chosen (Conv2d::set_cudnn_search).
  void set_cudnn_search(CudnnSearch search);
  // Every convolution's precision (Conv2d::set_precision; layers/precision.md): fp32 (default)
  // or bf16. Parameters, Adam state, batch-norm statistics and the loss stay fp32 either way.
  void set_precision(Precision precision);
  Precision precision() const { return layer_settings_.precision; }
  // CPU only: how every convolution's algorithm is chosen (layers/conv_selection.h). A new
  // selector each call (auto's memory starts empty); the default policy (direct,gemm, no tuning
  // file) until called. The program builds the policy once (apps/main.cpp) and passes it here.
  void set_conv_policy(const ConvPolicy& policy);
  // The policy and auto's memory of this network's convolutions (a run saves its records).
  ConvSelector& conv_selector() const;
  // In place (on by default): a LeakyReLU writes over its batch norm's output and a residual
  // Add over its conv2's output (Layer::can_overwrite_input), which saves those buffers. Results
  // are bit-identical either way, but the overwritten nodes' outputs then hold their
  // consumer's values: `pneumo inspect`, which draws every node's output, turns it off. On the
  // CPU such a ReLU is also fused into its batch norm's pass (Layer::fuse_leaky_relu).
  void set_in_place(bool in_place);
  bool in_place() const { return in_place_; }
  // Constant weights, for inference (predict, evaluate, the inference benchmark): the CPU
  // convolutions transform or pack their filters once and keep them (Conv2d, "Constant weights"
  // in layers/conv2d.md) instead of at every forward, at the cost of that memory (the Winograd
  // filters of the notebook's network: about 200 MB). While on, a training forward, a backward
  // and whatever changes the weights (Adam::step, load_checkpoint, copy_from) throw. Results
  // are bit-identical either way. Off by default; off frees what was kept.
  void set_constant_weights(bool constant);
  bool constant_weights() const { return store_.constant(); }
  // The step whose dropout masks the next training forward draws (train_step passes Adam's step
  // count, so a resumed run draws the masks of an uninterrupted one). No-op without dropout.
  // first_image: this process's first image in the global batch (data parallel; 0 alone).
  void set_dropout_step(uint64_t step, int64_t first_image = 0);

  // images (N,S,S,1) on device() -> probabilities (N,S,S,1), owned by the network and valid
  // until the next forward. training=true: batch statistics, running statistics updated.
  const Tensor& forward(Context& context, const Tensor& images, bool training);
  // output_gradient (N,S,S,1): d loss / d probabilities for the last forward. ACCUMULATES into
  // parameter gradients, and into *input_gradient (N,S,S,1) when given (tests only).
  void backward(Context& context, const Tensor& output_gradient, Tensor* input_gradient = nullptr);
  // The same, calling after_node(i) once node i's backward has run: from then on the gradients
  // of the parameters of nodes i.. are final (data-parallel gradient buckets, training_step.cpp).
  void backward(Context& context, const Tensor& output_gradient, const std::function<void(int)>& after_node);
  // The shapes of a node's inputs, (N,H,W,C) each, for `batch` images.
  std::vector<Shape> input_shapes(const NetworkNode& node, int64_t batch) const;
  // Offset in parameters().gradients() of node i's first trainable parameter, -1 when it has none.
  int64_t gradient_offset(int index) const;
  const Tensor& output() const { return nodes_.back().output; }
  // Synchronized batch norm over the ranks of `communicator` (null: each process's own batch);
  // see BatchNorm2d::set_communicator.
  void set_batch_norm_communicator(Communicator* communicator);
  // The settings every layer was last given (Layer::configure; the setters above change them).
  const LayerSettings& layer_settings() const { return layer_settings_; }
  // (N,S,S,1) scratch for d loss / d probabilities, allocated with the outputs (the training
  // step writes the loss gradient here and passes it to backward).
  Tensor& output_gradient_buffer() { return output_gradient_buffer_; }

  // The same passes one node at a time, for per-layer timing (benchmarks/bench_network.cpp):
  // begin_forward; forward_node(i) for i = 0..n-1 | begin_backward; backward_node(i) for
  // i = n-1..0; end_backward. forward/backward above are exactly these loops.
  void begin_forward(const Tensor& images);
  void forward_node(Context& context, int index, bool training);
  void begin_backward(const Tensor& output_gradient, Tensor* input_gradient);
  void backward_node(Context& context, int index);
  void end_backward();

 private:
  void add_node(const std::string& name, std::unique_ptr<Layer> layer, std::vector<int> inputs);
  int add_chain(const std::string& name, std::unique_ptr<Layer> layer, int input);
  void allocate_outputs(int64_t batch);
  void plan_in_place();  // sets every node's `overwrites` from in_place_
  Tensor acquire_gradient(const Shape& shape);
  void release_gradient(Tensor& gradient);

  NetworkConfig config_;
  std::vector<NetworkNode> nodes_;
  ParameterStore store_;
  bool in_place_ = true;
  LayerSettings layer_settings_;   // what every layer was told (configure_layers)
  void configure_layers();         // Layer::configure(layer_settings_) on every node
  int64_t batch_ = 0;              // batch size of the current outputs (leading views)
  int64_t capacity_batch_ = 0;     // largest batch seen: what the buffers are allocated for
  Tensor output_gradient_buffer_;  // (N,S,S,1)
  Tensor images_;                  // view of the current forward's images
  Tensor input_gradient_;          // view of the caller's input gradient, or empty
  // Activation gradients are only live between the last consumer's backward and the node's own
  // backward, so they come from a pool of reusable buffers (zeroed when handed out) instead of
  // one buffer per node: a few buffers serve the whole backward pass.
  std::vector<Tensor> gradient_pool_;
  std::vector<int> last_consumer_;  // per node: highest index of a node that reads it
};

// One row per node of the model summary, for `batch` images.
struct SummaryRow {
  std::string name, kind;
  Shape output_shape;
  int64_t parameters = 0;  // trainable
  int64_t state = 0;       // non-trainable (running statistics)
  int64_t flops = 0;       // forward FLOPs for the batch (multiply-add = 2)
};

struct ModelSummary {
  std::vector<SummaryRow> rows;
  int64_t batch = 1;
  int64_t trainable_parameters = 0, state_values = 0, flops_per_image = 0;
  int64_t activation_values = 0;  // sum of node output sizes for the batch
};

ModelSummary summarize(const Network& network, int64_t batch);

// The memory of one training step (train_step) at `batch`, in floats, on the network's device:
// everything the step keeps allocated at its peak (layers/training_step.md, "Memory").
struct MemoryBudget {
  int64_t activations = 0;                // every node's output (N,H,W,C), kept for backward; a node
                                          // that runs in place (NetworkNode::overwrites) adds none
  int64_t activation_gradients = 0;       // the backward pass's gradient pool at its peak, plus the
                                          // loss gradient d loss / d probabilities (N,S,S,1)
  int64_t layer_scratch = 0;              // the layers' shared grow-only scratch: the largest
                                          // Layer::scratch_floats (a convolution's padded input copy,
                                          // im2col columns, packed filter)
  int64_t parameters = 0;                 // trainable values (P)
  int64_t state = 0;                      // batch-norm running statistics
  int64_t gradients = 0;                  // (P), one flat buffer
  int64_t adam_m = 0, adam_v = 0;         // (P) each
  int64_t batch_tensors = 0;              // the step's images and masks (N,S,S,1) each
  Precision precision = Precision::Fp32;  // the convolutions': bf16 adds their rounded operand
                                          // copies to layer_scratch (every buffer is float32)
  int64_t total() const {
    return activations + activation_gradients + layer_scratch + parameters + state + gradients + adam_m + adam_v +
           batch_tensors;
  }
};
MemoryBudget training_memory_budget(const Network& network, int64_t batch);
// The budget as lines of MiB, with the total.
std::string format_memory_budget(const MemoryBudget& budget, int64_t batch);
// A fixed-width table: one line per node, then the totals.
std::string format_summary(const ModelSummary& summary);

}  // namespace pneumo
