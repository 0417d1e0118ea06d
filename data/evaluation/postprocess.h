// Post-processing, as in the notebook's prediction cell: probability map (S_h,S_w) from the
// network -> bilinear resize to the image's size -> threshold -> 8-connected components ->
// one box per component with confidence = mean resized probability over the box rectangle.
// Maps in, boxes out (in skimage regionprops order: raster order of each component's first pixel).
#pragma once
#include <vector>

#include "data/input/labels.h"
#include "engine/tensor.h"

namespace pneumo {

struct PostprocessOptions {
  float threshold = 0.5f;    // a pixel is foreground when its resized probability > threshold
  int output_height = 1024;  // the image's own size (RSNA images are 1024x1024)
  int output_width = 1024;
};

// One map (height,width) row-major on the host. Runs on the calling thread.
std::vector<ScoredBox> boxes_from_probability_map(const float* probabilities, int height, int width,
                                                  const PostprocessOptions& options = {});

// A batch of maps, tensor (N,S_h,S_w,1) on the CPU; images run in parallel on the CPU threads.
std::vector<std::vector<ScoredBox>> boxes_from_probability_maps_cpu(const Tensor& probabilities,
                                                                    const PostprocessOptions& options = {});

// The same on the GPU, tensor (N,S_h,S_w,1) on the CUDA device (upscaling only). Boxes equal the
// CPU's; confidences agree to float rounding (sums are ordered differently). Throws
// pneumo::Error in a build without the CUDA back end.
std::vector<std::vector<ScoredBox>> boxes_from_probability_maps_cuda(const Tensor& probabilities,
                                                                     const PostprocessOptions& options = {});

// Dispatches on the tensor's device (no silent fallback between devices).
std::vector<std::vector<ScoredBox>> boxes_from_probability_maps(const Tensor& probabilities,
                                                                const PostprocessOptions& options = {});

}  // namespace pneumo
