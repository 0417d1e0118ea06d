// CUDA (cuDNN) launchers of Conv2d, used by layers/conv2d.cpp under #ifdef PNEUMO_HAVE_CUDA and
// by tests and benchmarks. Same data flow and semantics as the CPU free functions in
// layers/conv2d.h: forward OVERWRITES the output, backward ACCUMULATES (cuDNN beta = 1) into the
// input, weight and bias gradients. All pointers are device pointers; nothing is copied.
#pragma once
#include <memory>
#include <string>

#include "engine/context.h"
#include "layers/conv2d.h"

namespace pneumo {

// A cache of cuDNN descriptors, chosen algorithms and workspace sizes, one entry per
// (geometry, allow_tf32), filled on first use so algorithms are chosen once per input shape.
// layer_name (e.g. "block1_1.conv1") names the layer in errors, such as "no usable algorithm".
std::shared_ptr<Conv2dCudaPlans> make_conv2d_cuda_plans(const std::string& layer_name = "");
// How later plans rank cuDNN's algorithms (layers/conv2d_cudnn_algorithm.h; default heuristic).
void set_conv2d_cuda_search(Conv2dCudaPlans& plans, CudnnSearch search);

// output (N,H,W,K) = conv(input (N,H,W,C), weight (K,R,S,C)) + bias (K); bias may be null.
// allow_tf32=false keeps cuDNN on full-fp32 FMA kernels (CUDNN_FMA_MATH). bf16: input and weight
// rounded to bfloat16 (round_to_bf16_cuda, into CudaResources::staging), cuDNN with bf16 data
// and fp32 compute writes a bf16 result, converted to fp32 with the bias added.
void conv2d_forward_cuda(Context& context, Conv2dCudaPlans& plans, const Conv2dGeometry& geometry, bool allow_tf32,
                         float* output, const float* input, const float* weight, const float* bias,
                         Precision precision = Precision::Fp32);

// ACCUMULATES into input_gradient (N,H,W,C) (may be null), weight_gradient (K,R,S,C) and
// bias_gradient (K) (may be null), given output_gradient (N,H,W,K). bf16: the operands rounded,
// cuDNN writes bf16 input and weight gradients that are added to the fp32 ones (the bias
// gradient stays an fp32 GEMV).
void conv2d_backward_cuda(Context& context, Conv2dCudaPlans& plans, const Conv2dGeometry& geometry, bool allow_tf32,
                          float* input_gradient, float* weight_gradient, float* bias_gradient,
                          const float* output_gradient, const float* input, const float* weight,
                          Precision precision = Precision::Fp32);

}  // namespace pneumo
