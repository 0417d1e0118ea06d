// CUDA kernels of LeakyReLU (grid-stride loops over the flat tensor, 32-bit
// index math when the count allows it), then their launchers.
#include "engine/cuda_resources.h"
#include "kernels/activation_math.h"
#include "layers/leaky_relu.h"

namespace pneumo {

namespace {

template <typename Index>
__global__ void leaky_relu_forward_kernel(float* output, const float* input, float slope, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    output[i] = leaky_relu(input[i], slope);
}

template <typename Index>
__global__ void leaky_relu_backward_kernel(float* input_gradient, const float* input, const float* output_gradient,
                                           float slope, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    input_gradient[i] += leaky_relu_gradient(input[i], output_gradient[i], slope);
}

}  // namespace

void leaky_relu_forward_cuda(float* output, const float* input, float slope, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    leaky_relu_forward_kernel<Index><<<blocks, 256>>>(output, input, slope, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void leaky_relu_backward_cuda(float* input_gradient, const float* input, const float* output_gradient, float slope,
                              int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    leaky_relu_backward_kernel<Index>
        <<<blocks, 256>>>(input_gradient, input, output_gradient, slope, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void LeakyReLU::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  leaky_relu_forward_cuda(output.data(), inputs[0]->data(), slope_, output.count());
}

void LeakyReLU::backward_cuda(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                              const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  leaky_relu_backward_cuda(input_gradients[0]->data(), inputs[0]->data(), output_gradient.data(), slope_,
                           output_gradient.count());
}

}  // namespace pneumo
