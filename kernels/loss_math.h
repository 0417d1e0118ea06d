// Per-element math of the notebook's loss (0.5 * BCE + 0.5 * IoU loss) and of its metrics,
// shared by the CPU loops in layers/loss.cpp and the CUDA kernels in layers/loss.cu.
// Data flows prediction p and target y (one pixel each) -> a loss term or a gradient element.
#pragma once
#include <math.h>

#include "kernels/host_device.h"

namespace pneumo {

// Keras's K.epsilon(): binary cross-entropy clips predictions to [epsilon, 1 - epsilon], in
// float32 as Keras does (1 - 1e-7f rounds to 0.99999988f).
constexpr float kBinaryCrossEntropyEpsilon = 1e-7f;

PNEUMO_HD float clip_probability(float p) {
  const float low = kBinaryCrossEntropyEpsilon;
  const float high = 1.0f - kBinaryCrossEntropyEpsilon;
  return p < low ? low : (p > high ? high : p);
}

// -(y log pc + (1 - y) log(1 - pc)) with pc = clip(p), in double.
PNEUMO_HD double binary_cross_entropy_term(float p, float y) {
  const double clipped = clip_probability(p);
  const double target = y;
  return -(target * log(clipped) + (1.0 - target) * log(1.0 - clipped));
}

// d/dp of binary_cross_entropy_term: (pc - y) / (pc (1 - pc)) inside the clip range, 0 outside
// it (the clip passes the gradient where epsilon <= p <= 1 - epsilon, as tf.clip_by_value does).
PNEUMO_HD double binary_cross_entropy_derivative(float p, float y) {
  if (!(p >= kBinaryCrossEntropyEpsilon && p <= 1.0f - kBinaryCrossEntropyEpsilon)) return 0.0;
  const double probability = p;
  const double target = y;
  return -target / probability + (1.0 - target) / (1.0 - probability);
}

// The batch-wide scalars the gradient of the loss needs, from the first (sums) pass:
//   bce_scale                = 0.5 / pixel_count       (BCE is a mean over all pixels)
//   intersection_plus_one    = I + 1                   (I = sum y p over the batch)
//   iou_denominator          = sum y + sum p - I + 1   (D)
struct IouBceGradientScalars {
  double bce_scale;
  double intersection_plus_one;
  double iou_denominator;
};

// d loss / d p for one pixel, loss = 0.5 * BCE + 0.5 * (1 - (I + 1) / D):
//   0.5/M * dBCE_term/dp + 0.5 * ((I + 1)(1 - y) - y D) / D^2      (dI/dp = y, dD/dp = 1 - y)
// The IoU part uses the unclipped p, as the notebook's iou_loss does.
PNEUMO_HD float iou_bce_gradient(float p, float y, IouBceGradientScalars scalars) {
  const double target = y;
  const double denominator = scalars.iou_denominator;
  const double iou_part =
      (scalars.intersection_plus_one * (1.0 - target) - target * denominator) / (denominator * denominator);
  return static_cast<float>(scalars.bce_scale * binary_cross_entropy_derivative(p, y) + 0.5 * iou_part);
}

// Keras rounds a probability to a 0/1 mask with tf.round (half to even), so 0.5 -> 0: the same
// as p > 0.5.
PNEUMO_HD float rounded_prediction(float p) { return p > 0.5f ? 1.0f : 0.0f; }

// 1 when the rounded prediction equals the target (Keras binary_accuracy), else 0.
PNEUMO_HD float pixel_correct(float p, float y) { return rounded_prediction(p) == y ? 1.0f : 0.0f; }

}  // namespace pneumo
