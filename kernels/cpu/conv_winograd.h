// Winograd convolution F(m x m, 3 x 3) for 3x3, stride-1, 'same' convolutions on NHWC
// activations (CPU), m = 2 or 4 (Lavin & Gray 2016). Each m x m block of output pixels
// ("tile") is computed from its (m+2) x (m+2) input neighbourhood d and the filter g as
//     Y = A^T [ (G g G^T) (.) (B^T d B) ] A        ((.) = element-wise product)
// so a tile costs (m+2)^2 multiplications per input x output channel instead of 9 m^2:
// 16 vs 36 for F(2x2,3x3), 36 vs 144 for F(4x4,3x3). Summed over input channels, the
// element-wise products become (m+2)^2 independent products (tiles, I) x (I, O).
//
// Forward / input gradient (conv_winograd_cpu): each thread takes blocks of tiles (sized so
// their transformed inputs stay in L2), transforms them, multiplies them with the transformed
// filter one panel of output channels at a time in registers (kernels/cpu/
// conv_winograd_kernels.inc) and transforms the products back into the output: the transformed
// data never leaves the cache. Forward: I = C, O = K. Input gradient: I = K, O = C, the
// flipped, in/out-swapped filter, run on the output gradient (d input is the 'same'
// convolution of d output with it).
//
// Weight gradient (conv_winograd_weight_gradient_cpu): the transpose of the same bilinear map,
//     dg = G^T [ sum over tiles (A dY A^T) (.) (B^T d B) ] G,
// (m+2)^2 products (I, tiles) x (tiles, O) summed over every tile of the batch, then one
// output transform per (o, i).
#pragma once
#include <cstdint>

namespace pneumo {

// (m+2)^2 * I * O: the floats of the transformed filter.
int64_t winograd_filter_floats(int m, int64_t I, int64_t O);

// U = G g G^T for every (input channel i, output channel o), computed in double, stored in
// panels of output channels ((m+2)^2, O / OB, I, OB; OB set by the vector width that runs
// this I and O). Forward: g[r][s] = weight[o, r, s, i]; input_gradient: g[r][s] =
// weight[i, 2-r, 2-s, o]. Threaded.
void winograd_transform_filter(float* transformed, const float* weight, int64_t K, int64_t C, int m,
                               bool input_gradient);

// Floats of scratch conv_winograd_cpu needs for I -> O channels (each thread's block of
// transformed inputs and products, about 0.5-1 MiB per thread).
int64_t winograd_scratch_floats(int m, int64_t I, int64_t O);

// output (N,H,W,O) (+)= bias (O, may be null) + the 3x3 'same' convolution of input (N,H,W,I)
// with the filter whose transform is `transformed`. m = 2 or 4. Threaded over blocks of tiles;
// each output element is computed by one thread, so results do not depend on the thread count.
void conv_winograd_cpu(float* output, const float* input, const float* transformed, const float* bias, int64_t N,
                       int64_t H, int64_t W, int64_t I, int64_t O, int m, bool accumulate, float* scratch);

// Floats of scratch conv_winograd_weight_gradient_cpu needs: (m+2)^2 * (C*K + (chunk+1)*(C+K)).
int64_t winograd_weight_gradient_scratch_floats(int m, int64_t C, int64_t K);

// weight_gradient (K,3,3,C) += the gradient of the 3x3 'same' convolution of input (N,H,W,C)
// given output_gradient (N,H,W,K). m = 2 or 4. Threaded over tiles (transforms) and over the
// (m+2)^2 frequency points (products); each sum runs in a fixed order, independent of threads.
void conv_winograd_weight_gradient_cpu(float* weight_gradient, const float* input, const float* output_gradient,
                                       int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int m, float* scratch);

}  // namespace pneumo
