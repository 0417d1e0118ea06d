// Layer: one node type of the network graph, with a hand-written forward and backward on each
// back end. There is no autograd: whatever backward needs is either an input/output tensor the
// graph passes back in, or saved explicitly by forward in the layer's own members.
//
// The contract, checked once here for every layer (Layer::forward / Layer::backward):
//  - activations are NHWC (N,H,W,C) float32 tensors on context.device();
//  - forward gets exactly input_count() non-null inputs and OVERWRITES `output`, already
//    allocated by the caller with output_shape(input shapes);
//  - backward gets the same inputs, the forward output, d loss / d output (same shape as the
//    output) and input_count() input-gradient slots (null when that input needs no gradient,
//    else the input's shape); it ACCUMULATES (+=) into every non-null input gradient and into
//    its parameter gradients: the graph zeroes activation gradients before a backward pass and
//    the ParameterStore zeroes parameter gradients once per step.
// After validation the base calls the back end's virtual forward_cpu / forward_cuda (and
// backward_cpu / backward_cuda). The CUDA defaults throw a clear "not compiled in" error, so a
// missing GPU path fails loudly, never falls back.
//
// Adding a layer (see layers/leaky_relu.* for the smallest complete example):
//  1. layers/<name>.h: a class deriving from Layer with kind(), output_shape(), forward_flops(),
//     parameter_specs()/bind_parameters() if it has parameters, and under `protected:` the
//     back-end overrides, declared by PNEUMO_LAYER_BACKENDS (below): forward_cpu/backward_cpu,
//     and forward_cuda/backward_cuda when CUDA is compiled in.
//  2. the per-element math, if any, once in kernels/*_math.h as __host__ __device__ functions.
//  3. layers/<name>.cpp: the CPU overrides (loops over the shared math, threaded with
//     parallel_for). No shape/device checks: the base did them.
//  4. layers/<name>.cu: the kernels, their launchers and the CUDA overrides.
//  5. tests: the shared gradient checker (tests/support/gradient_check.h) on the CPU, a
//     CPU-vs-CUDA parity case (skipped without a GPU), and a teaching page layers/<name>.md.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/parameters.h"
#include "engine/tensor.h"
#include "layers/conv2d_cudnn_algorithm.h"
#include "layers/precision.h"

namespace pneumo {

class Communicator;  // engine/distributed.h
class ConvSelector;  // layers/conv_selection.h

// What the network tells every layer (Network::configure_layers): each layer takes the fields
// that concern it and ignores the rest, so a new setting is a field here and an override in the
// layers it concerns, never a cast to a concrete layer type in the graph.
struct LayerSettings {
  bool allow_tf32 = false;                            // Conv2d on CUDA: TF32 tensor cores
  CudnnSearch cudnn_search = CudnnSearch::Heuristic;  // Conv2d on CUDA: how cuDNN's algorithm is chosen
  Communicator* batch_norm_communicator = nullptr;    // BatchNorm2d: statistics over the ranks (null: alone)
  uint64_t step = 0;                                  // Dropout: the step whose masks the next forward draws
  int64_t first_image = 0;                            // Dropout: this rank's first image in the global batch
  std::shared_ptr<ConvSelector> conv_selector;        // Conv2d on the CPU: the policy and auto's memory
  Precision precision = Precision::Fp32;              // Conv2d: fp32, or bf16 operands (layers/precision.h)
};

// The functions one forward and one backward of a layer call, outermost first
// ("LeakyReLU::forward_cpu -> leaky_relu_forward_cpu -> leaky_relu (kernels/activation_math.h)"),
// and the teaching page that explains them, relative to the repository ("layers/leaky_relu.md").
struct LayerFunctions {
  std::string forward, backward, teaching_page;
};

class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string kind() const = 0;  // e.g. "Conv2d"
  virtual int input_count() const { return 1; }
  // Output shape for the given input shapes; throws pneumo::Error on incompatible inputs.
  virtual Shape output_shape(const std::vector<Shape>& inputs) const = 0;
  // Forward floating-point operations (multiply and add count as 2) for the given inputs.
  virtual int64_t forward_flops(const std::vector<Shape>& inputs) const = 0;

  // Parameters with names relative to the layer ("weight", "bias", "running_mean", ...).
  virtual std::vector<ParameterSpec> parameter_specs() const { return {}; }
  // Called once the ParameterStore exists: the layer keeps views of its entries, whose full
  // names are prefix + "." + relative name.
  virtual void bind_parameters(const ParameterStore& store, const std::string& prefix) {
    (void)store;
    (void)prefix;
  }
  // Floats of the shared CPU scratch the layer grows in a training forward + backward with these
  // input shapes on `device` (such as a convolution's padded input copy; one grow-only buffer
  // serves every layer, so the memory budget counts the largest need, not the sum);
  // input_gradient says whether backward computes d loss / d input. Part of the memory budget
  // of a training step (training_memory_budget in layers/network.h). Default: none.
  virtual int64_t scratch_floats(const std::vector<Shape>& inputs, Device device, bool input_gradient) const {
    (void)inputs;
    (void)device;
    (void)input_gradient;
    return 0;
  }

  // In place (memory, layers/training_step.md "Memory"): whether forward may write its output
  // over input `index`'s buffer (same shape) and backward stay right when it then finds the
  // output's values there in place of that input's. The graph (Network) takes the offer only
  // when it is that input's sole reader and the input's producer does not read its own output
  // in backward. Default: no.
  virtual bool can_overwrite_input(int index) const {
    (void)index;
    return false;
  }
  // Whether backward reads the values of the forward output (a sigmoid's derivative does). Only
  // a layer that does not may have its output overwritten in place. Default: yes (the safe side).
  virtual bool backward_reads_output() const { return true; }

  // Constant weights (Network::set_constant_weights): from now until it is turned off the
  // layer's parameters do not change, so forward may keep what it derives from them between
  // calls (a convolution's transformed filter); off drops what was kept. Default: nothing kept.
  virtual void set_constant_weights(bool constant) { (void)constant; }
  // The network's settings (above); called whenever one changes. Default: none concern it.
  virtual void configure(const LayerSettings& settings) { (void)settings; }
  // Fusion (CPU): a LeakyReLU that runs in place over its producer's output offers its slope, and
  // a producer that can apply it in its own pass (a batch norm) accepts: true when it will.
  // fuse_leaky_relu(nullopt) undoes it. Defaults: no slope to offer, nothing accepted.
  virtual std::optional<float> leaky_relu_slope() const { return std::nullopt; }
  virtual bool fuse_leaky_relu(std::optional<float> slope) {
    (void)slope;
    return false;
  }
  // What a forward and a backward of this layer call on `device` for these input shapes, as its
  // code runs them (a convolution: the algorithm its selector decides, and why); input_gradient:
  // whether the backward computes the gradient of its input (not for the layer reading the
  // images). `pneumo inspect` prints it beside each node, and tests/docs/check_docs.py checks
  // every name in it exists.
  // Default: the layer's own forward_/backward_ override and layers/layer.h.
  virtual LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const;
  // Validates the contract above, then runs the context's back end. training=true uses batch
  // statistics and updates running statistics (batch norm).
  void forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output, bool training);
  // output and output_gradient: the forward output and d loss / d output. input_gradients[i]
  // may be null when that input needs no gradient (e.g. the network's image input).
  void backward(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,
                const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients);

 protected:
  // The back ends. Called only after validation: inputs has input_count() non-null entries on
  // the context's device, output has output_shape(); input_gradients has input_count() entries,
  // each null or of its input's shape.
  virtual void forward_cpu(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                           bool training) = 0;
  virtual void backward_cpu(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,
                            const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) = 0;
  // Defaults throw "the CUDA back end is not compiled into this binary / not implemented".
  virtual void forward_cuda(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output, bool training);
  virtual void backward_cuda(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,
                             const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients);
  // Tensors the layer holds (parameter views) that must live on the context's device, each with
  // a name for the error; empty tensors mean "not bound yet" and are reported as such.
  struct HeldTensor {
    const Tensor* tensor;
    const char* name;
  };
  virtual std::vector<HeldTensor> held_tensors() const { return {}; }

 private:
  void require_inputs(const Context& context, const std::vector<const Tensor*>& inputs, const char* pass) const;
};

// The back-end overrides every layer declares under `protected:`, with the signatures above:
// forward_cpu and backward_cpu, plus forward_cuda and backward_cuda when the CUDA back end is
// compiled in (they are defined at the end of the layer's .cu file).
#define PNEUMO_LAYER_CPU_BACKEND                                                                              \
  void forward_cpu(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output, bool training) \
      override;                                                                                               \
  void backward_cpu(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,         \
                    const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) override;
#ifdef PNEUMO_HAVE_CUDA
#define PNEUMO_LAYER_CUDA_BACKEND                                                                              \
  void forward_cuda(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output, bool training) \
      override;                                                                                                \
  void backward_cuda(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,         \
                     const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) override;
#else
#define PNEUMO_LAYER_CUDA_BACKEND
#endif
#define PNEUMO_LAYER_BACKENDS PNEUMO_LAYER_CPU_BACKEND PNEUMO_LAYER_CUDA_BACKEND

// Helpers for layer implementations.
void require_input_count(const Layer& layer, const std::vector<Shape>& inputs);
void require_nhwc(const Shape& shape, const std::string& what);  // rank 4, all dims > 0
// Throws pneumo::Error naming the layer kind when the CUDA back end is not compiled in.
[[noreturn]] void throw_no_cuda_backend(const std::string& layer_kind);

}  // namespace pneumo
