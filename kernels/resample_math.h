// Per-element math of the resampling layers, shared by the CPU loops and the CUDA kernels:
// 2x2 max pooling (layers/max_pool.*) and nearest-neighbour upsampling (layers/upsample.*).
#pragma once
#include <cstdint>

#include "kernels/host_device.h"

namespace pneumo {

// 2x2 max pooling. Window positions are row-major: top-left, top-right, bottom-left,
// bottom-right.
PNEUMO_HD float max_pool_max(float top_left, float top_right, float bottom_left, float bottom_right) {
  float best = top_left;
  best = top_right > best ? top_right : best;
  best = bottom_left > best ? bottom_left : best;
  best = bottom_right > best ? bottom_right : best;
  return best;
}

// The share of the output gradient dy that each window position receives: all of it goes to the
// FIRST position (row-major) holding the maximum, so on ties exactly one input gets it. Written
// as float selects only (no branches), so the CPU loop vectorizes.
struct WindowGradient {
  float top_left, top_right, bottom_left, bottom_right;
};

PNEUMO_HD WindowGradient max_pool_route_gradient(float top_left, float top_right, float bottom_left, float bottom_right,
                                                 float dy) {
  const float best = max_pool_max(top_left, top_right, bottom_left, bottom_right);
  WindowGradient shares;
  float remaining = dy;  // not yet given to an earlier maximum
  shares.top_left = top_left == best ? remaining : 0.0f;
  remaining = top_left == best ? 0.0f : remaining;
  shares.top_right = top_right == best ? remaining : 0.0f;
  remaining = top_right == best ? 0.0f : remaining;
  shares.bottom_left = bottom_left == best ? remaining : 0.0f;
  remaining = bottom_left == best ? 0.0f : remaining;
  shares.bottom_right = remaining;
  return shares;
}

// Nearest-neighbour upsampling by `factor`: the flat NHWC index of the input element that output
// element `output_index` of an (N, H*factor, W*factor, C) tensor copies, for an (N,H,W,C) input.
// Index is int64_t on the CPU; the CUDA kernels use int32_t when the tensor allows it.
template <typename Index>
PNEUMO_HD Index upsample_source_index(Index output_index, Index H, Index W, Index C, Index factor) {
  const Index channel = output_index % C;
  Index rest = output_index / C;
  const Index x = rest % (W * factor);
  rest /= W * factor;
  const Index y = rest % (H * factor);
  const Index n = rest / (H * factor);
  return ((n * H + y / factor) * W + x / factor) * C + channel;
}

}  // namespace pneumo
