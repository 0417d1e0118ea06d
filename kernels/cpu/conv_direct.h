// Direct 3x3 and 1x1 'same' convolutions on NHWC activations with AVX-512 or AVX2+FMA (CPU), used by Conv2d
// instead of im2col + GEMM: no column matrix, no GEMM packing. Data flows a zero-padded image
// (N,H+2,W+2,C) for 3x3, or the image (N,H,W,C) for 1x1, and a packed filter -> output
// (N,H,W,O), OVERWRITTEN (accumulate = false) or ADDED TO (accumulate = true); and image x
// output gradient -> weight gradient, ACCUMULATED.
#pragma once
#include <cstdint>

namespace pneumo {

// Output channels per packed filter block (two AVX-512 vectors).
constexpr int64_t kDirectConvBlock = 32;

// True when this CPU runs AVX-512 or AVX2+FMA (kernels/cpu/cpu_isa.h: PNEUMO_CPU_ISA caps it) and
// out_channels is a multiple of kDirectConvBlock.
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

// The packed filter of conv_direct_cpu, for O output and I input channels: output channels in
// groups of direct_group_width(O) (64 when O/32 is even, else 32); within a group, input
// channels in slices of direct_slice_channels(R) (16 for 3x3, 128 for 1x1; the last may be
// shorter); within a slice (R, R, slice length, group width). So the weights one tile reads
// for one slice are one contiguous run (18-36 KiB for 3x3), which stays in L1.
int64_t direct_group_width(int64_t O);
int64_t direct_slice_channels(int kernel_size);

// packed (O*R*R*I) = weight (K,R,R,C) in the layout above. Forward: O = K, I = C, the filter
// itself. input_gradient: O = C, I = K, the spatially flipped, in/out-swapped filter
// [c, i, j, k] = weight[k, R-1-i, R-1-j, c], whose 'same' convolution with d output is
// d input. Threaded.
void pack_direct_filter(float* packed, const float* weight, int64_t K, int64_t C, int R, bool input_gradient);

// output (N,H,W,O) (+)= bias (O, may be null) + sum over i,j<R, c<C of
// input[n, h+i, w+j, c] * filter[o, i, j, c], with the filter packed by pack_direct_filter.
// kernel_size R = 3: input is pad_image_cpu's padded image; R = 1: input is the (N,H,W,C)
// image. Threaded over pixel groups and output-channel groups. Requires
// conv_direct_supported(O).
void conv_direct_cpu(float* output, const float* input, const float* packed, const float* bias, int64_t N, int64_t H,
                     int64_t W, int64_t C, int64_t O, int kernel_size, bool accumulate);

// weight_gradient (K,R,R,C) += sum over pixels of output_gradient (N,H,W,K)[n,h,w,k] *
// input[n, h+i, w+j, c] (ACCUMULATES). R = 3: input is pad_image_cpu's padded image; R = 1:
// the (N,H,W,C) image. `partials` must hold (cpu_thread_count()-1) * K*R*R*C floats: each
// extra thread sums its rows there, then they are added in. Requires conv_direct_supported(C):
// the same rule over input channels (the kernel's vector width), AVX2 or AVX-512.
void conv_weight_gradient_direct_cpu(float* weight_gradient, const float* input, const float* output_gradient,
                                     int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int kernel_size,
                                     float* partials);

}  // namespace pneumo
