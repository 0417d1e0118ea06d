// Box masks: label boxes -> the 0/1 training mask, made the way the notebook makes it
// (fill at full resolution, scikit-image resize with mode='reflect', then > 0.5).
#pragma once
#include <vector>

#include "data/input/labels.h"

namespace pneumo {

// Fills `boxes` with 1 on a (height,width) zero canvas (boxes are clipped to the canvas; a box
// that needed clipping is named in a warning on stderr), resizes it with resize_like_skimage to
// (out_size,out_size) and thresholds > 0.5. Returns (out_size,out_size) floats that are 0 or 1.
std::vector<float> box_mask(const std::vector<Box>& boxes, int height, int width, int out_size,
                            bool use_threads = true);

}  // namespace pneumo
