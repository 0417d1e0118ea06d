// CUDA kernels of Upsample, then their launchers. Forward: one thread per output element reads
// its source (kernels/resample_math.h). Backward: one thread per input element sums its
// factor x factor block (rows, then columns, as on the CPU) and adds it once: no atomics.
#include "engine/cuda_resources.h"
#include "kernels/resample_math.h"
#include "layers/upsample.h"

namespace pneumo {

namespace {

__global__ void upsample_forward_kernel(float* output, const float* input, int64_t N, int64_t H,
                                        int64_t W, int64_t C, int64_t factor) {
  const int64_t count = N * H * factor * W * factor * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    output[i] = input[upsample_source_index(i, H, W, C, factor)];
}

__global__ void upsample_backward_kernel(float* input_gradient, const float* output_gradient,
                                         int64_t N, int64_t H, int64_t W, int64_t C,
                                         int64_t factor) {
  const int64_t count = N * H * W * C;
  const int64_t output_row = W * factor * C;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < count;
       index += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = index % C;
    const int64_t w = (index / C) % W;
    const int64_t row = index / (W * C);  // n * H + h
    const float* dy = output_gradient + row * factor * output_row + w * factor * C + k;
    float sum = 0.0f;
    for (int64_t i = 0; i < factor; ++i)
      for (int64_t j = 0; j < factor; ++j) sum += dy[i * output_row + j * C];
    input_gradient[index] += sum;
  }
}

}  // namespace

void upsample_forward_cuda(float* output, const float* input, int64_t N, int64_t H, int64_t W,
                           int64_t C, int64_t factor) {
  const int64_t count = N * H * factor * W * factor * C;
  upsample_forward_kernel<<<grid_size_for(count), 256>>>(output, input, N, H, W, C, factor);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void upsample_backward_cuda(float* input_gradient, const float* output_gradient, int64_t N,
                            int64_t H, int64_t W, int64_t C, int64_t factor) {
  upsample_backward_kernel<<<grid_size_for(N * H * W * C), 256>>>(input_gradient, output_gradient,
                                                                   N, H, W, C, factor);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Upsample::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output,
                    bool) {
  const Tensor& input = *inputs[0];
  upsample_forward_cuda(output.data(), input.data(), input.N(), input.H(), input.W(), input.C(), factor_);
}

void Upsample::backward_cuda(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                     const Tensor& output_gradient,
                     const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  upsample_backward_cuda(input_gradients[0]->data(), output_gradient.data(), input.N(), input.H(),
                         input.W(), input.C(), factor_);
}

}  // namespace pneumo
