// CUDA side of layers/adam.h: one grid-stride kernel over the flat parameter buffers
// (32-bit index math when the count allows it).
#include "engine/cuda_check.h"
#include "engine/cuda_resources.h"
#include "kernels/adam_math.h"
#include "layers/adam.h"

namespace pneumo {

namespace {

template <typename Index>
__global__ void adam_step_kernel(float* values, const float* gradients, float* adam_m, float* adam_v, Index count,
                                 AdamStepScalars scalars) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) {
    float value = values[i], m = adam_m[i], v = adam_v[i];
    adam_update(value, m, v, gradients[i], scalars);
    values[i] = value;
    adam_m[i] = m;
    adam_v[i] = v;
  }
}

}  // namespace

void adam_step_cuda(float* values, const float* gradients, float* adam_m, float* adam_v, int64_t count,
                    AdamStepScalars scalars) {
  const int blocks = grid_size_for(count);
  launch_with_index(count, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    adam_step_kernel<Index><<<blocks, 256>>>(values, gradients, adam_m, adam_v, static_cast<Index>(count), scalars);
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

}  // namespace pneumo
