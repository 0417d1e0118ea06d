// Add: output = first + second for two (N,H,W,C) tensors of the same shape (the residual
// blocks' keras.layers.add). Forward (first, second) -> output; backward ACCUMULATES d loss /
// d output into both input gradients (either may be null).
#pragma once
#include <cstdint>

#include "layers/layer.h"

namespace pneumo {

class Add : public Layer {
 public:
  std::string kind() const override { return "Add"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  int input_count() const override { return 2; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;  // 1 per element
  // Backward reads neither the inputs nor the output: it may run in place over either input.
  bool can_overwrite_input(int) const override { return true; }
  bool backward_reads_output() const override { return false; }

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h
};

// CPU: output (count) OVERWRITTEN with first + second (count each).
void add_forward_cpu(float* output, const float* first, const float* second, int64_t count);
// CPU: input_gradient (count) += output_gradient (count). Called once per non-null input.
void add_backward_cpu(float* input_gradient, const float* output_gradient, int64_t count);
// CPU: first_gradient and second_gradient (count each) += output_gradient (count), in one pass
// over output_gradient (what Add::backward uses when both inputs want a gradient).
void add_backward_both_cpu(float* first_gradient, float* second_gradient, const float* output_gradient, int64_t count);
// CUDA (layers/add.cu): the same contracts on device pointers.
void add_forward_cuda(float* output, const float* first, const float* second, int64_t count);
void add_backward_cuda(float* input_gradient, const float* output_gradient, int64_t count);

}  // namespace pneumo
