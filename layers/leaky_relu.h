// LeakyReLU: y = x for x > 0, slope * x otherwise, elementwise on an (N,H,W,C) tensor (the
// notebook's LeakyReLU(0), i.e. ReLU). Forward input -> output; backward reads the forward
// input and d loss / d output and ACCUMULATES into d loss / d input.
#pragma once
#include <cstdint>

#include "layers/layer.h"

namespace pneumo {

class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(float slope);
  std::string kind() const override { return "LeakyReLU"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  float slope() const { return slope_; }
  std::optional<float> leaky_relu_slope() const override { return slope_; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;  // 1 per element
  // Backward reads its input only through the sign (x > 0), which the output shares when
  // slope >= 0, so with such a slope it may run in place over its input.
  bool can_overwrite_input(int) const override { return slope_ >= 0.0f; }

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h

      private : float slope_;
};

// CPU: output (count) OVERWRITTEN from input (count).
void leaky_relu_forward_cpu(float* output, const float* input, float slope, int64_t count);
// CPU: input_gradient (count) += d/dx of leaky_relu at input (count) times output_gradient (count).
void leaky_relu_backward_cpu(float* input_gradient, const float* input, const float* output_gradient, float slope,
                             int64_t count);
// CUDA (layers/leaky_relu.cu): the same contracts on device pointers.
void leaky_relu_forward_cuda(float* output, const float* input, float slope, int64_t count);
void leaky_relu_backward_cuda(float* input_gradient, const float* input, const float* output_gradient, float slope,
                              int64_t count);

}  // namespace pneumo
