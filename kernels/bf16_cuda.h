// CUDA launchers that move data between fp32 and bfloat16 (the 16 bits of kernels/bf16_math.h,
// round to nearest even) for the bf16 convolutions (layers/conv2d.cu). Device pointers, the
// default stream. CUDA builds only.
#pragma once
#include <cstdint>

namespace pneumo {

#ifdef PNEUMO_HAVE_CUDA
// rounded (count) bfloat16 bits = bf16_bits_from_float(values (count)).
void round_to_bf16_cuda(uint16_t* rounded, const float* values, int64_t count);
// output (P,K) = float(values (P,K)) + bias (K, or null): a bf16 convolution's result in fp32.
void bf16_to_float_add_bias_cuda(float* output, const uint16_t* values, const float* bias, int64_t pixels, int64_t K);
// accumulated (count) += float(values (count)): a bf16 gradient added to its fp32 accumulator.
void accumulate_bf16_cuda(float* accumulated, const uint16_t* values, int64_t count);
#endif

}  // namespace pneumo
