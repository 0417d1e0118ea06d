// CUDA kernels of Add (grid-stride loops over the flat tensors, 32-bit index math when the
// count allows it), then their launchers.
#include "engine/cuda_resources.h"
#include "layers/add.h"

namespace pneumo {

namespace {

template <typename Index>
__global__ void add_forward_kernel(float* output, const float* first, const float* second, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    output[i] = first[i] + second[i];
}

template <typename Index>
__global__ void add_backward_kernel(float* input_gradient, const float* output_gradient, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    input_gradient[i] += output_gradient[i];
}

}  // namespace

void add_forward_cuda(float* output, const float* first, const float* second, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    add_forward_kernel<Index><<<blocks, 256>>>(output, first, second, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void add_backward_cuda(float* input_gradient, const float* output_gradient, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    add_backward_kernel<Index><<<blocks, 256>>>(input_gradient, output_gradient, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Add::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  add_forward_cuda(output.data(), inputs[0]->data(), inputs[1]->data(), output.count());
}

void Add::backward_cuda(Context&, const std::vector<const Tensor*>&, const Tensor& output,
                        const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  for (Tensor* input_gradient : input_gradients)
    if (input_gradient) add_backward_cuda(input_gradient->data(), output_gradient.data(), output.count());
}

}  // namespace pneumo
