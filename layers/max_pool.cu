// CUDA kernels of MaxPool2d, then their launchers. One thread per output element (grid-stride);
// consecutive threads take consecutive channels, so loads and stores coalesce in NHWC. Windows
// do not overlap (stride 2 = window 2), so in backward each input element is written by exactly
// one thread: no atomics, deterministic. Index math is 32-bit when the input tensor allows it.
#include "engine/cuda_resources.h"
#include "kernels/resample_math.h"
#include "layers/max_pool.h"

namespace pneumo {

namespace {

// Flat NHWC index of the top-left input of the window of output element `index`.
template <typename Index>
__device__ __forceinline__ Index window_top_left(Index index, Index H, Index W, Index C) {
  const Index OH = H / 2, OW = W / 2;
  const Index k = index % C;
  Index rest = index / C;
  const Index ow = rest % OW;
  rest /= OW;
  const Index oh = rest % OH;
  const Index n = rest / OH;
  return ((n * H + 2 * oh) * W + 2 * ow) * C + k;
}

template <typename Index>
__global__ void max_pool_forward_kernel(float* output, const float* input, Index N, Index H, Index W, Index C) {
  const Index count = N * (H / 2) * (W / 2) * C;
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) {
    const Index a = window_top_left(i, H, W, C), b = a + C, c = a + W * C, d = c + C;
    output[i] = max_pool_max(input[a], input[b], input[c], input[d]);
  }
}

template <typename Index>
__global__ void max_pool_backward_kernel(float* input_gradient, const float* input, const float* output_gradient,
                                         Index N, Index H, Index W, Index C) {
  const Index count = N * (H / 2) * (W / 2) * C;
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) {
    const Index a = window_top_left(i, H, W, C), b = a + C, c = a + W * C, d = c + C;
    const WindowGradient shares = max_pool_route_gradient(input[a], input[b], input[c], input[d], output_gradient[i]);
    input_gradient[a] += shares.top_left;
    input_gradient[b] += shares.top_right;
    input_gradient[c] += shares.bottom_left;
    input_gradient[d] += shares.bottom_right;
  }
}

// Index math reaches the input's count (4x the output's); the grid covers the output.
template <typename Kernel>
void launch_max_pool(int64_t N, int64_t H, int64_t W, int64_t C, Kernel&& kernel) {
  const int64_t count = N * (H / 2) * (W / 2) * C;
  const int blocks = grid_size_for(count);
  launch_with_index(N * H * W * C, blocks, 256, [&](auto index) { kernel(index, blocks); });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

}  // namespace

void max_pool_forward_cuda(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C) {
  launch_max_pool(N, H, W, C, [&](auto index, int blocks) {
    using Index = decltype(index);
    max_pool_forward_kernel<Index><<<blocks, 256>>>(output, input, static_cast<Index>(N), static_cast<Index>(H),
                                                    static_cast<Index>(W), static_cast<Index>(C));
  });
}

void max_pool_backward_cuda(float* input_gradient, const float* input, const float* output_gradient, int64_t N,
                            int64_t H, int64_t W, int64_t C) {
  launch_max_pool(N, H, W, C, [&](auto index, int blocks) {
    using Index = decltype(index);
    max_pool_backward_kernel<Index><<<blocks, 256>>>(input_gradient, input, output_gradient, static_cast<Index>(N),
                                                     static_cast<Index>(H), static_cast<Index>(W),
                                                     static_cast<Index>(C));
  });
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void MaxPool2d::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  max_pool_forward_cuda(output.data(), input.data(), input.N(), input.H(), input.W(), input.C());
}

void MaxPool2d::backward_cuda(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                              const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  max_pool_backward_cuda(input_gradients[0]->data(), input.data(), output_gradient.data(), input.N(), input.H(),
                         input.W(), input.C());
}

}  // namespace pneumo
