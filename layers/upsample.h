// Upsample: nearest-neighbour upsampling by an integer factor in H and W, (N,H,W,C) ->
// (N,H*factor,W*factor,C) (the notebook's UpSampling2D(2**depth)). Forward input -> output;
// backward ACCUMULATES into each input gradient the sum of d loss / d output over its
// factor x factor block.
#pragma once
#include <cstdint>

#include "layers/layer.h"

namespace pneumo {

class Upsample : public Layer {
 public:
  explicit Upsample(int factor);
  std::string kind() const override { return "Upsample"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  int factor() const { return factor_; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;  // 0: a pure copy

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h

      private : int factor_;
};

// CPU: output (N,H*factor,W*factor,C) OVERWRITTEN with copies of input (N,H,W,C).
void upsample_forward_cpu(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C,
                          int64_t factor);
// CPU: input_gradient (N,H,W,C) += block sums of output_gradient (N,H*factor,W*factor,C).
void upsample_backward_cpu(float* input_gradient, const float* output_gradient, int64_t N, int64_t H, int64_t W,
                           int64_t C, int64_t factor);
// CUDA (layers/upsample.cu): the same contracts on device pointers.
void upsample_forward_cuda(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C,
                           int64_t factor);
void upsample_backward_cuda(float* input_gradient, const float* output_gradient, int64_t N, int64_t H, int64_t W,
                            int64_t C, int64_t factor);

}  // namespace pneumo
