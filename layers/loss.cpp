// CPU side and dispatch of layers/loss.h: the notebook's iou_bce_loss, its gradient, and the
// accuracy / mean IoU metrics.
#include "layers/loss.h"

#include <string>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "layers/layer.h"

namespace pneumo {

namespace {

// Summation unit of the CPU reductions: partial sums of fixed chunks are added in chunk order,
// so the result does not depend on the thread count.
constexpr int64_t kReductionChunk = 8192;

void require_loss_inputs(Context& context, const Tensor& predictions, const Tensor& targets, const char* what) {
  const std::string name(what);
  require_nhwc(predictions.shape(), name + " predictions");
  PNEUMO_REQUIRE(predictions.C() == 1,
                 name + ": predictions must be (N,H,W,1), got " + shape_string(predictions.shape()));
  require_shape(targets, predictions.shape(), (name + " targets").c_str());
  require_device(predictions, context.device(), (name + " predictions").c_str());
  require_device(targets, context.device(), (name + " targets").c_str());
}

}  // namespace

LossValues loss_values_from_sums(const IouBceSums& sums, int64_t count) {
  LossValues values;
  values.bce = sums.bce_sum / static_cast<double>(count);
  values.iou_loss = 1.0 - (sums.intersection + 1.0) / (sums.target_sum + sums.prediction_sum - sums.intersection + 1.0);
  values.loss = 0.5 * values.bce + 0.5 * values.iou_loss;
  return values;
}

IouBceGradientScalars gradient_scalars_from_sums(const IouBceSums& sums, int64_t count) {
  IouBceGradientScalars scalars;
  scalars.bce_scale = 0.5 / static_cast<double>(count);
  scalars.intersection_plus_one = sums.intersection + 1.0;
  scalars.iou_denominator = sums.target_sum + sums.prediction_sum - sums.intersection + 1.0;
  return scalars;
}

IouBceSums iou_bce_sums_cpu(const float* predictions, const float* targets, int64_t count) {
  const int64_t chunks = (count + kReductionChunk - 1) / kReductionChunk;
  std::vector<IouBceSums> partials(static_cast<size_t>(chunks));
  parallel_for(chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      const int64_t begin = chunk * kReductionChunk;
      const int64_t end = begin + kReductionChunk < count ? begin + kReductionChunk : count;
      IouBceSums sums;
      for (int64_t i = begin; i < end; ++i) {
        const float p = predictions[i], y = targets[i];
        sums.bce_sum += binary_cross_entropy_term(p, y);
        sums.intersection += static_cast<double>(y) * static_cast<double>(p);
        sums.target_sum += y;
        sums.prediction_sum += p;
      }
      partials[static_cast<size_t>(chunk)] = sums;
    }
  });
  IouBceSums total;
  for (const IouBceSums& sums : partials) {
    total.bce_sum += sums.bce_sum;
    total.intersection += sums.intersection;
    total.target_sum += sums.target_sum;
    total.prediction_sum += sums.prediction_sum;
  }
  return total;
}

void iou_bce_gradient_cpu(float* gradient, const float* predictions, const float* targets, int64_t count,
                          IouBceGradientScalars scalars) {
  parallel_for(count, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) gradient[i] = iou_bce_gradient(predictions[i], targets[i], scalars);
  });
}

void segmentation_metric_sums_cpu(ImageMetricSums* sums, const float* predictions, const float* targets, int64_t images,
                                  int64_t pixels_per_image) {
  parallel_for(images, 1, [&](int64_t image_begin, int64_t image_end) {
    for (int64_t image = image_begin; image < image_end; ++image) {
      const float* p = predictions + image * pixels_per_image;
      const float* y = targets + image * pixels_per_image;
      ImageMetricSums image_sums;
      for (int64_t i = 0; i < pixels_per_image; ++i) {
        const float rounded = rounded_prediction(p[i]);
        image_sums.intersection += static_cast<double>(y[i]) * rounded;
        image_sums.target_sum += y[i];
        image_sums.prediction_sum += rounded;
        image_sums.correct_pixels += pixel_correct(p[i], y[i]);
      }
      image_sums.pixels = pixels_per_image;
      sums[image] = image_sums;
    }
  });
}

IouBceSums iou_bce_loss_sums(Context& context, const Tensor& predictions, const Tensor& targets) {
  require_loss_inputs(context, predictions, targets, "iou_bce_loss");
  const int64_t count = predictions.count();
  if (context.device() == Device::CPU) return iou_bce_sums_cpu(predictions.data(), targets.data(), count);
#ifdef PNEUMO_HAVE_CUDA
  return iou_bce_sums_cuda(context, predictions.data(), targets.data(), count);
#else
  throw_no_cuda_backend("iou_bce_loss");
#endif
}

LossValues iou_bce_loss_from_sums(Context& context, const IouBceSums& batch_sums, int64_t batch_count,
                                  const Tensor& predictions, const Tensor& targets, Tensor* prediction_gradient) {
  PNEUMO_REQUIRE(batch_count >= predictions.count(),
                 "iou_bce_loss_from_sums: the batch has " + std::to_string(batch_count) +
                     " elements, fewer than this slice's " + std::to_string(predictions.count()));
  if (prediction_gradient) {
    require_loss_inputs(context, predictions, targets, "iou_bce_loss");
    require_shape(*prediction_gradient, predictions.shape(), "iou_bce_loss prediction_gradient");
    require_device(*prediction_gradient, context.device(), "iou_bce_loss prediction_gradient");
    const IouBceGradientScalars scalars = gradient_scalars_from_sums(batch_sums, batch_count);
    const int64_t count = predictions.count();
    if (context.device() == Device::CPU) {
      iou_bce_gradient_cpu(prediction_gradient->data(), predictions.data(), targets.data(), count, scalars);
    } else {
#ifdef PNEUMO_HAVE_CUDA
      iou_bce_gradient_cuda(prediction_gradient->data(), predictions.data(), targets.data(), count, scalars);
#else
      throw_no_cuda_backend("iou_bce_loss");
#endif
    }
  }
  return loss_values_from_sums(batch_sums, batch_count);
}

LossValues iou_bce_loss(Context& context, const Tensor& predictions, const Tensor& targets,
                        Tensor* prediction_gradient) {
  if (prediction_gradient) {
    require_loss_inputs(context, predictions, targets, "iou_bce_loss");
    require_shape(*prediction_gradient, predictions.shape(), "iou_bce_loss prediction_gradient");
    require_device(*prediction_gradient, context.device(), "iou_bce_loss prediction_gradient");
  }
  const IouBceSums sums = iou_bce_loss_sums(context, predictions, targets);
  return iou_bce_loss_from_sums(context, sums, predictions.count(), predictions, targets, prediction_gradient);
}

std::vector<ImageMetricSums> segmentation_metric_sums(Context& context, const Tensor& predictions,
                                                      const Tensor& targets) {
  require_loss_inputs(context, predictions, targets, "segmentation_metrics");
  const int64_t images = predictions.N();
  const int64_t pixels_per_image = predictions.H() * predictions.W();
  std::vector<ImageMetricSums> sums(static_cast<size_t>(images));
  if (context.device() == Device::CPU) {
    segmentation_metric_sums_cpu(sums.data(), predictions.data(), targets.data(), images, pixels_per_image);
  } else {
#ifdef PNEUMO_HAVE_CUDA
    segmentation_metric_sums_cuda(context, sums.data(), predictions.data(), targets.data(), images, pixels_per_image);
#else
    throw_no_cuda_backend("segmentation_metrics");
#endif
  }
  return sums;
}

SegmentationMetrics metrics_from_sums(const std::vector<ImageMetricSums>& images) {
  PNEUMO_REQUIRE(!images.empty(), "metrics_from_sums: no images");
  double correct = 0, pixels = 0, iou_sum = 0;
  for (const ImageMetricSums& image : images) {
    correct += image.correct_pixels;
    pixels += static_cast<double>(image.pixels);
    iou_sum += image.iou();
  }
  SegmentationMetrics metrics;
  metrics.accuracy = correct / pixels;
  metrics.mean_iou = iou_sum / static_cast<double>(images.size());
  return metrics;
}

SegmentationMetrics segmentation_metrics(Context& context, const Tensor& predictions, const Tensor& targets) {
  return metrics_from_sums(segmentation_metric_sums(context, predictions, targets));
}

}  // namespace pneumo
