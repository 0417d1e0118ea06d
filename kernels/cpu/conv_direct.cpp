#include "kernels/cpu/conv_direct.h"

#include <algorithm>
#include <cstring>

#include "engine/cpu_threads.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PNEUMO_DIRECT_CONV_AVX512 1
#endif

namespace pneumo {

bool conv_direct_supported(int64_t out_channels) {
#ifdef PNEUMO_DIRECT_CONV_AVX512
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 && out_channels > 0 && out_channels % kDirectConvBlock == 0;
#else
  (void)out_channels;
  return false;
#endif
}

bool conv3x3_weight_gradient_direct_supported(int64_t in_channels) {
  return conv_direct_supported(in_channels);  // same rule: AVX-512, multiple of 32
}

void pad_image_cpu(float* padded, const float* image, int64_t N, int64_t H, int64_t W, int64_t C) {
  const int64_t stride = padded_pixel_stride(C);
  parallel_for(N * (H + 2), 8, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / (H + 2), h = row % (H + 2) - 1;
      float* destination = padded + row * (W + 2) * stride;  // (W+2, stride)
      if (h < 0 || h >= H) {
        std::memset(destination, 0, sizeof(float) * (W + 2) * stride);
        continue;
      }
      const float* source = image + (n * H + h) * W * C;  // (W, C)
      std::memset(destination, 0, sizeof(float) * C);
      for (int64_t w = 0; w < W; ++w)
        std::memcpy(destination + (w + 1) * stride, source + w * C, sizeof(float) * C);
      std::memset(destination + (W + 1) * stride, 0, sizeof(float) * C);
    }
  });
}

#ifdef PNEUMO_DIRECT_CONV_AVX512
namespace {

constexpr int64_t kChannelSlice = 16;

// One tile: T consecutive output pixels of one row x 16*V output channels (V/2 consecutive
// packed filter blocks), accumulated in V*T AVX-512 registers over the 9 taps and C input
// channels. `input` points at padded pixel (h, w), the tap (0,0) of the tile's first pixel;
// `filter` at the first block's (3,3,C,32) weights.
template <int T, int V>
__attribute__((target("avx512f"))) void direct_tile(float* output, int64_t output_stride,
                                                     const float* input, int64_t row_stride,
                                                     int64_t stride, int R, const float* filter,
                                                     int64_t C, int64_t slice, int64_t slice_end,
                                                     const float* bias, bool accumulate) {
  const int64_t block_floats = R * R * C * kDirectConvBlock;
  __m512 sum[T][V];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) {
      sum[t][v] = accumulate ? _mm512_loadu_ps(output + t * output_stride + 16 * v)
                             : _mm512_setzero_ps();
      if (bias) sum[t][v] = _mm512_add_ps(sum[t][v], _mm512_loadu_ps(bias + 16 * v));
    }
  {
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < R; ++j) {
        const float* x = input + i * row_stride + j * stride;          // (T pixels, stride)
        const float* f = filter + (i * R + j) * C * kDirectConvBlock;  // (C, 32) per block
        for (int64_t c = slice; c < slice_end; ++c) {
          __m512 weights[V];
          for (int v = 0; v < V; ++v)
            weights[v] = _mm512_loadu_ps(f + (v / 2) * block_floats + c * kDirectConvBlock +
                                         (v % 2) * 16);
          for (int t = 0; t < T; ++t) {
            const __m512 value = _mm512_set1_ps(x[t * stride + c]);
            for (int v = 0; v < V; ++v) sum[t][v] = _mm512_fmadd_ps(value, weights[v], sum[t][v]);
          }
        }
      }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(output + t * output_stride + 16 * v, sum[t][v]);
}

using TileFunction = void (*)(float*, int64_t, const float*, int64_t, int64_t, int,
                              const float*, int64_t, int64_t, int64_t, const float*, bool);

// Tiles of 1..12 pixels x 32 channels (24 accumulators + 2 filter vectors + 1 broadcast).
constexpr int kTile32 = 12;
const TileFunction kTiles32[kTile32 + 1] = {
    nullptr,              direct_tile<1, 2>,  direct_tile<2, 2>,  direct_tile<3, 2>,
    direct_tile<4, 2>,  direct_tile<5, 2>,  direct_tile<6, 2>,  direct_tile<7, 2>,
    direct_tile<8, 2>,  direct_tile<9, 2>,  direct_tile<10, 2>, direct_tile<11, 2>,
    direct_tile<12, 2>};
// Tiles of 1..6 pixels x 64 channels (24 accumulators + 4 filter vectors + 1 broadcast).
constexpr int kTile64 = 6;
const TileFunction kTiles64[kTile64 + 1] = {nullptr,           direct_tile<1, 4>, direct_tile<2, 4>,
                                            direct_tile<3, 4>, direct_tile<4, 4>, direct_tile<5, 4>,
                                            direct_tile<6, 4>};

// Weight-gradient tile for one tap (i,j): T output channels x 16*V input channels, summed over
// `rows` image rows starting at global row `first_row`:
// gradient[t, c] (row stride 9*C) += sum over pixels of dy[p, t] * padded[p shifted by (i,j), c].
template <int T, int V>
__attribute__((target("avx512f"))) void weight_gradient_tile(
    float* gradient, int64_t gradient_stride, const float* padded, const float* output_gradient,
    int64_t first_row, int64_t rows, int64_t H, int64_t W, int64_t C, int64_t K) {
  const int64_t stride = padded_pixel_stride(C);
  __m512 sum[T][V];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v)
      sum[t][v] = _mm512_loadu_ps(gradient + t * gradient_stride + 16 * v);
  for (int64_t row = first_row; row < first_row + rows; ++row) {
    const int64_t n = row / H, h = row % H;
    const float* x = padded + (n * (H + 2) + h) * (W + 2) * stride;  // tap-shifted (W, stride)
    const float* dy = output_gradient + row * W * K;                   // (W, K) at this tile's t
    for (int64_t w = 0; w < W; ++w) {
      __m512 values[V];
      for (int v = 0; v < V; ++v) values[v] = _mm512_loadu_ps(x + w * stride + 16 * v);
      for (int t = 0; t < T; ++t) {
        const __m512 gradient_value = _mm512_set1_ps(dy[w * K + t]);
        for (int v = 0; v < V; ++v)
          sum[t][v] = _mm512_fmadd_ps(gradient_value, values[v], sum[t][v]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v)
      _mm512_storeu_ps(gradient + t * gradient_stride + 16 * v, sum[t][v]);
}

using WeightGradientTile = void (*)(float*, int64_t, const float*, const float*, int64_t, int64_t,
                                    int64_t, int64_t, int64_t, int64_t);
constexpr int kWeightGradientTile = 12;  // output channels per tile, x 32 input channels
const WeightGradientTile kWeightGradientTiles[kWeightGradientTile + 1] = {
    nullptr,
    weight_gradient_tile<1, 2>,  weight_gradient_tile<2, 2>,  weight_gradient_tile<3, 2>,
    weight_gradient_tile<4, 2>,  weight_gradient_tile<5, 2>,  weight_gradient_tile<6, 2>,
    weight_gradient_tile<7, 2>,  weight_gradient_tile<8, 2>,  weight_gradient_tile<9, 2>,
    weight_gradient_tile<10, 2>, weight_gradient_tile<11, 2>, weight_gradient_tile<12, 2>};

}  // namespace
#endif

void conv3x3_weight_gradient_direct_cpu(float* weight_gradient, const float* padded,
                                        const float* output_gradient, int64_t N, int64_t H,
                                        int64_t W, int64_t C, int64_t K, float* partials) {
#ifdef PNEUMO_DIRECT_CONV_AVX512
  const int64_t total_rows = N * H, weight_count = K * 9 * C;
  const int64_t stride = padded_pixel_stride(C);
  // Rows in groups whose input and output gradient (~512 KiB) stay in L2 over all tiles.
  const int64_t group_rows = std::max<int64_t>(
      1, std::min<int64_t>(total_rows, (int64_t{1} << 17) / ((W + 2) * stride + W * K)));
  const int64_t groups = (total_rows + group_rows - 1) / group_rows;
  const int64_t threads = std::min<int64_t>(cpu_thread_count(), groups);
  // Output-channel tiles of T or T+1 (T <= 12) covering K evenly.
  const int64_t tiles = (K + kWeightGradientTile - 1) / kWeightGradientTile, tile = K / tiles,
                wider = K % tiles;
  parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t thread = begin; thread < end; ++thread) {
      // Thread 0 accumulates straight into weight_gradient, the others into zeroed partials.
      float* gradient = thread == 0 ? weight_gradient : partials + (thread - 1) * weight_count;
      if (thread > 0) std::memset(gradient, 0, sizeof(float) * weight_count);
      const int64_t first_group = groups * thread / threads;
      const int64_t last_group = groups * (thread + 1) / threads;
      for (int64_t group = first_group; group < last_group; ++group) {
        const int64_t first_row = group * group_rows;
        const int64_t rows = std::min(total_rows, first_row + group_rows) - first_row;
        for (int64_t tap = 0; tap < 9; ++tap) {
          const float* shifted = padded + ((tap / 3) * (W + 2) + tap % 3) * stride;
          int64_t k = 0;
          for (int64_t index = 0; index < tiles; ++index) {
            const int64_t height = tile + (index < wider ? 1 : 0);
            for (int64_t c = 0; c < C; c += 32)
              kWeightGradientTiles[height](gradient + (k * 9 + tap) * C + c, 9 * C, shifted + c,
                                           output_gradient + k, first_row, rows, H, W, C, K);
            k += height;
          }
        }
      }
    }
  });
  for (int64_t thread = 1; thread < threads; ++thread) {
    const float* partial = partials + (thread - 1) * weight_count;
    parallel_for(weight_count, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t index = begin; index < end; ++index) weight_gradient[index] += partial[index];
    });
  }
#else
  (void)weight_gradient, (void)padded, (void)output_gradient, (void)N, (void)H, (void)W, (void)C,
      (void)K, (void)partials;
#endif
}

void conv_direct_cpu(float* output, const float* input, const float* packed, const float* bias,
                     int64_t N, int64_t H, int64_t W, int64_t C, int64_t O, int kernel_size,
                     bool accumulate) {
#ifdef PNEUMO_DIRECT_CONV_AVX512
  const int R = kernel_size;
  const int64_t blocks = O / kDirectConvBlock;
  const int64_t block_floats = R * R * C * kDirectConvBlock;  // one packed (R,R,C,32) block
  // 3x3 reads the padded image (pad_image_cpu), 1x1 the image itself.
  const int64_t stride = R == 3 ? padded_pixel_stride(C) : C;  // floats per input pixel
  const int64_t input_height = H + R - 1, row_stride = (W + R - 1) * stride;
  // Rows in groups whose input (~512 KiB) stays in L2 while every filter block passes over it:
  // one job = one row group x one or two filter blocks, groups outer, so each thread reads a
  // filter block once per group, not once per row.
  const int64_t total_rows = N * H;
  const int64_t group_rows =
      std::max<int64_t>(1, std::min<int64_t>(total_rows, (int64_t{1} << 17) / row_stride));
  const int64_t groups = (total_rows + group_rows - 1) / group_rows;
  // Pairs of filter blocks (64 channels) per tile when O allows.
  const int64_t step = blocks % 2 == 0 ? 2 : 1;  // filter blocks per tile
  const TileFunction* tile_functions = step == 2 ? kTiles64 : kTiles32;
  const int64_t max_tile = step == 2 ? kTile64 : kTile32;
  // Tiles of T or T+1 pixels (T <= max_tile) covering a row evenly: no tiny tail tile.
  const int64_t tiles = (W + max_tile - 1) / max_tile, tile = W / tiles, wider = W % tiles;
  const int64_t steps = blocks / step;
  const int64_t slice_size = R == 3 ? kChannelSlice : 128;
  parallel_for(groups * steps, 1, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      const int64_t group = job / steps, block = (job % steps) * step;
      const float* filter = packed + block * block_floats;
      const float* block_bias = bias ? bias + block * kDirectConvBlock : nullptr;
      const int64_t last_row = std::min(total_rows, (group + 1) * group_rows);
      // Input channels in slices: the filter slice (9 x 16 x 32*step floats for 3x3,
      // 128 x 32*step for 1x1) stays in L1 while it passes over the group's rows; partial sums
      // go through the output.
      for (int64_t slice = 0; slice < C; slice += slice_size) {
        const int64_t slice_end = std::min(C, slice + slice_size);
        const bool first = slice == 0;
        for (int64_t row = group * group_rows; row < last_row; ++row) {
          const int64_t n = row / H, h = row % H;
          const float* input_row = input + (n * input_height + h) * row_stride;  // (W+R-1, stride)
          float* output_block = output + row * W * O + block * kDirectConvBlock;  // (W, 32*step)
          int64_t w = 0;
          for (int64_t index = 0; index < tiles; ++index) {
            const int64_t width = tile + (index < wider ? 1 : 0);
            tile_functions[width](output_block + w * O, O, input_row + w * stride, row_stride,
                                  stride, R, filter, C, slice, slice_end,
                                  first ? block_bias : nullptr, accumulate || !first);
            w += width;
          }
        }
      }
    }
  });
#else
  (void)output, (void)input, (void)packed, (void)bias, (void)N, (void)H, (void)W, (void)C,
      (void)O, (void)kernel_size, (void)accumulate;
#endif
}

}  // namespace pneumo
