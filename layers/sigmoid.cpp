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

int64_t Sigmoid::forward_flops(const std::vector<Shape>& inputs) const { return 4 * shape_count(output_shape(inputs)); }

void Sigmoid::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  sigmoid_forward_cpu(output.data(), inputs[0]->data(), output.count());
}

void Sigmoid::backward_cpu(Context&, const std::vector<const Tensor*>&, const Tensor& output,
                           const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  sigmoid_backward_cpu(input_gradients[0]->data(), output.data(), output_gradient.data(), output.count());
}

void sigmoid_forward_cpu(float* output, const float* input, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) output[i] = sigmoid(input[i]);
  });
}

void sigmoid_backward_cpu(float* input_gradient, const float* output, const float* output_gradient, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) input_gradient[i] += sigmoid_gradient(output[i], output_gradient[i]);
  });
}

LayerFunctions Sigmoid::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {"Sigmoid::forward" + b + " -> sigmoid_forward" + b + " -> sigmoid (kernels/activation_math.h)",
          "Sigmoid::backward" + b + " -> sigmoid_backward" + b + " -> sigmoid_gradient", "layers/sigmoid.md"};
}

}  // namespace pneumo
