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

bool conv_weight_gradient_direct_supported(int64_t in_channels) {
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

int64_t direct_group_width(int64_t O) {
  return (O / kDirectConvBlock) % 2 == 0 ? 2 * kDirectConvBlock : kDirectConvBlock;
}

int64_t direct_slice_channels(int kernel_size) { return kernel_size == 3 ? 16 : 128; }

void pack_direct_filter(float* packed, const float* weight, int64_t K, int64_t C, int R,
                        bool input_gradient) {
  const int64_t taps = int64_t{R} * R;
  const int64_t O = input_gradient ? C : K, I = input_gradient ? K : C;
  const int64_t width = direct_group_width(O), slice = direct_slice_channels(R);
  const int64_t groups = O / width, slices = (I + slice - 1) / slice;
  parallel_for(groups * slices, 1, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      const int64_t group = job / slices, slice_begin = (job % slices) * slice;
      const int64_t slice_end = std::min(I, slice_begin + slice);
      // The (R, R, slice_end - slice_begin, width) run of this group and slice.
      float* run = packed + group * taps * I * width + slice_begin * taps * width;
      for (int64_t tap = 0; tap < taps; ++tap)
        for (int64_t i = slice_begin; i < slice_end; ++i) {
          float* destination = run + (tap * (slice_end - slice_begin) + i - slice_begin) * width;
          if (input_gradient) {
            // output channel o = c of the flipped filter: weight[i = k, R-1-.., R-1-.., c]
            std::memcpy(destination, weight + (i * taps + (taps - 1 - tap)) * C + group * width,
                        sizeof(float) * width);
          } else {
            for (int64_t o = 0; o < width; ++o)
              destination[o] = weight[((group * width + o) * taps + tap) * C + i];
          }
        }
    }
  });
}

#ifdef PNEUMO_DIRECT_CONV_AVX512
namespace {

// One tile: T output pixels (anywhere in the batch: x[t] points at pixel t's tap (0,0) input,
// offset to the slice's first channel) x 16*V output channels (one packed group), accumulated
// in V*T AVX-512 registers over the R*R taps and the slice's input channels. `filter` points
// at the group's slice, (R, R, slice_length, 16*V); output pixels are `output_stride` apart.
template <int T, int V>
__attribute__((target("avx512f"))) void direct_tile(float* output, int64_t output_stride,
                                                     const float* const* x, int64_t row_stride,
                                                     int64_t stride, int R, const float* filter,
                                                     int64_t slice_length, const float* bias,
                                                     bool accumulate) {
  constexpr int64_t kWidth = 16 * V;  // floats per packed filter row
  __m512 sum[T][V];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) {
      sum[t][v] = accumulate ? _mm512_loadu_ps(output + t * output_stride + 16 * v)
                             : _mm512_setzero_ps();
      if (bias) sum[t][v] = _mm512_add_ps(sum[t][v], _mm512_loadu_ps(bias + 16 * v));
    }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < R; ++j) {
      const int64_t shift = i * row_stride + j * stride;
      const float* f = filter + (i * R + j) * slice_length * kWidth;  // (slice_length, 16V)
      for (int64_t c = 0; c < slice_length; ++c) {
        __m512 weights[V];
        for (int v = 0; v < V; ++v) weights[v] = _mm512_loadu_ps(f + c * kWidth + 16 * v);
        for (int t = 0; t < T; ++t) {
          const __m512 value = _mm512_set1_ps(x[t][shift + c]);
          for (int v = 0; v < V; ++v) sum[t][v] = _mm512_fmadd_ps(value, weights[v], sum[t][v]);
        }
      }
    }
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(output + t * output_stride + 16 * v, sum[t][v]);
}

using TileFunction = void (*)(float*, int64_t, const float* const*, int64_t, int64_t, int,
                              const float*, int64_t, const float*, bool);

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

// Weight-gradient tile for one tap: T output channels x 16*V input channels, summed over
// `rows` image rows starting at global row `first_row`: gradient[t, c] (row stride
// gradient_stride) += sum over pixels of dy[p, t] * input[p shifted by the tap, c]. `input`
// is the (N, H+R-1, W+R-1, stride) image already offset by the tap and the first channel.
template <int T, int V>
__attribute__((target("avx512f"))) void weight_gradient_tile(
    float* gradient, int64_t gradient_stride, const float* input, const float* output_gradient,
    int64_t first_row, int64_t rows, int64_t H, int64_t W, int64_t stride, int R, int64_t K) {
  const int64_t input_row = (W + R - 1) * stride;
  __m512 sum[T][V];
  for (int t = 0; t < T; ++t)
    for (int v = 0; v < V; ++v)
      sum[t][v] = _mm512_loadu_ps(gradient + t * gradient_stride + 16 * v);
  for (int64_t row = first_row; row < first_row + rows; ++row) {
    const int64_t n = row / H, h = row % H;
    const float* x = input + (n * (H + R - 1) + h) * input_row;  // tap-shifted (W, stride)
    const float* dy = output_gradient + row * W * K;              // (W, K) at this tile's t
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
                                    int64_t, int64_t, int64_t, int, int64_t);
constexpr int kWeightGradientTile = 12;  // output channels per tile, x 32 input channels
const WeightGradientTile kWeightGradientTiles[kWeightGradientTile + 1] = {
    nullptr,
    weight_gradient_tile<1, 2>,  weight_gradient_tile<2, 2>,  weight_gradient_tile<3, 2>,
    weight_gradient_tile<4, 2>,  weight_gradient_tile<5, 2>,  weight_gradient_tile<6, 2>,
    weight_gradient_tile<7, 2>,  weight_gradient_tile<8, 2>,  weight_gradient_tile<9, 2>,
    weight_gradient_tile<10, 2>, weight_gradient_tile<11, 2>, weight_gradient_tile<12, 2>};

}  // namespace
#endif

void conv_weight_gradient_direct_cpu(float* weight_gradient, const float* input,
                                     const float* output_gradient, int64_t N, int64_t H,
                                     int64_t W, int64_t C, int64_t K, int kernel_size,
                                     float* partials) {
#ifdef PNEUMO_DIRECT_CONV_AVX512
  const int R = kernel_size;
  const int64_t taps = int64_t{R} * R;
  const int64_t total_rows = N * H, weight_count = K * taps * C;
  const int64_t stride = R == 3 ? padded_pixel_stride(C) : C;  // floats per input pixel
  // Rows in groups whose input and output gradient (~512 KiB) stay in L2 over all tiles.
  const int64_t group_rows = std::max<int64_t>(
      1, std::min<int64_t>(total_rows, (int64_t{1} << 17) / ((W + R - 1) * stride + W * K)));
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
        for (int64_t tap = 0; tap < taps; ++tap) {
          const float* shifted = input + ((tap / R) * (W + R - 1) + tap % R) * stride;
          int64_t k = 0;
          for (int64_t index = 0; index < tiles; ++index) {
            const int64_t height = tile + (index < wider ? 1 : 0);
            for (int64_t c = 0; c < C; c += 32)
              kWeightGradientTiles[height](gradient + (k * taps + tap) * C + c, taps * C,
                                           shifted + c, output_gradient + k, first_row, rows, H,
                                           W, stride, R, K);
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
  (void)weight_gradient, (void)input, (void)output_gradient, (void)N, (void)H, (void)W, (void)C,
      (void)K, (void)kernel_size, (void)partials;
#endif
}

void conv_direct_cpu(float* output, const float* input, const float* packed, const float* bias,
                     int64_t N, int64_t H, int64_t W, int64_t C, int64_t O, int kernel_size,
                     bool accumulate) {
#ifdef PNEUMO_DIRECT_CONV_AVX512
  const int R = kernel_size;
  const int64_t width = direct_group_width(O), steps = O / width;
  const int64_t group_floats = R * R * C * width;  // one packed output-channel group
  // 3x3 reads the padded image (pad_image_cpu), 1x1 the image itself.
  const int64_t stride = R == 3 ? padded_pixel_stride(C) : C;  // floats per input pixel
  const int64_t input_height = H + R - 1, input_width = W + R - 1;
  const int64_t row_stride = input_width * stride;
  const TileFunction* tile_functions = width == 64 ? kTiles64 : kTiles32;
  const int64_t tile = width == 64 ? kTile64 : kTile32;
  // Tiles are `tile` consecutive output pixels, crossing image rows and images where they must
  // (each pixel has its own input pointer), so every tile but the batch's last is full width.
  // Pixels in groups whose input (~512 KiB) stays in L2 while every filter group passes over
  // it: one job = one pixel group x one filter group, pixel groups outer, so each thread reads
  // a filter group once per pixel group.
  const int64_t pixels = N * H * W;
  const int64_t group_pixels = std::max<int64_t>(tile, ((int64_t{1} << 17) / stride) / tile * tile);
  const int64_t groups = (pixels + group_pixels - 1) / group_pixels;
  const int64_t slice_size = direct_slice_channels(R);
  parallel_for(groups * steps, 1, [&](int64_t begin, int64_t end) {
    const float* x[kTile32];  // per-pixel input pointers of one tile
    for (int64_t job = begin; job < end; ++job) {
      const int64_t group = job / steps, step = job % steps;
      const float* filter = packed + step * group_floats;
      const float* group_bias = bias ? bias + step * width : nullptr;
      const int64_t first_pixel = group * group_pixels;
      const int64_t last_pixel = std::min(pixels, first_pixel + group_pixels);
      // Input channels in slices: the filter slice (9 x 16 x width floats for 3x3, 128 x width
      // for 1x1, contiguous) stays in L1 while it passes over the group's pixels; partial sums
      // go through the output.
      for (int64_t slice = 0; slice < C; slice += slice_size) {
        const int64_t slice_length = std::min(slice_size, C - slice);
        const float* filter_slice = filter + slice * R * R * width;
        const bool first = slice == 0;
        for (int64_t p = first_pixel; p < last_pixel; p += tile) {
          const int64_t count = std::min(tile, last_pixel - p);
          // Pixel p is (row, w) with row = n*H + h; padded image row of (n, h) is n*(H+R-1)+h.
          int64_t row = p / W, w = p % W;
          for (int64_t t = 0; t < count; ++t) {
            x[t] = input + ((row / H * input_height + row % H) * input_width + w) * stride + slice;
            if (++w == W) w = 0, ++row;
          }
          tile_functions[count](output + p * O + step * width, O, x, row_stride, stride, R,
                                filter_slice, slice_length, first ? group_bias : nullptr,
                                accumulate || !first);
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
