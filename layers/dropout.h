// Dropout: during training each element of an (N,H,W,C) tensor is zeroed with probability
// `rate` and the survivors are scaled by 1 / (1 - rate) ("inverted dropout", as Keras's and
// PyTorch's Dropout), so the expected output equals the input; at inference it is the identity.
// Forward input -> output; backward reads d loss / d output and ACCUMULATES into d loss / d
// input. The mask is not stored: it is a pure function of (seed, step, element index)
// (kernels/dropout_math.h), so backward recomputes it and the CPU and CUDA masks are identical.
// The step is set by the caller before a training forward (train_step passes Adam's step
// count), so a resumed run draws the same masks as an uninterrupted one. Under data parallelism
// each rank holds a slice of the global batch starting at image `first_image`; its elements are
// numbered from first_image * (elements per image), so every rank draws exactly the slice of
// the mask one process holding the stacked batch would draw.
#pragma once
#include <cstdint>

#include "layers/layer.h"

namespace pneumo {

class Dropout : public Layer {
 public:
  // rate in [0, 1); seed selects the layer's mask stream.
  Dropout(float rate, uint64_t seed);
  std::string kind() const override { return "Dropout"; }
  LayerFunctions functions(Device device, const std::vector<Shape>& inputs, bool input_gradient) const override;
  float rate() const { return rate_; }
  uint64_t seed() const { return seed_; }
  // The step whose mask the next training forward draws (and its backward reuses), and the
  // index in the global batch of this process's first image (0 in a single process).
  void set_step(uint64_t step, int64_t first_image = 0) {
    step_ = step;
    first_image_ = first_image;
  }
  uint64_t step() const { return step_; }
  void configure(const LayerSettings& settings) override { set_step(settings.step, settings.first_image); }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  int64_t forward_flops(const std::vector<Shape>& inputs) const override;  // 1 per element

 protected:
  PNEUMO_LAYER_BACKENDS  // forward_cpu, backward_cpu (+ forward_cuda, backward_cuda): layers/layer.h

      private : uint32_t
                drop_threshold() const;  // round(rate * 2^32)

  float rate_;
  uint64_t seed_;
  uint64_t step_ = 0;
  int64_t first_image_ = 0;
  // What the last forward used, for its backward: the mask key, and whether it was training
  // (after an inference forward, backward passes the gradient through unchanged).
  uint64_t saved_key_ = 0;
  uint64_t saved_first_index_ = 0;  // the mask index of element 0 (first_image * elements per image)
  bool saved_training_ = false;
};

// CPU: output (count) OVERWRITTEN with dropout of input (count) under the mask of `key`, element
// i taking mask index first_index + i (drop_threshold = round(rate * 2^32), scale = 1 / (1 - rate)).
void dropout_forward_cpu(float* output, const float* input, uint64_t key, uint64_t first_index, uint32_t drop_threshold,
                         float scale, int64_t count);
// CPU: input_gradient (count) += the same mask and scale applied to output_gradient (count).
void dropout_backward_cpu(float* input_gradient, const float* output_gradient, uint64_t key, uint64_t first_index,
                          uint32_t drop_threshold, float scale, int64_t count);
// CUDA (layers/dropout.cu): the same contracts on device pointers.
void dropout_forward_cuda(float* output, const float* input, uint64_t key, uint64_t first_index,
                          uint32_t drop_threshold, float scale, int64_t count);
void dropout_backward_cuda(float* input_gradient, const float* output_gradient, uint64_t key, uint64_t first_index,
                           uint32_t drop_threshold, float scale, int64_t count);

}  // namespace pneumo
