// CUDA kernels of Sigmoid (grid-stride loops over the flat tensor), then their launchers.
#include "engine/cuda_resources.h"
#include "kernels/activation_math.h"
#include "layers/sigmoid.h"

namespace pneumo {

namespace {

__global__ void sigmoid_forward_kernel(float* output, const float* input, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    output[i] = sigmoid(input[i]);
}

__global__ void sigmoid_backward_kernel(float* input_gradient, const float* output,
                                        const float* output_gradient, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    input_gradient[i] += sigmoid_gradient(output[i], output_gradient[i]);
}

}  // namespace

void sigmoid_forward_cuda(float* output, const float* input, int64_t count) {
  sigmoid_forward_kernel<<<grid_size_for(count), 256>>>(output, input, count);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void sigmoid_backward_cuda(float* input_gradient, const float* output,
                           const float* output_gradient, int64_t count) {
  sigmoid_backward_kernel<<<grid_size_for(count), 256>>>(input_gradient, output, output_gradient,
                                                         count);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Sigmoid::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output,
                           bool) {
  sigmoid_forward_cuda(output.data(), inputs[0]->data(), output.count());
}

void Sigmoid::backward_cuda(Context&, const std::vector<const Tensor*>&, const Tensor& output,
                            const Tensor& output_gradient,
                            const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  sigmoid_backward_cuda(input_gradients[0]->data(), output.data(), output_gradient.data(),
                        output.count());
}

}  // namespace pneumo
