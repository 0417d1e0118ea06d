#include "kernels/cpu/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "engine/cpu_threads.h"

#include "engine/check.h"
#include "kernels/cpu/cpu_isa.h"

// GCC only: clang does not honour `#pragma GCC target` (the fuzz build compiles with clang and
// gets no direct kernels; `direct` then reports that this build cannot run it).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#include <array>
#include <utility>
#define PNEUMO_DIRECT_CONV_X86 1
#endif

namespace pneumo {

bool conv_direct_supported(int64_t out_channels) {
#ifdef PNEUMO_DIRECT_CONV_X86
  return cpu_isa() != CpuIsa::Scalar && out_channels > 0 && out_channels % kDirectConvBlock == 0;
#else
  (void)out_channels;
  return false;
#endif
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
      for (int64_t w = 0; w < W; ++w) std::memcpy(destination + (w + 1) * stride, source + w * C, sizeof(float) * C);
      std::memset(destination + (W + 1) * stride, 0, sizeof(float) * C);
    }
  });
}

int64_t direct_group_width(int64_t O) {
  return (O / kDirectConvBlock) % 2 == 0 ? 2 * kDirectConvBlock : kDirectConvBlock;
}

int64_t direct_slice_channels(int kernel_size) { return kernel_size == 3 ? 16 : 128; }

void pack_direct_filter(float* packed, const float* weight, int64_t K, int64_t C, int R, bool input_gradient) {
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
            std::memcpy(destination, weight + (i * taps + (taps - 1 - tap)) * C + group * width, sizeof(float) * width);
          } else {
            for (int64_t o = 0; o < width; ++o) destination[o] = weight[((group * width + o) * taps + tap) * C + i];
          }
        }
    }
  });
}

#ifdef PNEUMO_DIRECT_CONV_X86
// The kernels of conv_direct_kernels.inc, compiled twice.
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace avx512_kernels {
#include "kernels/cpu/simd_avx512.inc"
// 12 pixels x 32 channels or 6 x 64 (24 accumulators + 2-4 filter vectors + 1 broadcast of 32
// registers); weight gradient 12 output x 32 input channels.
constexpr int kTilePixels32 = 12, kTilePixels64 = 6, kForwardVectors = 4, kWeightTile = 12;
#include "kernels/cpu/conv_direct_kernels.inc"
}  // namespace avx512_kernels
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2_kernels {
#include "kernels/cpu/simd_avx2.inc"
// 6 pixels x 16 channels (12 accumulators + 2 filter vectors + 1 broadcast of 16 registers),
// swept over the 32- or 64-channel group; weight gradient 6 output x 16 input channels.
constexpr int kTilePixels32 = 6, kTilePixels64 = 6, kForwardVectors = 2, kWeightTile = 6;
#include "kernels/cpu/conv_direct_kernels.inc"
}  // namespace avx2_kernels
#pragma GCC pop_options
#endif

namespace {

[[noreturn]] void throw_no_direct_kernels(const char* what) {
  throw Error(std::string(what) +
              ": the direct kernels need AVX2+FMA or AVX-512 (this CPU, "
              "with PNEUMO_CPU_ISA, offers " +
              cpu_isa_name(cpu_isa()) + ")");
}

}  // namespace

void conv_weight_gradient_direct_cpu(float* weight_gradient, const float* input, const float* output_gradient,
                                     int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int kernel_size,
                                     float* partials) {
#ifdef PNEUMO_DIRECT_CONV_X86
  if (cpu_isa() == CpuIsa::Avx512)
    return avx512_kernels::conv_weight_gradient_direct(weight_gradient, input, output_gradient, N, H, W, C, K,
                                                       kernel_size, partials);
  if (cpu_isa() == CpuIsa::Avx2)
    return avx2_kernels::conv_weight_gradient_direct(weight_gradient, input, output_gradient, N, H, W, C, K,
                                                     kernel_size, partials);
#endif
  (void)weight_gradient, (void)input, (void)output_gradient, (void)N, (void)H, (void)W, (void)C, (void)K,
      (void)kernel_size, (void)partials;
  throw_no_direct_kernels("conv_weight_gradient_direct_cpu");
}

void conv_direct_cpu(float* output, const float* input, const float* packed, const float* bias, int64_t N, int64_t H,
                     int64_t W, int64_t C, int64_t O, int kernel_size, bool accumulate) {
#ifdef PNEUMO_DIRECT_CONV_X86
  if (cpu_isa() == CpuIsa::Avx512)
    return avx512_kernels::conv_direct(output, input, packed, bias, N, H, W, C, O, kernel_size, accumulate);
  if (cpu_isa() == CpuIsa::Avx2)
    return avx2_kernels::conv_direct(output, input, packed, bias, N, H, W, C, O, kernel_size, accumulate);
#endif
  (void)output, (void)input, (void)packed, (void)bias, (void)N, (void)H, (void)W, (void)C, (void)O, (void)kernel_size,
      (void)accumulate;
  throw_no_direct_kernels("conv_direct_cpu");
}

}  // namespace pneumo
