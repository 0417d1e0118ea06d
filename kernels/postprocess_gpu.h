// GPU post-processing of a batch of probability maps into boxes (CUDA builds only; the public
// entry point is data/evaluation/postprocess.h). Probability maps (N,S_h,S_w) on the device in; per image,
// the components' bounds and mean probability over each bounding rectangle out, on the host.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/connected_components.h"

namespace pneumo {

// Host-side result: image n owns components component_offsets[n] .. component_offsets[n] +
// component_counts[n] - 1 of `bounds` and `mean_probabilities`, in label (raster) order.
struct ComponentBoxBatch {
  std::vector<int32_t> component_counts;   // (N)
  std::vector<int32_t> component_offsets;  // (N) exclusive prefix sum of the counts
  std::vector<ComponentBounds> bounds;     // (total) inclusive pixel bounds in the resized frame
  std::vector<float> mean_probabilities;   // (total) mean of the resized map over each rectangle
};

#ifdef PNEUMO_HAVE_CUDA
// probabilities: device (N,height,width) floats. Each map is upscaled to (output_height,
// output_width) with scikit-image's bilinear resize math (kernels/resize_math.h), thresholded
// (value > threshold), labelled with 8-connectivity, and boxed. Upscaling only: output sizes must
// be >= the input sizes (downscaling needs skimage's anti-aliasing, which this path lacks).
// Device buffers are grow-only and kept per host thread (allocated when a batch is larger than
// any before, reused otherwise); the results are copied to the host before returning.
ComponentBoxBatch probability_maps_to_boxes_cuda(const float* probabilities, int count, int height, int width,
                                                 int output_height, int output_width, float threshold);
#endif

}  // namespace pneumo
