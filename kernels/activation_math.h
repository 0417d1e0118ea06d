// Per-element activation math shared by the CPU loops and the CUDA kernels (layers/leaky_relu.*,
// layers/sigmoid.*): forward maps x -> y, the gradient functions map (x or y, dy) -> dx.
#pragma once
#include <cmath>

#include "kernels/host_device.h"

namespace pneumo {

// y = x for x > 0, slope * x otherwise (slope 0 is ReLU). Written as positive part plus slope
// times negative part, each a plain select, so the result is exact (x + slope * 0 = x) and GCC
// vectorizes it: a multiply inside a branch would not be if-converted under -ftrapping-math.
PNEUMO_HD float leaky_relu(float x, float slope) {
  const float positive = x > 0.0f ? x : 0.0f;
  const float negative = x > 0.0f ? 0.0f : x;
  return positive + slope * negative;
}

// dL/dx = dy for x > 0, slope * dy for x <= 0: at exactly x == 0 the gradient is slope * dy
// (0 for ReLU), like TensorFlow's relu / leaky_relu gradients.
PNEUMO_HD float leaky_relu_gradient(float x, float dy, float slope) {
  const float positive = x > 0.0f ? dy : 0.0f;
  const float negative = x > 0.0f ? 0.0f : dy;
  return positive + slope * negative;
}

// Logistic sigmoid 1 / (1 + exp(-x)), evaluated through e = exp(-|x|) <= 1 so exp never
// overflows: x >= 0 gives 1 / (1 + e), x < 0 gives e / (1 + e).
PNEUMO_HD float sigmoid(float x) {
  const float e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

// dL/dx from the saved output y = sigmoid(x): dy * y * (1 - y).
PNEUMO_HD float sigmoid_gradient(float y, float dy) { return dy * y * (1.0f - y); }

}  // namespace pneumo
