// Rounds float buffers to bfloat16 values (kernels/bf16_math.h, round to nearest even), kept as
// floats: how the portable bf16 convolution path (layers/conv2d_cpu_kernels.h) makes its operands.
#pragma once
#include <cstdint>

namespace pneumo {

// rounded (count) = round_to_bf16(values (count)); rounded may equal values. Threaded.
void round_to_bf16_cpu(float* rounded, const float* values, int64_t count);

}  // namespace pneumo
