// CPU post-processing (and the dispatch to the CUDA path in kernels/cuda/postprocess.cu).
#include "data/evaluation/postprocess.h"

#include <cstdint>
#include <string>

#include "data/input/resize.h"
#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/connected_components.h"
#ifdef PNEUMO_HAVE_CUDA
#include "kernels/postprocess_gpu.h"
#endif

namespace pneumo {
namespace {

// skimage regionprops' bbox is (min_row, min_col, max_row + 1, max_col + 1): exclusive maxima.
Box box_from_bounds(const ComponentBounds& bounds) {
  return Box{bounds.min_x, bounds.min_y, bounds.max_x - bounds.min_x + 1, bounds.max_y - bounds.min_y + 1};
}

// np.mean(pred[y:y+height, x:x+width]) over the whole rectangle, accumulated in double.
float rectangle_mean(const float* image, int width, const Box& box) {
  double sum = 0.0;
  for (int y = box.y; y < box.y + box.height; ++y) {
    const float* row = image + static_cast<int64_t>(y) * width;
    for (int x = box.x; x < box.x + box.width; ++x) sum += row[x];
  }
  return static_cast<float>(sum / (static_cast<double>(box.width) * box.height));
}

void require_options(const PostprocessOptions& options) {
  PNEUMO_REQUIRE(options.output_height > 0 && options.output_width > 0,
                 "post-processing: output size must be positive, got " + std::to_string(options.output_height) + "x" +
                     std::to_string(options.output_width));
}

void require_map_batch(const Tensor& probabilities) {
  PNEUMO_REQUIRE(probabilities.rank() == 4 && probabilities.C() == 1,
                 "post-processing: expected probability maps (N,H,W,1), got " + shape_string(probabilities.shape()));
}

}  // namespace

std::vector<ScoredBox> boxes_from_probability_map(const float* probabilities, int height, int width,
                                                  const PostprocessOptions& options) {
  require_options(options);
  const int out_height = options.output_height, out_width = options.output_width;
  // (H,W) resized map, exactly skimage's resize(pred, (H, W), mode='reflect').
  std::vector<float> resized =
      resize_like_skimage(probabilities, height, width, out_height, out_width, /*use_threads=*/false);
  const int64_t pixel_count = static_cast<int64_t>(out_height) * out_width;
  // Scratch kept per thread between calls: fresh multi-megabyte buffers per map cost more in
  // page faults than the labelling itself.
  thread_local std::vector<uint8_t> mask;    // (H,W)
  thread_local std::vector<int32_t> labels;  // (H,W)
  if (mask.size() < static_cast<size_t>(pixel_count)) {
    mask.resize(static_cast<size_t>(pixel_count));
    labels.resize(static_cast<size_t>(pixel_count));
  }
  const float threshold = options.threshold;
  for (int64_t i = 0; i < pixel_count; ++i) mask[i] = resized[i] > threshold ? 1 : 0;
  const int component_count = label_components_cpu(mask.data(), out_height, out_width, labels.data());
  std::vector<ComponentBounds> bounds = component_bounds_cpu(labels.data(), out_height, out_width, component_count);
  std::vector<ScoredBox> boxes;
  boxes.reserve(bounds.size());
  for (const ComponentBounds& component : bounds) {
    ScoredBox scored;
    scored.box = box_from_bounds(component);
    scored.confidence = rectangle_mean(resized.data(), out_width, scored.box);
    boxes.push_back(scored);
  }
  return boxes;
}

std::vector<std::vector<ScoredBox>> boxes_from_probability_maps_cpu(const Tensor& probabilities,
                                                                    const PostprocessOptions& options) {
  require_map_batch(probabilities);
  require_device(probabilities, Device::CPU, "post-processing (CPU) probability maps");
  const int count = static_cast<int>(probabilities.N());
  const int height = static_cast<int>(probabilities.H()), width = static_cast<int>(probabilities.W());
  std::vector<std::vector<ScoredBox>> boxes(static_cast<size_t>(count));
  const float* maps = probabilities.data();  // (N,S_h,S_w,1)
  parallel_for(count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      boxes[static_cast<size_t>(n)] =
          boxes_from_probability_map(maps + n * static_cast<int64_t>(height) * width, height, width, options);
  });
  return boxes;
}

std::vector<std::vector<ScoredBox>> boxes_from_probability_maps_cuda(const Tensor& probabilities,
                                                                     const PostprocessOptions& options) {
  require_map_batch(probabilities);
  require_options(options);
  require_device(probabilities, Device::CUDA, "post-processing (CUDA) probability maps");
#ifdef PNEUMO_HAVE_CUDA
  const int count = static_cast<int>(probabilities.N());
  ComponentBoxBatch batch = probability_maps_to_boxes_cuda(
      probabilities.data(), count, static_cast<int>(probabilities.H()), static_cast<int>(probabilities.W()),
      options.output_height, options.output_width, options.threshold);
  std::vector<std::vector<ScoredBox>> boxes(static_cast<size_t>(count));
  for (int n = 0; n < count; ++n) {
    const size_t first = static_cast<size_t>(batch.component_offsets[static_cast<size_t>(n)]);
    const size_t components = static_cast<size_t>(batch.component_counts[static_cast<size_t>(n)]);
    for (size_t k = first; k < first + components; ++k) {
      ScoredBox scored;
      scored.box = box_from_bounds(batch.bounds[k]);
      scored.confidence = batch.mean_probabilities[k];
      boxes[static_cast<size_t>(n)].push_back(scored);
    }
  }
  return boxes;
#else
  (void)options;
  throw Error("post-processing on CUDA: this build has no CUDA back end");
#endif
}

std::vector<std::vector<ScoredBox>> boxes_from_probability_maps(const Tensor& probabilities,
                                                                const PostprocessOptions& options) {
  return probabilities.device() == Device::CUDA ? boxes_from_probability_maps_cuda(probabilities, options)
                                                : boxes_from_probability_maps_cpu(probabilities, options);
}

}  // namespace pneumo
