// Direct 3x3 'same' convolution of a ONE-channel NHWC image (the network's first conv, on the
// X-ray itself) with AVX-512 (CPU). im2col + GEMM is a poor fit there: 9-wide GEMM rows. Data
// flows image (N,H,W,1) -> output (N,H,W,K) (forward, OVERWRITES) and output gradient
// (N,H,W,K) x image -> weight gradient (K,3,3,1) (ACCUMULATES). No input gradient: the image
// never needs one.
#pragma once
#include <cstdint>

namespace pneumo {

// True when this CPU runs AVX-512 and K is 16 or 32 (the register budget of the kernels).
bool conv3x3_single_channel_supported(int64_t K);

// output (N,H,W,K) = bias (K, may be null) + sum over i,j<3 of
// image[n, h+i-1, w+j-1] * weight (K,3,3,1)[k,i,j], zero outside the image. Threaded over rows.
void conv3x3_single_channel_forward_cpu(float* output, const float* image, const float* weight, const float* bias,
                                        int64_t N, int64_t H, int64_t W, int64_t K);

// weight_gradient (K,3,3,1)[k,i,j] += sum over pixels of output_gradient[n,h,w,k] *
// image[n, h+i-1, w+j-1] (ACCUMULATES; zero outside the image). Threaded over rows, with
// per-thread partial sums added in a fixed order.
void conv3x3_single_channel_weight_gradient_cpu(float* weight_gradient, const float* output_gradient,
                                                const float* image, int64_t N, int64_t H, int64_t W, int64_t K);

}  // namespace pneumo
