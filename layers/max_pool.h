// MaxPool2d: 2x2 max pooling with stride 2 and 'valid' padding, (N,H,W,C) -> (N,H/2,W/2,C) with
// odd H/W floored (keras MaxPool2D(2)). Forward input -> output. Backward recomputes each
// window's argmax from the forward input (no saved indices) and ACCUMULATES each output gradient
// into the FIRST maximum of its window in row-major order (top-left, top-right, bottom-left,
// bottom-right): on ties exactly one input gets the gradient. Inputs in a floored last row or
// column get no gradient.
#pragma once
#include <cstdint>

#include "layers/layer.h"

namespace pneumo {

class MaxPool2d : public Layer {
 public:
  std::string kind() const override { return "MaxPool2d"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  // 3 comparisons per output element.
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h
};

// CPU: output (N,H/2,W/2,C) OVERWRITTEN with the window maxima of input (N,H,W,C).
void max_pool_forward_cpu(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C);
// CPU: input_gradient (N,H,W,C) += output_gradient (N,H/2,W/2,C) routed to each window's first
// maximum in input (N,H,W,C).
void max_pool_backward_cpu(float* input_gradient, const float* input, const float* output_gradient, int64_t N,
                           int64_t H, int64_t W, int64_t C);
// CUDA (layers/max_pool.cu): the same contracts on device pointers.
void max_pool_forward_cuda(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C);
void max_pool_backward_cuda(float* input_gradient, const float* input, const float* output_gradient, int64_t N,
                            int64_t H, int64_t W, int64_t C);

}  // namespace pneumo
