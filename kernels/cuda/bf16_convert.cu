// The fp32 <-> bfloat16 conversions of kernels/bf16_cuda.h: grid-stride loops over the flat
// buffers, the per-element math of kernels/bf16_math.h (the same the CPU rounds with).
#include "engine/cuda_resources.h"
#include "kernels/bf16_cuda.h"
#include "kernels/bf16_math.h"

namespace pneumo {

namespace {

template <typename Index>
__global__ void round_to_bf16_kernel(uint16_t* rounded, const float* values, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    rounded[i] = bf16_bits_from_float(values[i]);
}

template <typename Index>
__global__ void bf16_to_float_add_bias_kernel(float* output, const uint16_t* values, const float* bias, Index K,
                                              Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    output[i] = float_from_bf16_bits(values[i]) + (bias ? bias[i % K] : 0.0f);
}

template <typename Index>
__global__ void accumulate_bf16_kernel(float* accumulated, const uint16_t* values, Index count) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    accumulated[i] += float_from_bf16_bits(values[i]);
}

}  // namespace

void round_to_bf16_cuda(uint16_t* rounded, const float* values, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    round_to_bf16_kernel<Index><<<blocks, 256>>>(rounded, values, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void bf16_to_float_add_bias_cuda(float* output, const uint16_t* values, const float* bias, int64_t pixels, int64_t K) {
  const int64_t count = pixels * K;
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    bf16_to_float_add_bias_kernel<Index>
        <<<blocks, 256>>>(output, values, bias, static_cast<Index>(K), static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void accumulate_bf16_cuda(float* accumulated, const uint16_t* values, int64_t count) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    accumulate_bf16_kernel<Index><<<blocks, 256>>>(accumulated, values, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

}  // namespace pneumo
