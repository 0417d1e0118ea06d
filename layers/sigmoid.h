// Sigmoid: y = 1 / (1 + exp(-x)) elementwise on an (N,H,W,C) tensor, stable for any |x| (the
// notebook's sigmoid output activation). Forward input -> output; backward reads the SAVED
// forward output y and d loss / d output and ACCUMULATES dy * y * (1 - y) into d loss / d input.
#pragma once
#include <cstdint>

#include "layers/layer.h"

namespace pneumo {

class Sigmoid : public Layer {
 public:
  std::string kind() const override { return "Sigmoid"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  // 4 per element: exp, add, divide, and the |x| / select.
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h
};

// CPU: output (count) OVERWRITTEN with sigmoid(input (count)).
void sigmoid_forward_cpu(float* output, const float* input, int64_t count);
// CPU: input_gradient (count) += output_gradient * output * (1 - output), all (count).
void sigmoid_backward_cpu(float* input_gradient, const float* output, const float* output_gradient, int64_t count);
// CUDA (layers/sigmoid.cu): the same contracts on device pointers.
void sigmoid_forward_cuda(float* output, const float* input, int64_t count);
void sigmoid_backward_cuda(float* input_gradient, const float* output, const float* output_gradient, int64_t count);

}  // namespace pneumo
