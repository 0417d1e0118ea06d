// CUDA kernels of Sigmoid (grid-stride loops over the flat tensor, 32-bit
// index math when the count allows it), then their launchers.
#include "engine/cuda_resources.h"
#include "kernels/activation_math.h"
#include "layers/sigmoid.h"

namespace pneumo {

namespace {

template <typename Index>
__global__ void sigmoid_forward_kernel(float* output, const float* input, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) output[i] = sigmoid(input[i]);
}

template <typename Index>
__global__ void sigmoid_backward_kernel(float* input_gradient, const float* output, const float* output_gradient,
                                        Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    input_gradient[i] += sigmoid_gradient(output[i], output_gradient[i]);
}

}  // namespace

void sigmoid_forward_cuda(float* output, const float* input, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    sigmoid_forward_kernel<Index><<<blocks, 256>>>(output, input, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void sigmoid_backward_cuda(float* input_gradient, const float* output, const float* output_gradient, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    sigmoid_backward_kernel<Index><<<blocks, 256>>>(input_gradient, output, output_gradient, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Sigmoid::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  sigmoid_forward_cuda(output.data(), inputs[0]->data(), output.count());
}

void Sigmoid::backward_cuda(Context&, const std::vector<const Tensor*>&, const Tensor& output,
                            const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  sigmoid_backward_cuda(input_gradients[0]->data(), output.data(), output_gradient.data(), output.count());
}

}  // namespace pneumo
