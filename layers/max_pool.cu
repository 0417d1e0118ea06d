// CUDA kernels of MaxPool2d, then their launchers. One thread per output element (grid-stride);
// consecutive threads take consecutive channels, so loads and stores coalesce in NHWC. Windows
// do not overlap (stride 2 = window 2), so in backward each input element is written by exactly
// one thread: no atomics, deterministic.
#include "engine/cuda_resources.h"
#include "kernels/resample_math.h"
#include "layers/max_pool.h"

namespace pneumo {

namespace {

// Flat NHWC index of the top-left input of the window of output element `index`.
__device__ __forceinline__ int64_t window_top_left(int64_t index, int64_t H, int64_t W, int64_t C) {
  const int64_t OH = H / 2, OW = W / 2;
  const int64_t k = index % C;
  int64_t rest = index / C;
  const int64_t ow = rest % OW;
  rest /= OW;
  const int64_t oh = rest % OH;
  const int64_t n = rest / OH;
  return ((n * H + 2 * oh) * W + 2 * ow) * C + k;
}

__global__ void max_pool_forward_kernel(float* output, const float* input, int64_t N, int64_t H,
                                        int64_t W, int64_t C) {
  const int64_t count = N * (H / 2) * (W / 2) * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t a = window_top_left(i, H, W, C), b = a + C, c = a + W * C, d = c + C;
    output[i] = max_pool_max(input[a], input[b], input[c], input[d]);
  }
}

__global__ void max_pool_backward_kernel(float* input_gradient, const float* input,
                                         const float* output_gradient, int64_t N, int64_t H,
                                         int64_t W, int64_t C) {
  const int64_t count = N * (H / 2) * (W / 2) * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t a = window_top_left(i, H, W, C), b = a + C, c = a + W * C, d = c + C;
    const WindowGradient shares =
        max_pool_route_gradient(input[a], input[b], input[c], input[d], output_gradient[i]);
    input_gradient[a] += shares.top_left;
    input_gradient[b] += shares.top_right;
    input_gradient[c] += shares.bottom_left;
    input_gradient[d] += shares.bottom_right;
  }
}

}  // namespace

void max_pool_forward_cuda(float* output, const float* input, int64_t N, int64_t H, int64_t W,
                           int64_t C) {
  const int64_t count = N * (H / 2) * (W / 2) * C;
  max_pool_forward_kernel<<<grid_size_for(count), 256>>>(output, input, N, H, W, C);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void max_pool_backward_cuda(float* input_gradient, const float* input,
                            const float* output_gradient, int64_t N, int64_t H, int64_t W,
                            int64_t C) {
  const int64_t count = N * (H / 2) * (W / 2) * C;
  max_pool_backward_kernel<<<grid_size_for(count), 256>>>(input_gradient, input, output_gradient,
                                                          N, H, W, C);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void MaxPool2d::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output,
                     bool) {
  const Tensor& input = *inputs[0];
  max_pool_forward_cuda(output.data(), input.data(), input.N(), input.H(), input.W(), input.C());
}

void MaxPool2d::backward_cuda(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                      const Tensor& output_gradient,
                      const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  max_pool_backward_cuda(input_gradients[0]->data(), input.data(), output_gradient.data(), input.N(),
                         input.H(), input.W(), input.C());
}

}  // namespace pneumo
