// Conv2d: 2-D convolution, stride 1, 'same' zero padding, kernel 1x1 or 3x3, optional bias.
// Data flows input (N,H,W,C) -> output (N,H,W,K) with weight (K,R,S,C) = (out, kh, kw, in), the
// cuDNN NHWC filter layout. Forward overwrites the output; backward ACCUMULATES into the input
// gradient (when non-null), the weight gradient and the bias gradient.
// CPU path (this file's free functions, layers/conv2d.cpp): direct AVX-512 kernels
// (kernels/cpu/conv_direct.h, kernels/cpu/conv3x3_single_channel.h) where they win, im2col +
// OpenBLAS GEMMs otherwise (512 channels, channel counts not multiples of 32, no AVX-512);
// CUDA path: cuDNN (layers/conv2d_cuda.h, layers/conv2d.cu). See layers/conv2d.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace pneumo {

// The sizes of one convolution call: input (N,H,W,C), weight (K,R,S,C) with R = S = kernel_size,
// output (N,H,W,K).
struct Conv2dGeometry {
  int64_t N = 0, H = 0, W = 0, C = 0, K = 0;
  int kernel_size = 1;
  int padding() const { return kernel_size / 2; }
  int64_t pixels() const { return N * H * W; }
};

// output (N,H,W,K) = conv(input (N,H,W,C), weight (K,R,S,C)) + bias (K); OVERWRITES output.
// bias may be null. `scratch` is a grow-only host buffer reused between calls (im2col columns,
// padded input, packed filter).
void conv2d_forward_cpu(float* output, const float* input, const float* weight, const float* bias,
                        const Conv2dGeometry& geometry, std::vector<float>& scratch);

// ACCUMULATES: input_gradient (N,H,W,C) += d/d input, weight_gradient (K,R,S,C) += d/d weight,
// bias_gradient (K) += d/d bias, given output_gradient (N,H,W,K). input_gradient and
// bias_gradient may be null (not needed / no bias).
void conv2d_backward_cpu(float* input_gradient, float* weight_gradient, float* bias_gradient,
                         const float* output_gradient, const float* input, const float* weight,
                         const Conv2dGeometry& geometry, std::vector<float>& scratch);

// Floats of `scratch` that conv2d_forward_cpu followed by conv2d_backward_cpu leave allocated for
// this geometry (the largest of the paths' padded copies, im2col columns and packed filters);
// input_gradient: whether backward computes d input. Mirrors the path choice of both functions.
int64_t conv2d_cpu_scratch_floats(const Conv2dGeometry& geometry, bool input_gradient);

class Conv2dCudaPlans;  // cuDNN descriptors and algorithms per input shape (layers/conv2d.cu)

class Conv2d : public Layer {
 public:
  // kernel_size must be 1 or 3; throws pneumo::Error otherwise.
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, bool bias);

  std::string kind() const override { return "Conv2d"; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;
  std::vector<ParameterSpec> parameter_specs() const override;
  void bind_parameters(const ParameterStore& store, const std::string& prefix) override;

  // CUDA only: let cuDNN use TF32 tensor cores (faster, ~1e-3 relative error). Off by default, so
  // the GPU computes in full fp32 like the CPU path.
  void set_allow_tf32(bool allow);
  bool allow_tf32() const { return allow_tf32_; }

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  int kernel_size() const { return kernel_size_; }
  bool has_bias() const { return has_bias_; }
  // CPU: conv2d_cpu_scratch_floats of the input's geometry; CUDA: 0 (cuDNN's workspace is the
  // context's, shared by every layer).
  int64_t scratch_floats(const std::vector<Shape>& inputs, Device device,
                         bool input_gradient) const override;
  int64_t cpu_scratch_capacity() const { return static_cast<int64_t>(cpu_scratch_.size()); }

 protected:
  void forward_cpu(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                   bool training) override;
  void backward_cpu(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,
                    const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) override;
#ifdef PNEUMO_HAVE_CUDA
  void forward_cuda(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                    bool training) override;
  void backward_cuda(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,
                     const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) override;
#endif
  std::vector<HeldTensor> held_tensors() const override;

 private:
  Conv2dGeometry geometry_for(const Shape& input) const;

  int64_t in_channels_, out_channels_;
  int kernel_size_;
  bool has_bias_;
  bool allow_tf32_ = false;
  Tensor weight_, weight_gradient_;  // views (K,R,S,C)
  Tensor bias_, bias_gradient_;      // views (K); empty without bias
  std::vector<float> cpu_scratch_;   // grow-only: im2col columns / padded input, packed filter
  std::shared_ptr<Conv2dCudaPlans> cuda_plans_;  // created on first CUDA call
};

}  // namespace pneumo
