#include "layers/add.h"

#include "engine/check.h"
#include "engine/cpu_threads.h"

namespace pneumo {

namespace {
constexpr int64_t kElementsPerChunk = 1 << 16;  // smallest parallel_for chunk of elements
}

Shape Add::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "Add first input");
  require_nhwc(inputs[1], "Add second input");
  if (inputs[0] != inputs[1])
    throw Error("Add: the two inputs must have the same shape, got " + shape_string(inputs[0]) +
                " and " + shape_string(inputs[1]));
  return inputs[0];
}

int64_t Add::forward_flops(const std::vector<Shape>& inputs) const {
  return shape_count(output_shape(inputs));
}

void Add::forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                  bool training) {
  (void)training;
  PNEUMO_REQUIRE(inputs.size() == 2 && inputs[0] && inputs[1], "Add::forward needs two inputs");
  const Tensor& first = *inputs[0];
  const Tensor& second = *inputs[1];
  require_shape(output, output_shape({first.shape(), second.shape()}), "Add output");
  require_device(first, context.device(), "Add first input");
  require_device(second, context.device(), "Add second input");
  require_device(output, context.device(), "Add output");
  if (context.device() == Device::CPU) {
    add_forward_cpu(output.data(), first.data(), second.data(), output.count());
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  add_forward_cuda(output.data(), first.data(), second.data(), output.count());
#else
  throw_no_cuda_backend(kind());
#endif
}

void Add::backward(Context& context, const std::vector<const Tensor*>& inputs,
                   const Tensor& output, const Tensor& output_gradient,
                   const std::vector<Tensor*>& input_gradients) {
  (void)inputs;
  PNEUMO_REQUIRE(input_gradients.size() == 2, "Add::backward needs two input-gradient slots");
  require_shape(output_gradient, output.shape(), "Add output gradient");
  require_device(output_gradient, context.device(), "Add output gradient");
  if (context.device() == Device::CPU && input_gradients[0] && input_gradients[1]) {
    for (Tensor* input_gradient : input_gradients)
      require_shape(*input_gradient, output.shape(), "Add input gradient");
    require_device(*input_gradients[0], context.device(), "Add first input gradient");
    require_device(*input_gradients[1], context.device(), "Add second input gradient");
    add_backward_both_cpu(input_gradients[0]->data(), input_gradients[1]->data(),
                          output_gradient.data(), output.count());
    return;
  }
  for (Tensor* input_gradient : input_gradients) {
    if (!input_gradient) continue;
    require_shape(*input_gradient, output.shape(), "Add input gradient");
    require_device(*input_gradient, context.device(), "Add input gradient");
    if (context.device() == Device::CPU) {
      add_backward_cpu(input_gradient->data(), output_gradient.data(), output.count());
      continue;
    }
#ifdef PNEUMO_HAVE_CUDA
    add_backward_cuda(input_gradient->data(), output_gradient.data(), output.count());
#else
    throw_no_cuda_backend(kind());
#endif
  }
}

void add_forward_cpu(float* output, const float* first, const float* second, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) output[i] = first[i] + second[i];
  });
}

void add_backward_cpu(float* input_gradient, const float* output_gradient, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) input_gradient[i] += output_gradient[i];
  });
}

void add_backward_both_cpu(float* first_gradient, float* second_gradient,
                           const float* output_gradient, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    if (first_gradient == second_gradient) {  // x + x: both shares land in one buffer
      for (int64_t i = begin; i < end; ++i) first_gradient[i] += 2.0f * output_gradient[i];
      return;
    }
    for (int64_t i = begin; i < end; ++i) {
      first_gradient[i] += output_gradient[i];
      second_gradient[i] += output_gradient[i];
    }
  });
}

}  // namespace pneumo
