// Resizing faithful to scikit-image 0.19's resize(image, (out_height, out_width), mode='reflect')
// with its defaults (order 1, anti_aliasing when shrinking, clip). Image (H,W) -> image (H',W').
// See data/input/decoding.md for the exact correspondence; per-element math lives in kernels/resize_math.h.
#pragma once
#include <vector>

namespace pneumo {

// image: (height,width) row-major float; returns (out_height,out_width). When any side shrinks,
// a Gaussian with sigma = max(0, (factor - 1) / 2) per axis (truncate 4, ndimage 'mirror'
// boundary) is applied first; then bilinear sampling at (out + 0.5) * in/out - 0.5 with
// 'mirror' boundary; the result is clipped to the input's [min, max]. Computed in double,
// rounded to float once. `use_threads` = false keeps the call on the calling thread
// (for callers that are already worker threads).
std::vector<float> resize_like_skimage(const float* image, int height, int width, int out_height, int out_width,
                                       bool use_threads = true);

// The same computation, kept in double (for masks, which threshold at exactly 0.5).
std::vector<double> resize_like_skimage_double(const float* image, int height, int width, int out_height, int out_width,
                                               bool use_threads = true);

}  // namespace pneumo
