#include "kernels/cpu/bf16_round.h"

#include "engine/cpu_threads.h"
#include "kernels/bf16_math.h"

namespace pneumo {

void round_to_bf16_cpu(float* rounded, const float* values, int64_t count) {
  // Memory-bound: chunks of at least 64 Ki floats per thread.
  parallel_for(count, int64_t{1} << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) rounded[i] = round_to_bf16(values[i]);
  });
}

}  // namespace pneumo
