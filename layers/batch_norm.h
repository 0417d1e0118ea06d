// BatchNorm2d: per-channel batch normalization of an (N,H,W,C) tensor with Keras semantics
// (keras BatchNormalization(momentum=0.9, epsilon=1e-3); PyTorch BatchNorm2d(momentum=0.1,
// eps=1e-3)). Forward input -> output:
//   training:  mean, biased var over (N,H,W) per channel; y = gamma * (x - mean) / sqrt(var + eps)
//              + beta; running_mean = momentum * running_mean + (1 - momentum) * mean and
//              running_var = momentum * running_var + (1 - momentum) * var * M / (M - 1), M = N*H*W
//   inference: the same y with running_mean and running_var.
// Forward saves the mean and 1/sqrt(var + eps) it used (members saved_mean_, saved_inv_std_);
// backward reads them with the forward input and d loss / d output and ACCUMULATES into
// d loss / d input (if not null) and into the gamma and beta gradients.
// Statistics are sums of d = x - shift so large activation means do not cancel: the CPU takes
// the shift from a pilot mean of 256 evenly spaced rows and makes ONE pass (runs of 16 rows
// summed in float, then in double); CUDA makes two passes (the mean, then sums of x - mean).
// Reductions use a fixed partition and order on both back ends, so results are deterministic.
#pragma once
#include <cstdint>
#include <optional>

#include "engine/memory.h"
#include "layers/layer.h"

namespace pneumo {

class Communicator;  // engine/distributed.h

class BatchNorm2d : public Layer {
 public:
  explicit BatchNorm2d(int64_t channels, float momentum = 0.9f, float epsilon = 1e-3f);
  std::string kind() const override { return "BatchNorm2d"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  int64_t channels() const { return channels_; }
  float momentum() const { return momentum_; }
  float epsilon() const { return epsilon_; }

  Shape output_shape(const std::vector<Shape>& inputs) const override;
  // 4 per element: subtract the mean, multiply by 1/std, multiply by gamma, add beta (training
  // adds about 4 more per element for the statistics, not counted).
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;
  // Backward reads the input and the saved statistics, never the output.
  bool backward_reads_output() const override { return false; }
  // "gamma" (C) Ones, "beta" (C) Zeros trainable; "running_mean" (C) Zeros, "running_var" (C)
  // Ones non-trainable (ParameterStore::state).
  std::vector<ParameterSpec> parameter_specs() const override;
  void bind_parameters(const ParameterStore& store, const std::string& prefix) override;
  // backward uses the statistics of the last forward: batch statistics after a training forward
  // (full batch-norm backward), running statistics after an inference forward (dx = gamma/std * dy).

  // Synchronized batch norm (data-parallel training, engine/distributed.md): with a communicator
  // of more than one rank, each rank's input is its equal slice of the global batch (rank r holds
  // global rows [r*rows, (r+1)*rows)), and a training forward sums the pilot rows and the
  // per-channel sums over the ranks (so mean, variance and running statistics are the global
  // batch's), and backward sums the two per-channel gradient sums over the ranks. Null (the
  // default) or one rank: this process's batch alone, the single-process path unchanged.
  // CPU: the pilot sums and the 2C sums go through the communicator; CUDA: the per-channel
  // totals of both passes (2C doubles, copied to the host and back) do.
  void set_communicator(Communicator* communicator) { communicator_ = communicator; }
  Communicator* communicator() const { return communicator_; }

  // Operator fusion (CPU only): with a slope set, the CPU forward also applies
  // leaky_relu(y, slope) to its output in the same pass over memory. The graph sets it on a batch
  // norm whose LeakyReLU runs in place over its output, and then skips that ReLU's forward
  // (Network::plan_in_place): the same values, one pass fewer. Backward is unchanged (it never
  // reads the output). Unset (the default): the plain batch norm.
  void set_fused_leaky_relu(std::optional<float> slope) { fused_slope_ = slope; }
  void configure(const LayerSettings& settings) override { set_communicator(settings.batch_norm_communicator); }
  bool fuse_leaky_relu(std::optional<float> slope) override {
    set_fused_leaky_relu(slope);
    return true;
  }
  std::optional<float> fused_leaky_relu() const { return fused_slope_; }

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h
      std::vector<HeldTensor>
      held_tensors() const override;

 private:
  // Checks the batch for training and (re)allocates the saved statistics on `device`.
  void prepare_forward(Device device, const Tensor& input, bool training);
  void require_saved(Device device) const;  // backward needs a forward on this device

  int64_t channels_;
  float momentum_, epsilon_;
  // Views into the ParameterStore, all (C).
  Tensor gamma_, beta_, gamma_gradient_, beta_gradient_, running_mean_, running_var_;
  // Saved by forward for backward, (C) each, on the forward's device.
  Tensor saved_mean_, saved_inv_std_;
  bool saved_training_ = false;
  Communicator* communicator_ = nullptr;  // not owned; see set_communicator
  std::optional<float> fused_slope_;      // see set_fused_leaky_relu
  Memory cuda_scratch_;                   // CUDA reduction partials, grow-only
};

// ---- CPU (rows = N*H*W; every buffer is (rows, C) or (C)) ----------------------------------
// mean, inv_std (C) OVERWRITTEN with the batch mean and 1/sqrt(biased var + epsilon) of input
// (rows, C); running_mean, running_var (C) updated in place (unbiased var). rows >= 2.
// With a communicator (see BatchNorm2d::set_communicator) input is this rank's slice and the
// statistics are those of all ranks' rows together; null: input alone.
void batch_norm_training_statistics_cpu(float* mean, float* inv_std, float* running_mean, float* running_var,
                                        const float* input, int64_t rows, int64_t C, float momentum, float epsilon,
                                        Communicator* communicator = nullptr);
// mean, inv_std (C) OVERWRITTEN from running_mean, running_var (C).
void batch_norm_inference_statistics_cpu(float* mean, float* inv_std, const float* running_mean,
                                         const float* running_var, int64_t C, float epsilon);
// output (rows, C) OVERWRITTEN with gamma * (input - mean) * inv_std + beta, then, when
// fused_slope is set, leaky_relu of that (kernels/activation_math.h) in the same pass.
void batch_norm_normalize_cpu(float* output, const float* input, const float* mean, const float* inv_std,
                              const float* gamma, const float* beta, int64_t rows, int64_t C,
                              std::optional<float> fused_slope = {});
// gamma_gradient (C) += sum dy * x_hat, beta_gradient (C) += sum dy, and, if input_gradient is
// not null, input_gradient (rows, C) += the batch-norm input gradient (training: through the
// batch statistics; inference: gamma * inv_std * dy).
void batch_norm_backward_cpu(float* input_gradient, float* gamma_gradient, float* beta_gradient,
                             const float* output_gradient, const float* input, const float* mean, const float* inv_std,
                             const float* gamma, int64_t rows, int64_t C, bool training,
                             Communicator* communicator = nullptr);

// ---- CUDA (layers/batch_norm.cu): the same contracts on device pointers; `scratch` is device
// memory for the reduction partials, grown as needed. ----------------------------------------
void batch_norm_training_statistics_cuda(float* mean, float* inv_std, float* running_mean, float* running_var,
                                         const float* input, int64_t rows, int64_t C, float momentum, float epsilon,
                                         Memory& scratch, Communicator* communicator = nullptr);
void batch_norm_inference_statistics_cuda(float* mean, float* inv_std, const float* running_mean,
                                          const float* running_var, int64_t C, float epsilon);
void batch_norm_normalize_cuda(float* output, const float* input, const float* mean, const float* inv_std,
                               const float* gamma, const float* beta, int64_t rows, int64_t C);
void batch_norm_backward_cuda(float* input_gradient, float* gamma_gradient, float* beta_gradient,
                              const float* output_gradient, const float* input, const float* mean, const float* inv_std,
                              const float* gamma, int64_t rows, int64_t C, bool training, Memory& scratch,
                              Communicator* communicator = nullptr);

}  // namespace pneumo
