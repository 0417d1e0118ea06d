// CUDA post-processing: probability maps (N,S_h,S_w) -> upscaled maps and masks (N,H,W) ->
// 8-connected components -> bounds and mean probability per bounding rectangle. The per-element
// resize math is kernels/resize_math.h (shared with the CPU resize in data/input/resize.cpp).
#include <string>

#include "engine/check.h"
#include "engine/cuda_check.h"
#include "engine/cuda_resources.h"
#include "engine/device.h"
#include "engine/memory.h"
#include "kernels/postprocess_gpu.h"
#include "kernels/resize_math.h"

namespace pneumo {
namespace {

constexpr int kMeanBlock = 256;

// Grid-stride over N*H*W output pixels. resized (N,H,W) = bilinear upscale of probabilities
// (N,S_h,S_w) exactly as skimage.transform.resize(mode='reflect') without anti-aliasing;
// masks (N,H,W) = resized > threshold. skimage also clips to the input's [min, max]; for an
// upscale that is a no-op: each output is a convex combination computed in double, which can
// leave the input range only by ~1e-16 relative, less than half a float ulp, so the rounded
// float is already inside [min, max].
// Index is int32_t when the output batch (and so the smaller input batch) allows it.
template <typename Index>
__global__ void upscale_threshold_kernel(const float* probabilities, int count, int height, int width,
                                         int output_height, int output_width, double row_scale, double column_scale,
                                         float threshold, float* resized, uint8_t* masks) {
  const Index pixels_per_image = static_cast<Index>(output_height) * output_width;
  const Index total = pixels_per_image * count;
  for (Index i = grid_stride_first<Index>(); i < total; i += grid_stride_step<Index>()) {
    const Index n = i / pixels_per_image;
    const int pixel = static_cast<int>(i - n * pixels_per_image);
    const int out_y = pixel / output_width, out_x = pixel % output_width;
    const float value = resize_bilinear_sample(probabilities + n * height * static_cast<Index>(width), height, width,
                                               resize_source_coordinate(out_y, row_scale),
                                               resize_source_coordinate(out_x, column_scale));
    resized[i] = value;
    masks[i] = value > threshold ? 1 : 0;
  }
}

// One block per component k: mean_probabilities[k] = mean of the image's resized map over the
// component's whole bounding rectangle (not only its pixels), summed in double.
__global__ void rectangle_mean_kernel(const float* resized, int height, int width, const int32_t* component_images,
                                      const ComponentBounds* bounds, float* mean_probabilities) {
  __shared__ double partial[kMeanBlock];
  const int k = blockIdx.x;
  const ComponentBounds box = bounds[k];
  const float* image = resized + static_cast<long long>(component_images[k]) * height * width;
  const int box_width = box.max_x - box.min_x + 1;
  const long long area = static_cast<long long>(box.max_y - box.min_y + 1) * box_width;
  double sum = 0.0;
  for (long long j = threadIdx.x; j < area; j += blockDim.x) {
    const int y = box.min_y + static_cast<int>(j / box_width);
    const int x = box.min_x + static_cast<int>(j % box_width);
    sum += image[static_cast<long long>(y) * width + x];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) mean_probabilities[k] = static_cast<float>(partial[0] / static_cast<double>(area));
}

int grid_stride_blocks(long long count, int block) {
  long long blocks = (count + block - 1) / block;
  if (blocks > 65535LL * 32) blocks = 65535LL * 32;
  return static_cast<int>(blocks < 1 ? 1 : blocks);
}

// Returns `memory`'s data, first growing it to at least `bytes` (grow-only: no allocation once
// the largest batch has been seen).
void* grown(Memory& memory, size_t bytes) {
  if (memory.bytes() < bytes) {
    memory = Memory();  // free first: the old contents are not needed
    memory = Memory(Device::CUDA, bytes);
  }
  return memory.data();
}

// The device buffers of one call, kept per host thread and reused: validation and prediction
// post-process every batch, and a cudaMalloc/cudaFree pair per batch would synchronise the
// device each time. Freed when the thread ends.
struct PostprocessBuffers {
  Memory resized;      // (N,H,W) floats
  Memory masks;        // (N,H,W) bytes
  Memory labels;       // (N,H,W) int32
  Memory counts;       // (N) int32
  Memory row_scratch;  // (2,N,H_out) int32, for label_components_cuda
  Memory offsets;      // (N) int32
  Memory images;       // (K) int32
  Memory bounds;       // (K) ComponentBounds
  Memory means;        // (K) floats
};

PostprocessBuffers& postprocess_buffers() {
  thread_local PostprocessBuffers buffers;
  return buffers;
}

}  // namespace

ComponentBoxBatch probability_maps_to_boxes_cuda(const float* probabilities, int count, int height, int width,
                                                 int output_height, int output_width, float threshold) {
  PNEUMO_REQUIRE(count >= 0 && height > 0 && width > 0, "GPU post-processing: bad map batch shape (" +
                                                            std::to_string(count) + "," + std::to_string(height) + "," +
                                                            std::to_string(width) + ")");
  PNEUMO_REQUIRE(output_height >= height && output_width >= width,
                 "GPU post-processing upscales only: " + std::to_string(height) + "x" + std::to_string(width) + " -> " +
                     std::to_string(output_height) + "x" + std::to_string(output_width));
  ComponentBoxBatch result;
  result.component_counts.assign(static_cast<size_t>(count), 0);
  result.component_offsets.assign(static_cast<size_t>(count), 0);
  if (count == 0) return result;

  const long long total = static_cast<long long>(count) * output_height * output_width;
  PostprocessBuffers& buffers = postprocess_buffers();
  auto* resized_data =
      static_cast<float*>(grown(buffers.resized, static_cast<size_t>(total) * sizeof(float)));  // (N,H,W)
  auto* masks_data = static_cast<uint8_t*>(grown(buffers.masks, static_cast<size_t>(total)));   // (N,H,W)
  auto* labels_data =
      static_cast<int32_t*>(grown(buffers.labels, static_cast<size_t>(total) * sizeof(int32_t)));  // (N,H,W)
  auto* counts_data =
      static_cast<int32_t*>(grown(buffers.counts, static_cast<size_t>(count) * sizeof(int32_t)));  // (N)
  auto* row_scratch = static_cast<int32_t*>(
      grown(buffers.row_scratch, label_components_row_scratch_count(count, output_height) * sizeof(int32_t)));

  const double row_scale = static_cast<double>(height) / static_cast<double>(output_height);
  const double column_scale = static_cast<double>(width) / static_cast<double>(output_width);
  const int blocks = grid_stride_blocks(total, 256);
  launch_with_index(total, blocks, 256, [&](auto index) {
    using Index = decltype(index);
    upscale_threshold_kernel<Index><<<blocks, 256>>>(probabilities, count, height, width, output_height, output_width,
                                                     row_scale, column_scale, threshold, resized_data, masks_data);
  });
  PNEUMO_CUDA_CHECK_LAUNCH();
  label_components_cuda(masks_data, count, output_height, output_width, labels_data, counts_data, row_scratch);

  copy_bytes(result.component_counts.data(), Device::CPU, counts_data, Device::CUDA,
             static_cast<size_t>(count) * sizeof(int32_t));
  int32_t total_components = 0;
  std::vector<int32_t> component_images;  // (total) image index of each component
  for (int n = 0; n < count; ++n) {
    result.component_offsets[static_cast<size_t>(n)] = total_components;
    total_components += result.component_counts[static_cast<size_t>(n)];
    component_images.insert(component_images.end(),
                            static_cast<size_t>(result.component_counts[static_cast<size_t>(n)]), n);
  }
  if (total_components == 0) return result;

  const size_t components = static_cast<size_t>(total_components);
  auto* offsets_data =
      static_cast<int32_t*>(grown(buffers.offsets, static_cast<size_t>(count) * sizeof(int32_t)));  // (N)
  auto* images_data = static_cast<int32_t*>(grown(buffers.images, components * sizeof(int32_t)));   // (K)
  auto* bounds_data =
      static_cast<ComponentBounds*>(grown(buffers.bounds, components * sizeof(ComponentBounds)));  // (K)
  auto* means_data = static_cast<float*>(grown(buffers.means, components * sizeof(float)));        // (K)
  copy_bytes(offsets_data, Device::CUDA, result.component_offsets.data(), Device::CPU,
             static_cast<size_t>(count) * sizeof(int32_t));
  copy_bytes(images_data, Device::CUDA, component_images.data(), Device::CPU, components * sizeof(int32_t));
  component_bounds_cuda(labels_data, count, output_height, output_width, offsets_data, total_components, bounds_data);
  rectangle_mean_kernel<<<total_components, kMeanBlock>>>(resized_data, output_height, output_width, images_data,
                                                          bounds_data, means_data);
  PNEUMO_CUDA_CHECK_LAUNCH();

  result.bounds.resize(static_cast<size_t>(total_components));
  result.mean_probabilities.resize(static_cast<size_t>(total_components));
  copy_bytes(result.bounds.data(), Device::CPU, bounds_data, Device::CUDA,
             static_cast<size_t>(total_components) * sizeof(ComponentBounds));
  copy_bytes(result.mean_probabilities.data(), Device::CPU, means_data, Device::CUDA,
             static_cast<size_t>(total_components) * sizeof(float));
  return result;
}

}  // namespace pneumo
