// Conv2d: 2-D convolution, stride 1, 'same' zero padding, kernel 1x1 or 3x3, optional bias.
// Data flows input (N,H,W,C) -> output (N,H,W,K) with weight (K,R,S,C) = (out, kh, kw, in), the
// cuDNN NHWC filter layout. Forward overwrites the output; backward ACCUMULATES into the input
// gradient (when non-null), the weight gradient and the bias gradient.
// CPU path: one row of the dispatch table per direction (layers/conv2d_cpu_kernels.h: reference
// loops, im2col + GEMM, direct AVX2/AVX-512 kernels, Winograd F(2x2,3x3) and F(4x4,3x3)), chosen
// by the network's ConvSelector (layers/conv_selection.h: the policy's list, or `auto`, which
// times the candidates once per shape or reads the tuning file the policy names).
// CUDA path: cuDNN (layers/conv2d_cuda.h, layers/conv2d.cu). See layers/conv2d.md, "Algorithms".
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/conv2d_cpu_kernels.h"
#include "layers/conv2d_cudnn_algorithm.h"
#include "layers/conv_algorithm.h"
#include "layers/conv_selection.h"
#include "layers/layer.h"
#include "layers/precision.h"

namespace pneumo {

// Every CPU Conv2d of a thread shares one grow-only scratch buffer (the layers run one after
// another), so it is as large as the largest single need. Its size, and a release (tests).
int64_t conv2d_cpu_shared_scratch_capacity();
void conv2d_release_cpu_scratch();

class Conv2dCudaPlans;  // cuDNN descriptors and algorithms per input shape (layers/conv2d.cu)

class Conv2d : public Layer {
 public:
  // kernel_size must be 1 or 3; throws pneumo::Error otherwise.
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, bool bias);

  std::string kind() const override { return "Conv2d"; }
  // CPU: each direction's algorithm as explain_algorithm decides it (and why), with the functions
  // its dispatch-table row calls; CUDA: the cuDNN calls.
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;
  // Backward reads the input and the weights, never the output.
  bool backward_reads_output() const override { return false; }
  std::vector<ParameterSpec> parameter_specs() const override;
  void bind_parameters(const ParameterStore& store, const std::string& prefix) override;

  // CUDA only: let cuDNN use TF32 tensor cores (faster, ~1e-3 relative error). Off by default, so
  // the GPU computes in full fp32 like the CPU path.
  void set_allow_tf32(bool allow);
  // CUDA only: how cuDNN's algorithm is chosen per shape (heuristic, find = timed like PyTorch's
  // cudnn.benchmark, deterministic = the same bits every run); layers/conv2d_cudnn_algorithm.h.
  void set_cudnn_search(CudnnSearch search) { cudnn_search_ = search; }
  // TF32 and the cuDNN search (CUDA), the network's ConvSelector (CPU) and the precision.
  void configure(const LayerSettings& settings) override;
  CudnnSearch cudnn_search() const { return cudnn_search_; }
  // CPU only: run this layer's `direction` (or every direction) with `algorithm` (Auto
  // included) instead of the policy's list; throws at run time if it cannot.
  void set_conv_algorithm(ConvDirection direction, ConvAlgorithm algorithm) {
    algorithms_[static_cast<int>(direction)] = algorithm;
  }
  void set_conv_algorithm(ConvAlgorithm algorithm) {
    for (auto& chosen : algorithms_) chosen = algorithm;
  }
  bool allow_tf32() const { return allow_tf32_; }
  // fp32, or bf16: inputs, filters and output gradients rounded to bfloat16, products
  // accumulated in fp32 (CPU: conv2d_run_cpu; CUDA: cuDNN with bf16 data, fp32 compute).
  // A filter prepared for constant weights in the other precision is dropped (made again).
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }
  // The policy and auto's memory this layer chooses by: the network's (LayerSettings), or, for a
  // layer used alone, its own with the default policy, made on first use.
  ConvSelector& selector() const;

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int kernel_size() const { return kernel_size_; }
  bool has_bias() const { return has_bias_; }
  // CPU: the largest conv2d_cpu_scratch_floats of the directions a training step runs, with the
  // algorithms this layer would use (auto: the hungriest it may pick); CUDA: 0 (cuDNN's workspace
  // is the context's, shared by every layer).
  int64_t scratch_floats(const std::vector<Shape>& inputs, Device device, bool input_gradient) const override;
  // The algorithm this layer (bound, on the CPU) would run `direction` with for `input` (N,H,W,C),
  // decided exactly as forward/backward decide it, and why. auto is resolved as at run time:
  // a shape it has no record of is timed now (and remembered), each candidate on random data of
  // the real shape with this layer's weights. Throws, naming the layer, where the run would.
  ConvAlgorithmDecision explain_algorithm(ConvDirection direction, const Shape& input) const;
  // Constant weights (Layer::set_constant_weights): the CPU forward prepares its filter
  // (conv2d_prepare_filter_cpu) once per algorithm and keeps it in `prepared_`.
  void set_constant_weights(bool constant) override;
  // Floats kept for constant weights now (0 when off, or before the first forward).
  int64_t prepared_filter_floats() const { return static_cast<int64_t>(prepared_.size()); }

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h
      std::vector<HeldTensor>
      held_tensors() const override;

 private:
  Conv2dGeometry geometry_for(const Shape& input) const;
  // The layer's own algorithm for `direction`, else the first of the policy's list that runs the
  // shape (Auto unresolved); throws, naming the layer, when none can.
  ConvAlgorithm preferred_algorithm(ConvDirection direction, const Conv2dGeometry& geometry) const;
  // The concrete algorithm for a direction: the layer's or the policy's choice, auto resolved
  // (timing `run_candidate` when the shape is new); why, into *reason when non-null.
  ConvAlgorithm resolve_algorithm(ConvDirection direction, const Conv2dGeometry& geometry,
                                  const std::function<void(ConvAlgorithm)>& run_candidate,
                                  std::string* reason = nullptr) const;
  // auto's run_candidate for `direction` on these operands: a candidate writes the forward into
  // `output` (which the real run overwrites) and the gradients into `trial` (the real ones
  // accumulate). input (N,H,W,C), output_gradient and output (N,H,W,K); weights: the layer's.
  std::function<void(ConvAlgorithm)> trial_runner(ConvDirection direction, const Conv2dGeometry& geometry,
                                                  const float* input, const float* output_gradient, float* output,
                                                  std::vector<float>& trial) const;

  int64_t in_channels_, out_channels_;
  int kernel_size_;
  bool has_bias_;
  bool allow_tf32_ = false;
  Precision precision_ = Precision::Fp32;
  CudnnSearch cudnn_search_ = CudnnSearch::Heuristic;
  std::optional<ConvAlgorithm> algorithms_[3];  // per ConvDirection; unset: the policy's list
  // The network's selector (LayerSettings::conv_selector); a layer used alone makes its own with
  // the default policy on first use.
  mutable std::shared_ptr<ConvSelector> selector_;
  Tensor weight_, weight_gradient_;  // views (K,R,S,C)
  Tensor bias_, bias_gradient_;      // views (K); empty without bias
  std::string name_;                 // the parameter prefix, e.g. "block1_1.conv1"; names the layer in errors
  std::shared_ptr<Conv2dCudaPlans> cuda_plans_;  // created on first CUDA call
  bool constant_weights_ = false;
  // Constant weights, CPU: the forward's filter prepared for prepared_algorithm_ (Auto: none
  // yet); conv2d_prepared_filter_floats of it, e.g. Winograd's U ((m+2)^2, K/OB, C, OB).
  std::vector<float> prepared_;
  ConvAlgorithm prepared_algorithm_ = ConvAlgorithm::Auto;
};

}  // namespace pneumo
