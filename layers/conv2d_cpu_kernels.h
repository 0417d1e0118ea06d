// The CPU convolution dispatch table: one row per (algorithm, direction), each holding what the
// row can run (`unsupported`), the scratch it needs (`scratch_floats`) and the computation
// (`run`), so a scratch size cannot drift from the code that uses it (`run` takes its buffers
// from a ConvScratch of exactly `scratch_floats`, which throws when overdrawn) and a new
// algorithm or precision is one more row. The kernels themselves live in kernels/cpu/; the
// choice of a row in layers/conv_selection.h; the layer in layers/conv2d.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "layers/conv_algorithm.h"
#include "layers/precision.h"

namespace pneumo {

// The operands of one call; each direction reads and writes its own fields (the rest stay null).
//   forward:         output (N,H,W,K) = conv(input (N,H,W,C), weight (K,R,S,C)) + bias (K, or null);
//                    OVERWRITES output; prepared: null or the filter conv2d_prepare_filter_cpu made.
//   input-gradient:  input_gradient (N,H,W,C) += d/d input given output_gradient (N,H,W,K), weight.
//   weight-gradient: weight_gradient (K,R,S,C) += d/d weight, bias_gradient (K, or null) += d/d
//                    bias, given output_gradient (N,H,W,K) and the forward's input (N,H,W,C).
struct ConvCpuOperands {
  float* output = nullptr;
  const float* input = nullptr;
  const float* weight = nullptr;
  const float* bias = nullptr;
  const float* prepared = nullptr;
  const float* output_gradient = nullptr;
  float* input_gradient = nullptr;
  float* weight_gradient = nullptr;
  float* bias_gradient = nullptr;
};

// A row's share of the scratch buffer: take() hands out consecutive pieces and throws
// pneumo::Error when a row takes more than its scratch_floats said (a drift the tests would
// catch on the first call, never a silent overrun).
class ConvScratch {
 public:
  ConvScratch(float* data, int64_t floats) : data_(data), floats_(floats) {}
  float* take(int64_t count);

 private:
  float* data_;
  int64_t floats_;
  int64_t used_ = 0;
};

struct ConvCpuKernel {
  ConvAlgorithm algorithm;
  ConvDirection direction;
  // Empty when the row runs `geometry` on this CPU (and under PNEUMO_CPU_ISA); otherwise why not.
  std::string (*unsupported)(const Conv2dGeometry& geometry);
  // Floats of scratch `run` takes; filter_prepared: the forward is given its prepared filter.
  int64_t (*scratch_floats)(const Conv2dGeometry& geometry, bool filter_prepared);
  void (*run)(const ConvCpuOperands& operands, const Conv2dGeometry& geometry, ConvScratch& scratch);
  // The functions `run` calls, for a reader (pneumo inspect, Conv2d::functions).
  const char* calls;
};

// The row of a concrete algorithm (throws pneumo::Error for Auto, which is a choice, not a row).
const ConvCpuKernel& conv_cpu_kernel(ConvAlgorithm algorithm, ConvDirection direction);

// Empty when `algorithm` (concrete) runs `direction` of `geometry` on this CPU (and under
// PNEUMO_CPU_ISA); otherwise why not, e.g. "winograd4 runs 3x3 convolutions only".
std::string conv_algorithm_unsupported_reason(ConvAlgorithm algorithm, ConvDirection direction,
                                              const Conv2dGeometry& geometry);

// Runs the row of (algorithm, direction) on `operands`, after checking that it can (throws
// pneumo::Error naming the shape and the reason otherwise). `scratch` is a grow-only host buffer
// reused between calls; it is grown to conv2d_cpu_scratch_floats. bf16 (the portable path,
// layers/precision.md): the operands the direction multiplies are first rounded to bfloat16
// values (round_to_bf16_cpu, into the scratch), then the same row runs on them, so the products
// are exact and accumulate in fp32; the bias and everything written stay fp32.
void conv2d_run_cpu(ConvAlgorithm algorithm, ConvDirection direction, const ConvCpuOperands& operands,
                    const Conv2dGeometry& geometry, std::vector<float>& scratch, Precision precision = Precision::Fp32);

// The three directions by name (conv2d_run_cpu with the operands of each).
void conv2d_forward_cpu(float* output, const float* input, const float* weight, const float* bias,
                        const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch,
                        const float* prepared = nullptr, Precision precision = Precision::Fp32);
void conv2d_input_gradient_cpu(float* input_gradient, const float* output_gradient, const float* weight,
                               const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch,
                               Precision precision = Precision::Fp32);
void conv2d_weight_gradient_cpu(float* weight_gradient, float* bias_gradient, const float* output_gradient,
                                const float* input, const Conv2dGeometry& geometry, ConvAlgorithm algorithm,
                                std::vector<float>& scratch, Precision precision = Precision::Fp32);

// The forward's filter as `algorithm` reads it, made ahead of the run: the Winograd transform U
// ((m+2)^2, K/OB, C, OB) or the direct kernels' packed layout (K*R*S*C). 0 floats for reference
// and gemm, which read the weight as it is, and for the one-channel direct kernel.
int64_t conv2d_prepared_filter_floats(const Conv2dGeometry& geometry, ConvAlgorithm algorithm);
// prepared (conv2d_prepared_filter_floats) = that filter, from weight (K,R,S,C) (bf16: from the
// weight rounded to bfloat16, as the run would round it). Threaded.
void conv2d_prepare_filter_cpu(float* prepared, const float* weight, const Conv2dGeometry& geometry,
                               ConvAlgorithm algorithm, Precision precision = Precision::Fp32);

// Floats of scratch that `algorithm` grows in `direction` for this geometry (padded copies,
// im2col columns, packed or transformed filters, per-thread partial sums): the row's
// scratch_floats, plus in bf16 the rounded copies of the operands. The memory budget
// (layers/network.h) is built on it.
int64_t conv2d_cpu_scratch_floats(const Conv2dGeometry& geometry, ConvDirection direction, ConvAlgorithm algorithm,
                                  Precision precision = Precision::Fp32, bool filter_prepared = false);

}  // namespace pneumo
