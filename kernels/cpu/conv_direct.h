// Direct 3x3 and 1x1 'same' convolutions on NHWC activations with AVX-512 (CPU), used by Conv2d
// instead of im2col + GEMM: no column matrix, no GEMM packing. Data flows a zero-padded image
// (N,H+2,W+2,C) for 3x3, or the image (N,H,W,C) for 1x1, and a packed filter -> output
// (N,H,W,O), OVERWRITTEN (accumulate = false) or ADDED TO (accumulate = true); and (3x3 only)
// padded image x output gradient -> weight gradient, ACCUMULATED.
#pragma once
#include <cstdint>

namespace pneumo {

// Output channels per packed filter block (two AVX-512 vectors).
constexpr int64_t kDirectConvBlock = 32;

// True when this CPU runs AVX-512 and out_channels is a multiple of kDirectConvBlock.
bool conv_direct_supported(int64_t out_channels);

// Floats per pixel in the padded image: C plus one cache line, so that the pixels a tile reads
// (2 KiB apart when C = 512) do not all fall into the same few L1 sets.
inline int64_t padded_pixel_stride(int64_t C) { return C + 16; }

// Floats of the padded image of (N,H,W,C): N*(H+2)*(W+2)*padded_pixel_stride(C).
inline int64_t padded_image_count(int64_t N, int64_t H, int64_t W, int64_t C) {
  return N * (H + 2) * (W + 2) * padded_pixel_stride(C);
}

// padded (N,H+2,W+2,padded_pixel_stride(C)) = image (N,H,W,C) with a one-pixel zero border
// (the extra floats of each pixel are left unset and never read). Threaded.
void pad_image_cpu(float* padded, const float* image, int64_t N, int64_t H, int64_t W, int64_t C);

// output (N,H,W,O) (+)= bias (O, may be null) + sum over i,j<R, c<C of
// input[n, h+i, w+j, c] * packed[o/32, i, j, c, o%32]; packed is (O/32, R, R, C, 32).
// kernel_size R = 3: input is pad_image_cpu's padded image; R = 1: input is the (N,H,W,C)
// image. Threaded over image rows. Requires conv_direct_supported(O).
void conv_direct_cpu(float* output, const float* input, const float* packed, const float* bias,
                     int64_t N, int64_t H, int64_t W, int64_t C, int64_t O, int kernel_size,
                     bool accumulate);

// True when this CPU runs AVX-512 and in_channels is a multiple of 32 (the weight-gradient
// kernel's vector width over input channels).
bool conv3x3_weight_gradient_direct_supported(int64_t in_channels);

// weight_gradient (K,3,3,C) += sum over pixels of output_gradient (N,H,W,K)[n,h,w,k] *
// padded[n, h+i, w+j, c] (ACCUMULATES). padded is pad_image_cpu's layout of the input.
// `partials` must hold (cpu_thread_count()-1) * K*9*C floats: each extra thread sums its rows
// there, then they are added in. Requires conv3x3_weight_gradient_direct_supported(C).
void conv3x3_weight_gradient_direct_cpu(float* weight_gradient, const float* padded,
                                        const float* output_gradient, int64_t N, int64_t H,
                                        int64_t W, int64_t C, int64_t K, float* partials);

}  // namespace pneumo
