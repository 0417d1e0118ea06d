// Per-element resize math shared by the CPU resize (data/input/resize.cpp) and CUDA kernels (e.g.
// upscaling 256x256 probability maps to 1024x1024): scipy.ndimage's 'mirror' boundary, the
// grid_mode=True sample coordinate of ndi.zoom, and one bilinear sample. Pure functions.
#pragma once
#include <math.h>

#include "kernels/host_device.h"

namespace pneumo {

// ndimage 'mirror' boundary (numpy.pad 'reflect', what skimage's mode='reflect' maps to):
// ... d c b | a b c d | c b a ..., repeated for indices far outside; size 1 maps everything to 0.
PNEUMO_HD int resize_mirror_index(int index, int size) {
  if (size <= 1) return 0;
  int period = 2 * size - 2;
  if (index < 0) index = -index;
  index %= period;
  return index < size ? index : period - index;
}

// Where output index `out_index` samples the input in ndi.zoom(grid_mode=True):
// (out + 0.5) * scale - 0.5 with scale = in_size / out_size (computed in double, like scipy).
PNEUMO_HD double resize_source_coordinate(int out_index, double scale) {
  return (static_cast<double>(out_index) + 0.5) * scale - 0.5;
}

// Linear interpolation taps along one axis at `coordinate`: input indices (already mirrored)
// and weights; weights sum to 1. Equals scipy's order-1 spline with mode 'mirror'.
struct LinearTaps {
  int index0, index1;
  double weight0, weight1;
};
PNEUMO_HD LinearTaps resize_linear_taps(double coordinate, int size) {
  double start = floor(coordinate);
  double fraction = coordinate - start;
  int first = static_cast<int>(start);
  LinearTaps taps;
  taps.index0 = resize_mirror_index(first, size);
  taps.index1 = resize_mirror_index(first + 1, size);
  taps.weight0 = 1.0 - fraction;
  taps.weight1 = fraction;
  return taps;
}

// One bilinear sample of image (height,width) at (y, x) in input pixel coordinates, 'mirror'
// boundary, accumulated in double. Output pixel (oy, ox) of an upscale (no anti-aliasing) is
// resize_bilinear_sample(image, H, W, resize_source_coordinate(oy, H / out_H),
//                                      resize_source_coordinate(ox, W / out_W)),
// then clipped to the input's [min, max] as skimage does.
PNEUMO_HD float resize_bilinear_sample(const float* image, int height, int width, double y, double x) {
  LinearTaps rows = resize_linear_taps(y, height);
  LinearTaps columns = resize_linear_taps(x, width);
  const float* row0 = image + static_cast<long long>(rows.index0) * width;
  const float* row1 = image + static_cast<long long>(rows.index1) * width;
  double top = columns.weight0 * row0[columns.index0] + columns.weight1 * row0[columns.index1];
  double bottom = columns.weight0 * row1[columns.index0] + columns.weight1 * row1[columns.index1];
  return static_cast<float>(rows.weight0 * top + rows.weight1 * bottom);
}

// scikit-image's default anti-aliasing sigma for one axis: max(0, (in/out - 1) / 2).
PNEUMO_HD double resize_antialias_sigma(int in_size, int out_size) {
  double factor = static_cast<double>(in_size) / static_cast<double>(out_size);
  double sigma = (factor - 1.0) / 2.0;
  return sigma > 0.0 ? sigma : 0.0;
}

// scipy.ndimage.gaussian_filter1d's kernel radius: int(truncate * sigma + 0.5), truncate = 4.
PNEUMO_HD int resize_gaussian_radius(double sigma) { return static_cast<int>(4.0 * sigma + 0.5); }

}  // namespace pneumo
