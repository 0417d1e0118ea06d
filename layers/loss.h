// The notebook's training loss and metrics. Data flows predictions (sigmoid probabilities) and
// 0/1 target masks -> loss value and d loss / d predictions (which starts the backward pass), and
// -> accuracy and mean IoU. See layers/loss.md.
//
//   loss     = 0.5 * BCE + 0.5 * (1 - (I + 1) / (sum y + sum p - I + 1)),  I = sum y*p over the
//              WHOLE batch; BCE = mean over all pixels of the Keras-clipped binary cross-entropy
//   accuracy = mean over pixels of (y == (p > 0.5))
//   mean_iou = mean over images of (I_i + 1) / (U_i - I_i + 1), prediction rounded (p > 0.5),
//              I_i = sum y*round(p), U_i = sum y + sum round(p)
//
// Reductions are in double and deterministic: fixed-size chunks summed in a fixed order on the
// CPU; a fixed grid of block tree reductions, finished on the host, on CUDA.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/context.h"
#include "engine/tensor.h"
#include "kernels/loss_math.h"

namespace pneumo {

struct LossValues {
  double loss = 0;      // 0.5 * bce + 0.5 * iou_loss
  double bce = 0;       // mean binary cross-entropy
  double iou_loss = 0;  // 1 - (I + 1) / (sum y + sum p - I + 1)
};

// predictions, targets: (N,H,W,1) on context.device(). When prediction_gradient is non-null it
// must have the same shape and device, and it is OVERWRITTEN (not accumulated) with
// d loss / d predictions: the loss starts the backward pass.
LossValues iou_bce_loss(Context& context, const Tensor& predictions, const Tensor& targets,
                        Tensor* prediction_gradient);

struct IouBceSums;
// The same loss in two steps, for a batch split over ranks (data-parallel training,
// engine/distributed.md): iou_bce_loss = iou_bce_loss_from_sums(iou_bce_loss_sums(...)).
//  1. the four sums of this slice of the batch;
IouBceSums iou_bce_loss_sums(Context& context, const Tensor& predictions, const Tensor& targets);
//  2. from the sums of the WHOLE batch (the slices' sums added over the ranks) and its element
//     count: the loss values and, when prediction_gradient is non-null, the gradient of this
//     slice's predictions (OVERWRITTEN), which is this slice of the whole batch's gradient.
LossValues iou_bce_loss_from_sums(Context& context, const IouBceSums& batch_sums, int64_t batch_count,
                                  const Tensor& predictions, const Tensor& targets, Tensor* prediction_gradient);

struct SegmentationMetrics {
  double accuracy = 0;  // Keras binary accuracy
  double mean_iou = 0;  // the notebook's mean_iou
};

// Per-image sums behind the metrics, exact integers held in doubles, so callers can aggregate
// over an epoch in whatever way they choose.
struct ImageMetricSums {
  double intersection = 0;    // sum y * round(p)
  double target_sum = 0;      // sum y
  double prediction_sum = 0;  // sum round(p)
  double correct_pixels = 0;  // count of y == round(p)
  int64_t pixels = 0;         // H * W
  double iou() const { return (intersection + 1.0) / (target_sum + prediction_sum - intersection + 1.0); }
};

// predictions, targets: (N,H,W,1) on context.device(). Returns N entries.
std::vector<ImageMetricSums> segmentation_metric_sums(Context& context, const Tensor& predictions,
                                                      const Tensor& targets);
// accuracy = sum correct / sum pixels; mean_iou = mean of iou() over the images.
SegmentationMetrics metrics_from_sums(const std::vector<ImageMetricSums>& images);
SegmentationMetrics segmentation_metrics(Context& context, const Tensor& predictions, const Tensor& targets);

// ---- back-end functions underneath (pointers on the named device; count = N*H*W) ------------

// The four batch sums of the loss's first pass.
struct IouBceSums {
  double bce_sum = 0;         // sum of binary_cross_entropy_term
  double intersection = 0;    // sum y * p
  double target_sum = 0;      // sum y
  double prediction_sum = 0;  // sum p
};
LossValues loss_values_from_sums(const IouBceSums& sums, int64_t count);
IouBceGradientScalars gradient_scalars_from_sums(const IouBceSums& sums, int64_t count);

IouBceSums iou_bce_sums_cpu(const float* predictions, const float* targets, int64_t count);
// Overwrites gradient[i] = iou_bce_gradient(predictions[i], targets[i], scalars).
void iou_bce_gradient_cpu(float* gradient, const float* predictions, const float* targets, int64_t count,
                          IouBceGradientScalars scalars);
// images = N, pixels_per_image = H*W; writes `images` entries to sums.
void segmentation_metric_sums_cpu(ImageMetricSums* sums, const float* predictions, const float* targets, int64_t images,
                                  int64_t pixels_per_image);

#ifdef PNEUMO_HAVE_CUDA
// layers/loss.cu. The sums use the context's shared workspace for block partials and return
// after copying them to the host (synchronous).
IouBceSums iou_bce_sums_cuda(Context& context, const float* predictions, const float* targets, int64_t count);
void iou_bce_gradient_cuda(float* gradient, const float* predictions, const float* targets, int64_t count,
                           IouBceGradientScalars scalars);
void segmentation_metric_sums_cuda(Context& context, ImageMetricSums* sums, const float* predictions,
                                   const float* targets, int64_t images, int64_t pixels_per_image);
#endif

}  // namespace pneumo
