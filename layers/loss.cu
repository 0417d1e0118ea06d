// CUDA side of layers/loss.h: kernels, then their launchers. The loss runs in two passes, a
// deterministic block reduction of the four batch sums (fixed grid, fixed tree order, partials
// finished on the host in block order) and then the per-pixel gradient. The metrics reduce each
// image's slice into per-block partials that the host adds up. Per-element index math is 32-bit
// when the count allows it.
#include <algorithm>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/cuda_check.h"
#include "engine/cuda_resources.h"
#include "kernels/loss_math.h"
#include "layers/loss.h"

namespace pneumo {

namespace {

constexpr int kBlock = 256;
constexpr int kMaxSumBlocks = 1024;     // blocks of the loss sums (a fixed grid for a count)
constexpr int kMaxBlocksPerImage = 32;  // blocks per image of the metric sums

// Tree-sums each of `kValues` per-thread values over the block; thread 0 writes them to `out`.
template <int kValues>
__device__ void block_sum(double (&shared)[kValues][kBlock], const double (&local)[kValues], double* out) {
  for (int k = 0; k < kValues; ++k) shared[k][threadIdx.x] = local[k];
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride)
      for (int k = 0; k < kValues; ++k) shared[k][threadIdx.x] += shared[k][threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int k = 0; k < kValues; ++k) out[k] = shared[k][0];
}

// partials: (gridDim.x, 4) = bce_sum, intersection, target_sum, prediction_sum per block.
template <typename Index>
__global__ void iou_bce_sums_kernel(double* partials, const float* predictions, const float* targets, Index count) {
  __shared__ double shared[4][kBlock];
  double local[4] = {0, 0, 0, 0};
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>()) {
    const float p = predictions[i], y = targets[i];
    local[0] += binary_cross_entropy_term(p, y);
    local[1] += static_cast<double>(y) * static_cast<double>(p);
    local[2] += y;
    local[3] += p;
  }
  block_sum<4>(shared, local, partials + 4 * blockIdx.x);
}

template <typename Index>
__global__ void iou_bce_gradient_kernel(float* gradient, const float* predictions, const float* targets, Index count,
                                        IouBceGradientScalars scalars) {
  for (Index i = grid_stride_first<Index>(); i < count; i += grid_stride_step<Index>())
    gradient[i] = iou_bce_gradient(predictions[i], targets[i], scalars);
}

// grid (blocks_per_image, images); partials: (images, blocks_per_image, 4) = intersection,
// target_sum, prediction_sum, correct_pixels.
template <typename Index>
__global__ void segmentation_metric_sums_kernel(double* partials, const float* predictions, const float* targets,
                                                Index pixels_per_image) {
  __shared__ double shared[4][kBlock];
  const long long image = blockIdx.y;  // image offsets stay 64-bit: the batch may be large
  const float* p = predictions + image * pixels_per_image;
  const float* y = targets + image * pixels_per_image;
  double local[4] = {0, 0, 0, 0};
  for (Index i = grid_stride_first<Index>(); i < pixels_per_image; i += grid_stride_step<Index>()) {
    const float rounded = rounded_prediction(p[i]);
    local[0] += static_cast<double>(y[i]) * rounded;
    local[1] += y[i];
    local[2] += rounded;
    local[3] += pixel_correct(p[i], y[i]);
  }
  block_sum<4>(shared, local, partials + 4 * (image * gridDim.x + blockIdx.x));
}

}  // namespace

IouBceSums iou_bce_sums_cuda(Context& context, const float* predictions, const float* targets, int64_t count) {
  const int blocks = std::min(grid_size_for(count, kBlock), kMaxSumBlocks);
  const size_t partial_bytes = sizeof(double) * 4 * static_cast<size_t>(blocks);
  double* partials = static_cast<double*>(context.cuda().workspace(partial_bytes));
  launch_with_index(count, blocks, kBlock, [&](auto index) {
    using Index = decltype(index);
    iou_bce_sums_kernel<Index><<<blocks, kBlock>>>(partials, predictions, targets, static_cast<Index>(count));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
  std::vector<double> host(4 * static_cast<size_t>(blocks));
  copy_bytes(host.data(), Device::CPU, partials, Device::CUDA, partial_bytes);  // device -> host
  IouBceSums sums;
  for (int block = 0; block < blocks; ++block) {
    sums.bce_sum += host[4 * block + 0];
    sums.intersection += host[4 * block + 1];
    sums.target_sum += host[4 * block + 2];
    sums.prediction_sum += host[4 * block + 3];
  }
  return sums;
}

void iou_bce_gradient_cuda(float* gradient, const float* predictions, const float* targets, int64_t count,
                           IouBceGradientScalars scalars) {
  const int blocks = grid_size_for(count, kBlock);
  launch_with_index(count, blocks, kBlock, [&](auto index) {
    using Index = decltype(index);
    iou_bce_gradient_kernel<Index>
        <<<blocks, kBlock>>>(gradient, predictions, targets, static_cast<Index>(count), scalars);
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
}

void segmentation_metric_sums_cuda(Context& context, ImageMetricSums* sums, const float* predictions,
                                   const float* targets, int64_t images, int64_t pixels_per_image) {
  PNEUMO_REQUIRE(images <= 65535,
                 "segmentation_metrics: at most 65535 images per call on CUDA, got " + std::to_string(images));
  const int blocks_per_image = std::min(grid_size_for(pixels_per_image, kBlock), kMaxBlocksPerImage);
  const size_t partial_count = 4 * static_cast<size_t>(blocks_per_image) * static_cast<size_t>(images);
  double* partials = static_cast<double*>(context.cuda().workspace(sizeof(double) * partial_count));
  launch_with_index(pixels_per_image, blocks_per_image, kBlock, [&](auto index) {
    using Index = decltype(index);
    segmentation_metric_sums_kernel<Index><<<dim3(blocks_per_image, static_cast<unsigned>(images)), kBlock>>>(
        partials, predictions, targets, static_cast<Index>(pixels_per_image));
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
  std::vector<double> host(partial_count);
  copy_bytes(host.data(), Device::CPU, partials, Device::CUDA, sizeof(double) * partial_count);  // device -> host
  for (int64_t image = 0; image < images; ++image) {
    ImageMetricSums image_sums;
    for (int block = 0; block < blocks_per_image; ++block) {
      const double* partial = host.data() + 4 * (image * blocks_per_image + block);
      image_sums.intersection += partial[0];
      image_sums.target_sum += partial[1];
      image_sums.prediction_sum += partial[2];
      image_sums.correct_pixels += partial[3];
    }
    image_sums.pixels = pixels_per_image;
    sums[image] = image_sums;
  }
}

}  // namespace pneumo
