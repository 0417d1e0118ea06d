// CUDA kernels of Dropout (grid-stride loops over the flat tensor, the mask drawn per element
// from kernels/dropout_math.h exactly as on the CPU), then their launchers and the layer's CUDA
// back end.
#include "engine/cuda_resources.h"
#include "kernels/dropout_math.h"
#include "layers/dropout.h"

namespace pneumo {

namespace {

__global__ void dropout_forward_kernel(float* output, const float* input, uint64_t key, uint64_t first_index,
                                       uint32_t drop_threshold, float scale, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    output[i] =
        dropout_output(input[i], dropout_keep(key, first_index + static_cast<uint64_t>(i), drop_threshold), scale);
}

__global__ void dropout_backward_kernel(float* input_gradient, const float* output_gradient, uint64_t key,
                                        uint64_t first_index, uint32_t drop_threshold, float scale, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    input_gradient[i] += dropout_gradient(
        output_gradient[i], dropout_keep(key, first_index + static_cast<uint64_t>(i), drop_threshold), scale);
}

}  // namespace

void dropout_forward_cuda(float* output, const float* input, uint64_t key, uint64_t first_index,
                          uint32_t drop_threshold, float scale, int64_t count) {
  dropout_forward_kernel<<<grid_size_for(count), 256>>>(output, input, key, first_index, drop_threshold, scale, count);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void dropout_backward_cuda(float* input_gradient, const float* output_gradient, uint64_t key, uint64_t first_index,
                           uint32_t drop_threshold, float scale, int64_t count) {
  dropout_backward_kernel<<<grid_size_for(count), 256>>>(input_gradient, output_gradient, key, first_index,
                                                         drop_threshold, scale, count);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

// ---- the layer's CUDA back end (Layer::forward/backward validated the arguments) ----------

void Dropout::forward_cuda(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool training) {
  saved_training_ = training;
  saved_key_ = dropout_stream_key(seed_, step_);
  saved_first_index_ = static_cast<uint64_t>(first_image_) * static_cast<uint64_t>(output.count() / output.N());
  const bool active = training && rate_ > 0.0f;
  dropout_forward_cuda(output.data(), inputs[0]->data(), saved_key_, saved_first_index_, active ? drop_threshold() : 0u,
                       active ? 1.0f / (1.0f - rate_) : 1.0f, output.count());
}

void Dropout::backward_cuda(Context&, const std::vector<const Tensor*>&, const Tensor&, const Tensor& output_gradient,
                            const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const bool active = saved_training_ && rate_ > 0.0f;
  dropout_backward_cuda(input_gradients[0]->data(), output_gradient.data(), saved_key_, saved_first_index_,
                        active ? drop_threshold() : 0u, active ? 1.0f / (1.0f - rate_) : 1.0f, output_gradient.count());
}

}  // namespace pneumo
