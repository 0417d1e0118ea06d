// The reference convolution: stride 1, 'same' zero padding (pad = R/2), NHWC, written as the
// plain loops of its definition, summed in double. It is the algorithm a learner reads first
// and the oracle every faster algorithm is tested against; it is slow on purpose (no blocking,
// no vectors), threaded only over its outermost loop so the tests stay quick.
// Shapes: input (N,H,W,C), weight (K,R,R,C), bias (K), output (N,H,W,K).
#pragma once
#include <cstdint>

namespace pneumo {

// output[n,h,w,k] = bias[k] + sum over i,j<R, c<C of input[n,h+i-p,w+j-p,c] * weight[k,i,j,c]
// (zero outside the image). OVERWRITES output; bias may be null.
void conv_reference_forward_cpu(float* output, const float* input, const float* weight, const float* bias, int64_t N,
                                int64_t H, int64_t W, int64_t C, int64_t K, int R);

// input_gradient[n,y,x,c] += sum over i,j<R, k<K of output_gradient[n,y-i+p,x-j+p,k] *
// weight[k,i,j,c] (every output pixel that read input pixel (y,x) through tap (i,j)).
// ACCUMULATES.
void conv_reference_input_gradient_cpu(float* input_gradient, const float* output_gradient, const float* weight,
                                       int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int R);

// weight_gradient[k,i,j,c] += sum over n,h,w of output_gradient[n,h,w,k] * input[n,h+i-p,w+j-p,c];
// bias_gradient[k] += sum over n,h,w of output_gradient[n,h,w,k] (when non-null). ACCUMULATES.
void conv_reference_weight_gradient_cpu(float* weight_gradient, float* bias_gradient, const float* output_gradient,
                                        const float* input, int64_t N, int64_t H, int64_t W, int64_t C, int64_t K,
                                        int R);

}  // namespace pneumo
