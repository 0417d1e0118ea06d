// CUDA kernels of Upsample, then their launchers. Forward: one thread per output element reads
// its source (kernels/resample_math.h). Backward sums each input element's factor x factor block
// and adds it once (no atomics): for small factors one thread per input element (rows, then
// columns, as on the CPU); for factors with 32 or more values per block (the head's 16: 256) one
// warp per input element, each lane adding every 32nd value of the block so that neighbouring
// lanes read neighbouring addresses, then the 32 partial sums added by shuffles in a fixed order
// (the same bits every run; the order differs from the CPU's by float rounding only). Index math
// is 32-bit when the output tensor allows it.
#include "engine/cuda_resources.h"
#include "kernels/resample_math.h"
#include "layers/upsample.h"

namespace pneumo {

namespace {

template <typename Index>
__global__ void upsample_forward_kernel(float* output, const float* input, Index N, Index H, Index W, Index C,
                                        Index factor) {
  const Index count = N * H * factor * W * factor * C;
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    output[i] = input[upsample_source_index<Index>(i, H, W, C, factor)];
}

template <typename Index>
__global__ void upsample_backward_kernel(float* input_gradient, const float* output_gradient, Index N, Index H, Index W,
                                         Index C, Index factor) {
  const Index count = N * H * W * C;
  const Index output_row = W * factor * C;
  for (Index index = grid_stride_first<Index>(); index < count; index += grid_stride_step<Index>()) {
    const Index k = index % C;
    const Index w = (index / C) % W;
    const Index row = index / (W * C);  // n * H + h
    const float* dy = output_gradient + row * factor * output_row + w * factor * C + k;
    float sum = 0.0f;
    for (Index i = 0; i < factor; ++i)
      for (Index j = 0; j < factor; ++j) sum += dy[i * output_row + j * C];
    input_gradient[index] += sum;
  }
}

// Grid-stride over warps; blockDim a multiple of 32. Every lane of a warp has the same `index`,
// so the loop and the shuffles are warp-uniform.
template <typename Index>
__global__ void upsample_backward_warp_kernel(float* input_gradient, const float* output_gradient, Index N, Index H,
                                              Index W, Index C, Index factor) {
  const Index count = N * H * W * C;
  const Index output_row = W * factor * C, block = factor * factor;
  const Index lane = threadIdx.x % 32;
  const Index warps = (static_cast<Index>(gridDim.x) * blockDim.x) / 32;
  for (Index index = (static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; index < count; index += warps) {
    const Index k = index % C;
    const Index w = (index / C) % W;
    const Index row = index / (W * C);  // n * H + h
    const float* dy = output_gradient + row * factor * output_row + w * factor * C + k;
    float sum = 0.0f;
    for (Index p = lane; p < block; p += 32) sum += dy[(p / factor) * output_row + (p % factor) * C];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) input_gradient[index] += sum;
  }
}

}  // namespace

void upsample_forward_cuda(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t factor) {
  const int64_t count = N * H * factor * W * factor * C;
  // The largest index formed is the output count (the input is smaller).
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    upsample_forward_kernel<Index><<<blocks, 256>>>(output, input, static_cast<Index>(N), static_cast<Index>(H),
                                                    static_cast<Index>(W), static_cast<Index>(C),
                                                    static_cast<Index>(factor));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void upsample_backward_cuda(float* input_gradient, const float* output_gradient, int64_t N, int64_t H, int64_t W,
                            int64_t C, int64_t factor) {
  // Index math reaches the output gradient's count, factor^2 times the input's.
  const int64_t count = N * H * W * C, output_count = count * factor * factor;
  if (factor * factor >= 32) {
    const int blocks = grid_size_for(count * 32);  // a warp per input element
    launch_with_index(output_count, blocks, 256, [&](auto index) {
      using Index = decltype(index);
      upsample_backward_warp_kernel<Index><<<blocks, 256>>>(input_gradient, output_gradient, static_cast<Index>(N),
                                                            static_cast<Index>(H), static_cast<Index>(W),
                                                            static_cast<Index>(C), static_cast<Index>(factor));
    });
    PNEUMO_CUDA_CHECK_LAUNCH();
    return;
  }
  const int blocks = grid_size_for(count);
  launch_with_index(output_count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    upsample_backward_kernel<Index><<<blocks, 256>>>(input_gradient, output_gradient, static_cast<Index>(N),
                                                     static_cast<Index>(H), static_cast<Index>(W),
                                                     static_cast<Index>(C), static_cast<Index>(factor));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Upsample::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  upsample_forward_cuda(output.data(), input.data(), input.N(), input.H(), input.W(), input.C(), factor_);
}

void Upsample::backward_cuda(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                             const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  upsample_backward_cuda(input_gradients[0]->data(), output_gradient.data(), input.N(), input.H(), input.W(), input.C(),
                         factor_);
}

}  // namespace pneumo
