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
    throw Error("Add: the two inputs must have the same shape, got " + shape_string(inputs[0]) + " and " +
                shape_string(inputs[1]));
  return inputs[0];
}

int64_t Add::forward_flops(const std::vector<Shape>& inputs) const { return shape_count(output_shape(inputs)); }

void Add::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  add_forward_cpu(output.data(), inputs[0]->data(), inputs[1]->data(), output.count());
}

void Add::backward_cpu(Context&, const std::vector<const Tensor*>&, const Tensor& output, const Tensor& output_gradient,
                       const std::vector<Tensor*>& input_gradients) {
  if (input_gradients[0] && input_gradients[1]) {
    add_backward_both_cpu(input_gradients[0]->data(), input_gradients[1]->data(), output_gradient.data(),
                          output.count());
    return;
  }
  for (Tensor* input_gradient : input_gradients)
    if (input_gradient) add_backward_cpu(input_gradient->data(), output_gradient.data(), output.count());
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

void add_backward_both_cpu(float* first_gradient, float* second_gradient, const float* output_gradient, int64_t count) {
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

LayerFunctions Add::functions(Device device, const std::vector<Shape>&, bool) const {
  const bool cpu = device == Device::CPU;
  const std::string b = cpu ? "_cpu" : "_cuda";
  return {"Add::forward" + b + " -> add_forward" + b,
          "Add::backward" + b + " -> " + (cpu ? "add_backward_both_cpu | add_backward_cpu" : "add_backward_cuda"),
          "layers/add.md"};
}

}  // namespace pneumo
