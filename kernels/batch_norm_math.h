// Per-element and per-channel batch-norm math shared by the CPU loops and the CUDA kernels
// (layers/batch_norm.*). Statistics are accumulated in double by the callers; these functions
// turn them into the per-channel quantities and apply them to one element.
#pragma once
#include <cmath>

#include "kernels/host_device.h"

namespace pneumo {

// x_hat = (x - mean) * inv_std: subtracting first keeps precision when |mean| >> std.
PNEUMO_HD float batch_norm_normalized(float x, float mean, float inv_std) { return (x - mean) * inv_std; }

// Forward: y = gamma * x_hat + beta, with scale = gamma * inv_std precomputed per channel.
PNEUMO_HD float batch_norm_output(float x, float mean, float scale, float beta) { return (x - mean) * scale + beta; }

// Training-mode input gradient of one element:
//   dx = gamma * inv_std * (dy - sum(dy) / M - x_hat * sum(dy * x_hat) / M)
// with scale = gamma * inv_std, mean_dy = sum(dy) / M, mean_dy_x_hat = sum(dy * x_hat) / M per
// channel (M = N*H*W). Inference mode passes mean_dy = mean_dy_x_hat = 0, giving scale * dy.
PNEUMO_HD float batch_norm_input_gradient(float dy, float x_hat, float scale, float mean_dy, float mean_dy_x_hat) {
  return scale * (dy - mean_dy - x_hat * mean_dy_x_hat);
}

// Per-channel statistics from shifted sums. The caller sums d = x - shift over the M values of a
// channel (sum_d, sum_d2 = sum d^2); shift is a float close to the mean (a first pass's or pilot mean),
// so the difference below does not cancel catastrophically.
PNEUMO_HD double batch_norm_mean(double shift, double sum_d, double M) { return shift + sum_d / M; }
PNEUMO_HD double batch_norm_biased_variance(double sum_d, double sum_d2, double M) {
  const double mean_d = sum_d / M;
  const double variance = sum_d2 / M - mean_d * mean_d;
  return variance > 0.0 ? variance : 0.0;
}
PNEUMO_HD float batch_norm_inverse_std(double variance, float epsilon) {
  return static_cast<float>(1.0 / sqrt(variance + static_cast<double>(epsilon)));
}
// running = momentum * running + (1 - momentum) * batch (Keras momentum convention).
PNEUMO_HD float batch_norm_running_update(float running, double batch, float momentum) {
  return static_cast<float>(static_cast<double>(momentum) * running + (1.0 - static_cast<double>(momentum)) * batch);
}

}  // namespace pneumo
