// Per-element Adam update in Keras's form, shared by the CPU loop in layers/adam.cpp and the CUDA
// kernel in layers/adam.cu. Data flows (value, gradient, m, v) -> updated value, m, v in place.
#pragma once
#include <math.h>

#include "kernels/host_device.h"

namespace pneumo {

// Scalars of one Adam step, computed once on the host:
//   corrected_learning_rate = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
struct AdamStepScalars {
  float beta1;
  float beta2;
  float epsilon;
  float corrected_learning_rate;
};

// m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  w -= lr_t m / (sqrt(v) + epsilon). float32
// throughout, as Keras computes it.
PNEUMO_HD void adam_update(float& value, float& m, float& v, float gradient, AdamStepScalars scalars) {
  m = scalars.beta1 * m + (1.0f - scalars.beta1) * gradient;
  v = scalars.beta2 * v + (1.0f - scalars.beta2) * gradient * gradient;
  value -= scalars.corrected_learning_rate * m / (sqrtf(v) + scalars.epsilon);
}

}  // namespace pneumo
