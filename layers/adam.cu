// CUDA side of layers/adam.h: one grid-stride kernel over the flat parameter buffers.
#include "engine/cuda_check.h"
#include "engine/cuda_resources.h"
#include "kernels/adam_math.h"
#include "layers/adam.h"

namespace pneumo {

namespace {

__global__ void adam_step_kernel(float* values, const float* gradients, float* adam_m,
                                 float* adam_v, long long count, AdamStepScalars scalars) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    float value = values[i], m = adam_m[i], v = adam_v[i];
    adam_update(value, m, v, gradients[i], scalars);
    values[i] = value;
    adam_m[i] = m;
    adam_v[i] = v;
  }
}

}  // namespace

void adam_step_cuda(float* values, const float* gradients, float* adam_m, float* adam_v,
                    int64_t count, AdamStepScalars scalars) {
  adam_step_kernel<<<grid_size_for(count), 256>>>(values, gradients, adam_m, adam_v, count, scalars);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

}  // namespace pneumo
