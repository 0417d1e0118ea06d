// Winograd convolution F(m x m, 3 x 3) for 3x3, stride-1, 'same' convolutions on NHWC
// activations (CPU), m = 2 or 4 (Lavin & Gray 2016). Each m x m block of output pixels
// ("tile") is computed from its (m+2) x (m+2) input neighbourhood d and the filter g as
//     Y = A^T [ (G g G^T) (.) (B^T d B) ] A        ((.) = element-wise product)
// so a tile costs (m+2)^2 multiplications per input x output channel instead of 9 m^2:
// 16 vs 36 for F(2x2,3x3), 36 vs 144 for F(4x4,3x3). Summed over input channels, the
// element-wise products become (m+2)^2 independent GEMMs (tiles, I) x (I, O), run by cpu_sgemm.
// Data flows: weight (K,3,3,C) -> transformed filter U ((m+2)^2, I, O) (winograd_transform_filter);
// input (N,H,W,I) + U -> output (N,H,W,O), OVERWRITTEN or ADDED TO (conv_winograd_cpu).
// Forward: I = C, O = K. Input gradient: I = K, O = C, the flipped, in/out-swapped filter, run on
// the output gradient (d input is the 'same' convolution of d output with it).
#pragma once
#include <cstdint>

namespace pneumo {

// (m+2)^2 * I * O: the floats of the transformed filter.
int64_t winograd_filter_floats(int m, int64_t I, int64_t O);

// U ((m+2)^2, I, O) = G g G^T for every (input channel i, output channel o), computed in double.
// Forward: g[r][s] = weight[o, r, s, i]; input_gradient: g[r][s] = weight[i, 2-r, 2-s, o].
// Threaded.
void winograd_transform_filter(float* transformed, const float* weight, int64_t K, int64_t C,
                               int m, bool input_gradient);

// Floats of scratch conv_winograd_cpu needs for this shape (the transformed inputs and the GEMM
// products of one chunk of tiles, about 8 MiB at most).
int64_t winograd_scratch_floats(int m, int64_t N, int64_t H, int64_t W, int64_t I, int64_t O);

// output (N,H,W,O) (+)= bias (O, may be null) + the 3x3 'same' convolution of input (N,H,W,I)
// with the filter whose transform is `transformed`. m = 2 or 4. Threaded: the transforms over
// tiles, the GEMMs over the (m+2)^2 frequency points.
void conv_winograd_cpu(float* output, const float* input, const float* transformed,
                       const float* bias, int64_t N, int64_t H, int64_t W, int64_t I, int64_t O,
                       int m, bool accumulate, float* scratch);

}  // namespace pneumo
