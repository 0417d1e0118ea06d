#include "layers/sigmoid.h"

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/activation_math.h"

namespace pneumo {

namespace {
constexpr int64_t kElementsPerChunk = 1 << 15;  // smallest parallel_for chunk of elements
}

Shape Sigmoid::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "Sigmoid input");
  return inputs[0];
}

int64_t Sigmoid::forward_flops(const std::vector<Shape>& inputs) const {
  return 4 * shape_count(output_shape(inputs));
}

void Sigmoid::forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                      bool training) {
  (void)training;
  PNEUMO_REQUIRE(inputs.size() == 1 && inputs[0], "Sigmoid::forward needs one input");
  const Tensor& input = *inputs[0];
  require_shape(output, output_shape({input.shape()}), "Sigmoid output");
  require_device(input, context.device(), "Sigmoid input");
  require_device(output, context.device(), "Sigmoid output");
  if (context.device() == Device::CPU) {
    sigmoid_forward_cpu(output.data(), input.data(), input.count());
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  sigmoid_forward_cuda(output.data(), input.data(), input.count());
#else
  throw_no_cuda_backend(kind());
#endif
}

void Sigmoid::backward(Context& context, const std::vector<const Tensor*>& inputs,
                       const Tensor& output, const Tensor& output_gradient,
                       const std::vector<Tensor*>& input_gradients) {
  (void)inputs;
  PNEUMO_REQUIRE(input_gradients.size() == 1,
                 "Sigmoid::backward needs one input-gradient slot");
  if (!input_gradients[0]) return;
  Tensor& input_gradient = *input_gradients[0];
  require_nhwc(output.shape(), "Sigmoid output");
  require_shape(output_gradient, output.shape(), "Sigmoid output gradient");
  require_shape(input_gradient, output.shape(), "Sigmoid input gradient");
  require_device(output, context.device(), "Sigmoid output");
  require_device(output_gradient, context.device(), "Sigmoid output gradient");
  require_device(input_gradient, context.device(), "Sigmoid input gradient");
  if (context.device() == Device::CPU) {
    sigmoid_backward_cpu(input_gradient.data(), output.data(), output_gradient.data(),
                         output.count());
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  sigmoid_backward_cuda(input_gradient.data(), output.data(), output_gradient.data(),
                        output.count());
#else
  throw_no_cuda_backend(kind());
#endif
}

void sigmoid_forward_cpu(float* output, const float* input, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) output[i] = sigmoid(input[i]);
  });
}

void sigmoid_backward_cpu(float* input_gradient, const float* output, const float* output_gradient,
                          int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      input_gradient[i] += sigmoid_gradient(output[i], output_gradient[i]);
  });
}

}  // namespace pneumo
