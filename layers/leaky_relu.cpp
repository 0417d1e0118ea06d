#include "layers/leaky_relu.h"

#include <cmath>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/activation_math.h"

namespace pneumo {

namespace {
constexpr int64_t kElementsPerChunk = 1 << 16;  // smallest parallel_for chunk of elements
}

LeakyReLU::LeakyReLU(float slope) : slope_(slope) {
  if (!std::isfinite(slope)) throw Error("LeakyReLU: slope must be finite");
}

Shape LeakyReLU::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "LeakyReLU input");
  return inputs[0];
}

int64_t LeakyReLU::forward_flops(const std::vector<Shape>& inputs) const {
  return shape_count(output_shape(inputs));
}

void LeakyReLU::forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                        bool training) {
  (void)training;
  PNEUMO_REQUIRE(inputs.size() == 1 && inputs[0], "LeakyReLU::forward needs one input");
  const Tensor& input = *inputs[0];
  require_shape(output, output_shape({input.shape()}), "LeakyReLU output");
  require_device(input, context.device(), "LeakyReLU input");
  require_device(output, context.device(), "LeakyReLU output");
  if (context.device() == Device::CPU) {
    leaky_relu_forward_cpu(output.data(), input.data(), slope_, input.count());
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  leaky_relu_forward_cuda(output.data(), input.data(), slope_, input.count());
#else
  throw_no_cuda_backend(kind());
#endif
}

void LeakyReLU::backward(Context& context, const std::vector<const Tensor*>& inputs,
                         const Tensor& output, const Tensor& output_gradient,
                         const std::vector<Tensor*>& input_gradients) {
  (void)output;
  PNEUMO_REQUIRE(inputs.size() == 1 && inputs[0] && input_gradients.size() == 1,
                 "LeakyReLU::backward needs one input and one input-gradient slot");
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  Tensor& input_gradient = *input_gradients[0];
  require_shape(output_gradient, input.shape(), "LeakyReLU output gradient");
  require_shape(input_gradient, input.shape(), "LeakyReLU input gradient");
  require_device(input, context.device(), "LeakyReLU input");
  require_device(output_gradient, context.device(), "LeakyReLU output gradient");
  require_device(input_gradient, context.device(), "LeakyReLU input gradient");
  if (context.device() == Device::CPU) {
    leaky_relu_backward_cpu(input_gradient.data(), input.data(), output_gradient.data(), slope_,
                            input.count());
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  leaky_relu_backward_cuda(input_gradient.data(), input.data(), output_gradient.data(), slope_,
                           input.count());
#else
  throw_no_cuda_backend(kind());
#endif
}

void leaky_relu_forward_cpu(float* output, const float* input, float slope, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) output[i] = leaky_relu(input[i], slope);
  });
}

void leaky_relu_backward_cpu(float* input_gradient, const float* input,
                             const float* output_gradient, float slope, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      input_gradient[i] += leaky_relu_gradient(input[i], output_gradient[i], slope);
  });
}

}  // namespace pneumo
