// scikit-image 0.19 resize(mode='reflect') as two separable passes. Along each axis, the
// Gaussian (anti-aliasing) and the bilinear zoom are both linear, so they compose into one set of
// taps per output index: output[o] = sum_t weight_t * input[index_t]. Rows first (vectorised over
// the width), then columns; both in double, rounded once at the end.
#include "data/input/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/resize_math.h"

namespace pneumo {

namespace {

// Composite taps of one axis, compressed-row style: output o uses
// indices[offsets[o] .. offsets[o + 1]) with the matching weights.
struct AxisTaps {
  std::vector<int> offsets;     // (out + 1)
  std::vector<int> indices;     // (total taps)
  std::vector<double> weights;  // (total taps)
};

// scipy.ndimage._gaussian_kernel1d(sigma, 0, radius): exp(-x^2 / (2 sigma^2)), normalised.
std::vector<double> gaussian_kernel(double sigma, int radius) {
  std::vector<double> kernel(2 * radius + 1);
  double sum = 0.0;
  for (int d = -radius; d <= radius; ++d) {
    kernel[d + radius] = std::exp(-0.5 / (sigma * sigma) * static_cast<double>(d) * d);
    sum += kernel[d + radius];
  }
  for (double& value : kernel) value /= sum;
  return kernel;
}

AxisTaps make_axis_taps(int in_size, int out_size, bool anti_aliasing) {
  double sigma = anti_aliasing ? resize_antialias_sigma(in_size, out_size) : 0.0;
  bool filter = sigma > 1e-15;  // gaussian_filter skips axes with sigma <= 1e-15
  int radius = filter ? resize_gaussian_radius(sigma) : 0;
  std::vector<double> kernel = filter ? gaussian_kernel(sigma, radius) : std::vector<double>{1.0};
  double scale = static_cast<double>(in_size) / static_cast<double>(out_size);

  AxisTaps taps;
  taps.offsets.push_back(0);
  std::vector<double> dense(in_size, 0.0);  // (in) weight per input index for one output
  std::vector<char> used(in_size, 0);       // (in)
  std::vector<int> touched;
  for (int o = 0; o < out_size; ++o) {
    LinearTaps linear = resize_linear_taps(resize_source_coordinate(o, scale), in_size);
    const int centres[2] = {linear.index0, linear.index1};
    const double centre_weights[2] = {linear.weight0, linear.weight1};
    for (int c = 0; c < 2; ++c) {
      if (centre_weights[c] == 0.0) continue;
      for (int d = -radius; d <= radius; ++d) {
        int index = resize_mirror_index(centres[c] + d, in_size);
        if (!used[index]) touched.push_back(index);
        used[index] = 1;
        dense[index] += centre_weights[c] * kernel[d + radius];
      }
    }
    std::sort(touched.begin(), touched.end());
    for (int index : touched) {
      taps.indices.push_back(index);
      taps.weights.push_back(dense[index]);
      dense[index] = 0.0;
      used[index] = 0;
    }
    touched.clear();
    taps.offsets.push_back(static_cast<int>(taps.indices.size()));
  }
  return taps;
}

// Minimum and maximum of `count` values, in 8 independent lanes so the loop vectorises.
void value_range(const float* values, int64_t count, float& low, float& high) {
  float lows[8], highs[8];
  for (int lane = 0; lane < 8; ++lane) lows[lane] = highs[lane] = values[0];
  int64_t i = 0;
  for (; i + 8 <= count; i += 8)
    for (int lane = 0; lane < 8; ++lane) {
      lows[lane] = values[i + lane] < lows[lane] ? values[i + lane] : lows[lane];
      highs[lane] = values[i + lane] > highs[lane] ? values[i + lane] : highs[lane];
    }
  for (; i < count; ++i) {
    lows[0] = std::min(lows[0], values[i]);
    highs[0] = std::max(highs[0], values[i]);
  }
  low = *std::min_element(lows, lows + 8);
  high = *std::max_element(highs, highs + 8);
}

template <typename Output>
std::vector<Output> resize_separable(const float* image, int height, int width, int out_height, int out_width,
                                     bool use_threads) {
  PNEUMO_REQUIRE(image != nullptr, "resize: null image");
  if (height <= 0 || width <= 0 || out_height <= 0 || out_width <= 0)
    throw Error("resize: sizes must be positive, got " + std::to_string(height) + "x" + std::to_string(width) + " -> " +
                std::to_string(out_height) + "x" + std::to_string(out_width));
  // skimage: anti_aliasing defaults to true when any axis shrinks; sigma is 0 on axes that don't.
  bool anti_aliasing = out_height < height || out_width < width;
  AxisTaps row_taps = make_axis_taps(height, out_height, anti_aliasing);
  AxisTaps column_taps = make_axis_taps(width, out_width, anti_aliasing);

  // skimage clips to the input's value range (taken before filtering).
  float low, high;
  value_range(image, static_cast<int64_t>(height) * width, low, high);

  std::vector<Output> output(static_cast<size_t>(out_height) * out_width);  // (H',W')
  auto rows = [&](int64_t begin, int64_t end) {
    const double clip_low = low, clip_high = high;
    std::vector<double> row(width);  // (W) one output row after the vertical pass
    for (int64_t o = begin; o < end; ++o) {
      std::fill(row.begin(), row.end(), 0.0);
      for (int t = row_taps.offsets[o]; t < row_taps.offsets[o + 1]; ++t) {
        const float* source = image + static_cast<int64_t>(row_taps.indices[t]) * width;
        const double weight = row_taps.weights[t];
        double* destination = row.data();
        for (int x = 0; x < width; ++x) destination[x] += weight * static_cast<double>(source[x]);
      }
      Output* out_row = output.data() + o * out_width;
      for (int x = 0; x < out_width; ++x) {
        double sum = 0.0;
        for (int t = column_taps.offsets[x]; t < column_taps.offsets[x + 1]; ++t)
          sum += column_taps.weights[t] * row[column_taps.indices[t]];
        out_row[x] = static_cast<Output>(std::min(std::max(sum, clip_low), clip_high));
      }
    }
  };
  if (use_threads) {
    // Enough rows per chunk that a thread gets ~1M multiply-adds.
    int64_t taps_per_row = row_taps.indices.size() / out_height + 1;
    int64_t min_chunk = std::max<int64_t>(1, (1 << 20) / (taps_per_row * width + out_width));
    // (parallel_for takes the lambda as Function&&; an lvalue lambda does not compile.)
    parallel_for(out_height, min_chunk, [&](int64_t begin, int64_t end) { rows(begin, end); });
  } else {
    rows(0, out_height);
  }
  return output;
}

}  // namespace

std::vector<float> resize_like_skimage(const float* image, int height, int width, int out_height, int out_width,
                                       bool use_threads) {
  return resize_separable<float>(image, height, width, out_height, out_width, use_threads);
}

std::vector<double> resize_like_skimage_double(const float* image, int height, int width, int out_height, int out_width,
                                               bool use_threads) {
  return resize_separable<double>(image, height, width, out_height, out_width, use_threads);
}

}  // namespace pneumo
