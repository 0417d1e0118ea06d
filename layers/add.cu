// CUDA kernels of Add (grid-stride loops over the flat tensors), then their launchers.
#include "engine/cuda_resources.h"
#include "layers/add.h"

namespace pneumo {

namespace {

__global__ void add_forward_kernel(float* output, const float* first, const float* second,
                                   int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    output[i] = first[i] + second[i];
}

__global__ void add_backward_kernel(float* input_gradient, const float* output_gradient,
                                    int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    input_gradient[i] += output_gradient[i];
}

}  // namespace

void add_forward_cuda(float* output, const float* first, const float* second, int64_t count) {
  add_forward_kernel<<<grid_size_for(count), 256>>>(output, first, second, count);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void add_backward_cuda(float* input_gradient, const float* output_gradient, int64_t count) {
  add_backward_kernel<<<grid_size_for(count), 256>>>(input_gradient, output_gradient, count);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Add::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  add_forward_cuda(output.data(), inputs[0]->data(), inputs[1]->data(), output.count());
}

void Add::backward_cuda(Context&, const std::vector<const Tensor*>&, const Tensor& output,
                        const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  for (Tensor* input_gradient : input_gradients)
    if (input_gradient) add_backward_cuda(input_gradient->data(), output_gradient.data(), output.count());
}

}  // namespace pneumo
