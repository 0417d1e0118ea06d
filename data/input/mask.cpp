// Box masks as the notebook makes them: msk[y:y+h, x:x+w] = 1 on a full-size canvas, then
// resize(msk, (S, S), mode='reflect') > 0.5.
#include "data/input/mask.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "data/input/resize.h"
#include "engine/check.h"

namespace pneumo {

namespace {
// Where the box edge falls midway between two sample taps, scikit-image's sum is exactly 0.5 (a
// symmetric sum) and the pixel stays 0; our differently ordered double sum can land 1e-16 on
// either side, so values within this margin of 0.5 count as the tie they are.
constexpr double kTieMargin = 1e-9;
}  // namespace

std::vector<float> box_mask(const std::vector<Box>& boxes, int height, int width, int out_size, bool use_threads) {
  if (height <= 0 || width <= 0 || out_size <= 0)
    throw Error("box_mask: sizes must be positive, got " + std::to_string(height) + "x" + std::to_string(width) +
                " -> " + std::to_string(out_size));
  if (boxes.empty()) return std::vector<float>(static_cast<size_t>(out_size) * out_size, 0.0f);
  std::vector<float> canvas(static_cast<size_t>(height) * width, 0.0f);  // (H,W)
  for (const Box& box : boxes) {
    int x0 = std::max(box.x, 0), y0 = std::max(box.y, 0);
    int x1 = std::min<long long>(static_cast<long long>(box.x) + box.width, width);
    int y1 = std::min<long long>(static_cast<long long>(box.y) + box.height, height);
    if (x0 != box.x || y0 != box.y || x1 != box.x + box.width || y1 != box.y + box.height)
      std::fprintf(stderr,
                   "warning: box (x=%d, y=%d, width=%d, height=%d) reaches outside the %dx%d "
                   "image; clipped\n",
                   box.x, box.y, box.width, box.height, width, height);
    for (int y = y0; y < y1; ++y)
      std::fill(canvas.begin() + static_cast<size_t>(y) * width + x0,
                canvas.begin() + static_cast<size_t>(y) * width + std::max(x0, x1), 1.0f);
  }
  std::vector<double> resized =
      resize_like_skimage_double(canvas.data(), height, width, out_size, out_size, use_threads);
  std::vector<float> mask(resized.size());  // (S,S)
  for (size_t i = 0; i < resized.size(); ++i) mask[i] = resized[i] > 0.5 + kTieMargin ? 1.0f : 0.0f;
  return mask;
}

}  // namespace pneumo
