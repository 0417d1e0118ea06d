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

int64_t LeakyReLU::forward_flops(const std::vector<Shape>& inputs) const { return shape_count(output_shape(inputs)); }

void LeakyReLU::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  leaky_relu_forward_cpu(output.data(), inputs[0]->data(), slope_, output.count());
}

void LeakyReLU::backward_cpu(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                             const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  leaky_relu_backward_cpu(input_gradients[0]->data(), inputs[0]->data(), output_gradient.data(), slope_,
                          output_gradient.count());
}

void leaky_relu_forward_cpu(float* output, const float* input, float slope, int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) output[i] = leaky_relu(input[i], slope);
  });
}

void leaky_relu_backward_cpu(float* input_gradient, const float* input, const float* output_gradient, float slope,
                             int64_t count) {
  parallel_for(count, kElementsPerChunk, [=](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) input_gradient[i] += leaky_relu_gradient(input[i], output_gradient[i], slope);
  });
}

LayerFunctions LeakyReLU::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {"LeakyReLU::forward" + b + " -> leaky_relu_forward" + b + " -> leaky_relu (kernels/activation_math.h)",
          "LeakyReLU::backward" + b + " -> leaky_relu_backward" + b + " -> leaky_relu_gradient",
          "layers/leaky_relu.md"};
}

}  // namespace pneumo
