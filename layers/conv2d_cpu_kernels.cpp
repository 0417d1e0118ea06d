#include "layers/conv2d_cpu_kernels.h"

#include <algorithm>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/bf16_round.h"
#include "kernels/cpu/conv3x3_single_channel.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_reference.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"

namespace pneumo {

float* ConvScratch::take(int64_t count) {
  if (count < 0 || used_ + count > floats_)
    throw Error("conv scratch: a row takes " + std::to_string(used_ + count) + " floats, its scratch_floats said " +
                std::to_string(floats_));
  float* piece = data_ + used_;
  used_ += count;
  return piece;
}

namespace {

// ---- shared pieces ----------------------------------------------------------------------------

// im2col columns are built for a chunk of image rows at a time, so scratch stays near this many
// floats (16 MiB) whatever the batch and image size; a chunk is still thousands of GEMM rows.
constexpr int64_t kColumnBudgetFloats = int64_t{1} << 22;

// Splits the N*H image rows into equal chunks whose columns fit the budget.
int64_t rows_per_chunk(const Conv2dGeometry& geometry, int64_t column_width) {
  const int64_t total_rows = geometry.N * geometry.H;
  const int64_t max_rows = std::max<int64_t>(1, kColumnBudgetFloats / (geometry.W * column_width));
  const int64_t chunks = (total_rows + max_rows - 1) / max_rows;
  return (total_rows + chunks - 1) / chunks;
}

// Floats of im2col columns for one chunk of rows `column_width` wide.
int64_t im2col_floats(const Conv2dGeometry& geometry, int64_t column_width) {
  return rows_per_chunk(geometry, column_width) * geometry.W * column_width;
}

int64_t taps(const Conv2dGeometry& geometry) { return int64_t{geometry.kernel_size} * geometry.kernel_size; }

// The bias loops are memory-bound and small next to the convolution; they stay single-threaded.

// output (P,K) += bias (K) on every pixel row.
void add_bias_cpu(float* output, const float* bias, int64_t pixels, int64_t K) {
  for (int64_t p = 0; p < pixels; ++p) {
    float* row = output + p * K;
    for (int64_t k = 0; k < K; ++k) row[k] += bias[k];
  }
}

// bias_gradient (K) += sum over pixel rows of output_gradient (P,K), summed in double.
void accumulate_bias_gradient_cpu(float* bias_gradient, const float* output_gradient, int64_t pixels, int64_t K) {
  std::vector<double> sum(static_cast<size_t>(K), 0.0);  // (K)
  for (int64_t p = 0; p < pixels; ++p) {
    const float* row = output_gradient + p * K;
    for (int64_t k = 0; k < K; ++k) sum[k] += row[k];
  }
  for (int64_t k = 0; k < K; ++k) bias_gradient[k] += static_cast<float>(sum[k]);
}

// flipped (C,R,S,K)[c,i,j,k] = weight (K,R,S,C)[k,R-1-i,S-1-j,c], transposed through 16x16
// (k,c) tiles so reads and writes are both contiguous runs; threaded over c blocks.
void flip_filter(float* flipped, const float* weight, int64_t K, int64_t C, int64_t R) {
  constexpr int64_t kBlock = 16;
  const int64_t tap_count = R * R;
  parallel_for((C + kBlock - 1) / kBlock, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c_block = begin; c_block < end; ++c_block) {
      const int64_t c_begin = c_block * kBlock, c_end = std::min(C, c_begin + kBlock);
      for (int64_t k_begin = 0; k_begin < K; k_begin += kBlock) {
        const int64_t k_end = std::min(K, k_begin + kBlock);
        for (int64_t tap = 0; tap < tap_count; ++tap) {
          float tile[kBlock][kBlock];  // (k, c): read along c, written along k
          for (int64_t k = k_begin; k < k_end; ++k) {
            const float* source = weight + (k * tap_count + (tap_count - 1 - tap)) * C;  // (C)
            for (int64_t c = c_begin; c < c_end; ++c) tile[k - k_begin][c - c_begin] = source[c];
          }
          for (int64_t c = c_begin; c < c_end; ++c) {
            float* destination = flipped + (c * tap_count + tap) * K;  // (K)
            for (int64_t k = k_begin; k < k_end; ++k) destination[k] = tile[k - k_begin][c - c_begin];
          }
        }
      }
    }
  });
}

bool uses_single_channel_kernel(const Conv2dGeometry& geometry) {
  return geometry.kernel_size == 3 && geometry.C == 1 && conv3x3_single_channel_supported(geometry.K);
}

std::string runs_everything(const Conv2dGeometry&) { return ""; }

// ---- reference: the six-loop definition (kernels/cpu/conv_reference.h) ------------------------

int64_t no_scratch(const Conv2dGeometry&, bool) { return 0; }

void reference_forward(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch&) {
  conv_reference_forward_cpu(o.output, o.input, o.weight, o.bias, g.N, g.H, g.W, g.C, g.K, g.kernel_size);
}
void reference_input_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch&) {
  conv_reference_input_gradient_cpu(o.input_gradient, o.output_gradient, o.weight, g.N, g.H, g.W, g.C, g.K,
                                    g.kernel_size);
}
void reference_weight_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch&) {
  conv_reference_weight_gradient_cpu(o.weight_gradient, o.bias_gradient, o.output_gradient, o.input, g.N, g.H, g.W, g.C,
                                     g.K, g.kernel_size);
}

// ---- gemm: im2col (in chunks of rows) + one GEMM per chunk ------------------------------------

int64_t gemm_forward_scratch(const Conv2dGeometry& g, bool) {
  return g.kernel_size == 1 ? 0 : im2col_floats(g, taps(g) * g.C);
}
void gemm_forward(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  const int64_t W = g.W, C = g.C, K = g.K;
  if (g.kernel_size == 1) {
    // output (P,K) = input (P,C) x weight (K,C)^T
    cpu_sgemm(false, true, g.pixels(), K, C, 1.0f, o.input, C, o.weight, C, 0.0f, o.output, K);
  } else {
    const int64_t column_width = taps(g) * C;  // weight read as (K, R*R*C)
    const int64_t total_rows = g.N * g.H;
    const int64_t chunk_rows = rows_per_chunk(g, column_width);
    float* columns = scratch.take(chunk_rows * W * column_width);  // (chunk_rows*W, R*R*C)
    for (int64_t first = 0; first < total_rows; first += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, total_rows - first);
      im2col_same_cpu(columns, o.input, g.H, W, C, g.kernel_size, first, rows);
      // output rows of the chunk (rows*W, K) = columns (rows*W, R*R*C) x weight (K, R*R*C)^T
      cpu_sgemm(false, true, rows * W, K, column_width, 1.0f, columns, column_width, o.weight, column_width, 0.0f,
                o.output + first * W * K, K);
    }
  }
  if (o.bias) add_bias_cpu(o.output, o.bias, g.pixels(), K);
}

// d input is the 'same' convolution of d output with the spatially flipped, in/out-swapped
// weight: flipped (C,R,S,K)[c,i,j,k] = weight (K,R,S,C)[k,R-1-i,S-1-j,c]. Every algorithm but
// reference runs that convolution, accumulating into input_gradient.
int64_t gemm_input_gradient_scratch(const Conv2dGeometry& g, bool) {
  return g.kernel_size == 1 ? 0 : im2col_floats(g, taps(g) * g.K) + g.C * taps(g) * g.K;
}
void gemm_input_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  const int64_t W = g.W, C = g.C, K = g.K;
  if (g.kernel_size == 1) {
    // input_gradient (P,C) += output_gradient (P,K) x weight (K,C)
    cpu_sgemm(false, false, g.pixels(), C, K, 1.0f, o.output_gradient, K, o.weight, C, 1.0f, o.input_gradient, C);
    return;
  }
  // im2col of d output + one GEMM that accumulates straight into input_gradient (beta = 1), with
  // no col2im scatter.
  const int64_t column_width = taps(g) * K;
  const int64_t chunk_rows = rows_per_chunk(g, column_width);
  float* columns = scratch.take(chunk_rows * W * column_width);  // (chunk_rows*W, R*R*K)
  float* flipped = scratch.take(C * column_width);               // (C,R,S,K)
  flip_filter(flipped, o.weight, K, C, g.kernel_size);
  for (int64_t first = 0; first < g.N * g.H; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, g.N * g.H - first);
    im2col_same_cpu(columns, o.output_gradient, g.H, W, K, g.kernel_size, first, rows);
    // input_gradient rows (rows*W, C) += columns (rows*W, R*R*K) x flipped (C, R*R*K)^T
    cpu_sgemm(false, true, rows * W, C, column_width, 1.0f, columns, column_width, flipped, column_width, 1.0f,
              o.input_gradient + first * W * C, C);
  }
}

int64_t gemm_weight_gradient_scratch(const Conv2dGeometry& g, bool) {
  return g.kernel_size == 1 ? 0 : im2col_floats(g, taps(g) * g.C);
}
void gemm_weight_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  const int64_t W = g.W, C = g.C, K = g.K;
  if (o.bias_gradient) accumulate_bias_gradient_cpu(o.bias_gradient, o.output_gradient, g.pixels(), K);
  if (g.kernel_size == 1) {
    // weight_gradient (K,C) += output_gradient (P,K)^T x input (P,C)
    cpu_sgemm(true, false, K, C, g.pixels(), 1.0f, o.output_gradient, K, o.input, C, 1.0f, o.weight_gradient, C);
    return;
  }
  const int64_t column_width = taps(g) * C;
  const int64_t chunk_rows = rows_per_chunk(g, column_width);
  float* columns = scratch.take(chunk_rows * W * column_width);  // (chunk_rows*W, R*R*C)
  for (int64_t first = 0; first < g.N * g.H; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, g.N * g.H - first);
    im2col_same_cpu(columns, o.input, g.H, W, C, g.kernel_size, first, rows);
    // weight_gradient (K, R*R*C) += output_gradient rows (rows*W, K)^T x columns (rows*W, R*R*C)
    cpu_sgemm(true, false, K, column_width, rows * W, 1.0f, o.output_gradient + first * W * K, K, columns, column_width,
              1.0f, o.weight_gradient, column_width);
  }
}

// ---- direct: AVX2/AVX-512 register-blocked kernels (kernels/cpu/conv_direct.h) -----------------

std::string direct_isa_reason() {
  if (cpu_isa() == CpuIsa::Scalar)
    return "direct needs AVX2+FMA or AVX-512, and this CPU (capped by PNEUMO_CPU_ISA) offers "
           "neither";
  return "";
}

std::string direct_forward_unsupported(const Conv2dGeometry& g) {
  std::string reason = direct_isa_reason();
  if (!reason.empty()) return reason;
  if (uses_single_channel_kernel(g) || conv_direct_supported(g.K)) return "";
  return "direct forward needs a multiple of 32 output channels (or, AVX-512 only, one "
         "input channel and 16 or 32 outputs), got " +
         std::to_string(g.K) + " output channels";
}

std::string direct_input_channels_reason(ConvDirection direction, const Conv2dGeometry& g) {
  if (conv_direct_supported(g.C)) return "";
  return "direct " + std::string(conv_direction_name(direction)) + " needs a multiple of 32 input channels, got " +
         std::to_string(g.C);
}

std::string direct_input_gradient_unsupported(const Conv2dGeometry& g) {
  std::string reason = direct_isa_reason();
  return reason.empty() ? direct_input_channels_reason(ConvDirection::InputGradient, g) : reason;
}

std::string direct_weight_gradient_unsupported(const Conv2dGeometry& g) {
  std::string reason = direct_isa_reason();
  if (!reason.empty()) return reason;
  if (uses_single_channel_kernel(g)) return "";
  return direct_input_channels_reason(ConvDirection::WeightGradient, g);
}

int64_t direct_filter_floats(const Conv2dGeometry& g) {
  return uses_single_channel_kernel(g) ? 0 : taps(g) * g.C * g.K;
}

int64_t direct_forward_scratch(const Conv2dGeometry& g, bool filter_prepared) {
  if (uses_single_channel_kernel(g)) return 0;
  const int64_t filter = filter_prepared ? 0 : direct_filter_floats(g);
  return (g.kernel_size == 3 ? padded_image_count(g.N, g.H, g.W, g.C) : 0) + filter;
}
void direct_forward(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  if (uses_single_channel_kernel(g)) {
    // One input channel (the image): its own kernel, which adds the bias itself.
    conv3x3_single_channel_forward_cpu(o.output, o.input, o.weight, o.bias, g.N, g.H, g.W, g.K);
    return;
  }
  // The direct kernel (over the zero-padded input for 3x3); it adds the bias itself.
  float* padded = g.kernel_size == 3 ? scratch.take(padded_image_count(g.N, g.H, g.W, g.C)) : nullptr;
  const float* prepared = o.prepared;
  if (!prepared) {
    float* packed = scratch.take(direct_filter_floats(g));  // (K*R*R*C), direct layout
    pack_direct_filter(packed, o.weight, g.K, g.C, g.kernel_size, false);
    prepared = packed;
  }
  if (padded) {
    pad_image_cpu(padded, o.input, g.N, g.H, g.W, g.C);  // (N,H+2,W+2,C+16)
    conv_direct_cpu(o.output, padded, prepared, o.bias, g.N, g.H, g.W, g.C, g.K, 3, false);
  } else {
    conv_direct_cpu(o.output, o.input, prepared, o.bias, g.N, g.H, g.W, g.C, g.K, 1, false);
  }
}

int64_t direct_input_gradient_scratch(const Conv2dGeometry& g, bool) {
  return (g.kernel_size == 3 ? padded_image_count(g.N, g.H, g.W, g.K) : 0) + taps(g) * g.C * g.K;
}
void direct_input_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  if (g.kernel_size == 3) {
    float* padded = scratch.take(padded_image_count(g.N, g.H, g.W, g.K));  // (N,H+2,W+2,K+16)
    float* packed = scratch.take(9 * g.C * g.K);                           // (C*3*3*K), direct layout
    pad_image_cpu(padded, o.output_gradient, g.N, g.H, g.W, g.K);
    pack_direct_filter(packed, o.weight, g.K, g.C, 3, true);
    conv_direct_cpu(o.input_gradient, padded, packed, nullptr, g.N, g.H, g.W, g.K, g.C, 3, true);
  } else {
    float* packed = scratch.take(g.C * g.K);  // (C*K), direct layout
    pack_direct_filter(packed, o.weight, g.K, g.C, 1, true);
    conv_direct_cpu(o.input_gradient, o.output_gradient, packed, nullptr, g.N, g.H, g.W, g.K, g.C, 1, true);
  }
}

int64_t direct_weight_gradient_scratch(const Conv2dGeometry& g, bool) {
  if (uses_single_channel_kernel(g)) return 0;
  const int64_t partials = (cpu_thread_count() - 1) * g.K * taps(g) * g.C;  // (threads-1, K,R,R,C)
  return (g.kernel_size == 3 ? padded_image_count(g.N, g.H, g.W, g.C) : 0) + partials;
}
void direct_weight_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  if (o.bias_gradient) accumulate_bias_gradient_cpu(o.bias_gradient, o.output_gradient, g.pixels(), g.K);
  if (uses_single_channel_kernel(g)) {
    conv3x3_single_channel_weight_gradient_cpu(o.weight_gradient, o.output_gradient, o.input, g.N, g.H, g.W, g.K);
  } else if (g.kernel_size == 3) {
    // Direct kernel over the zero-padded input, per-thread partial sums.
    float* padded = scratch.take(padded_image_count(g.N, g.H, g.W, g.C));      // (N,H+2,W+2,C+16)
    float* partials = scratch.take((cpu_thread_count() - 1) * g.K * 9 * g.C);  // (threads-1, K,3,3,C)
    pad_image_cpu(padded, o.input, g.N, g.H, g.W, g.C);
    conv_weight_gradient_direct_cpu(o.weight_gradient, padded, o.output_gradient, g.N, g.H, g.W, g.C, g.K, 3, partials);
  } else {
    // A GEMM with a very long inner dimension (all pixels), which the direct kernel runs
    // faster than OpenBLAS.
    float* partials = scratch.take((cpu_thread_count() - 1) * g.K * g.C);  // (threads-1, K,C)
    conv_weight_gradient_direct_cpu(o.weight_gradient, o.input, o.output_gradient, g.N, g.H, g.W, g.C, g.K, 1,
                                    partials);
  }
}

// ---- Winograd F(2x2,3x3) and F(4x4,3x3) (kernels/cpu/conv_winograd.h) --------------------------

template <int m>
std::string winograd_unsupported(const Conv2dGeometry& g) {
  if (g.kernel_size == 3) return "";
  const std::string name = m == 2 ? "winograd2" : "winograd4";
  return name + " runs 3x3 convolutions only, this one is " + std::to_string(g.kernel_size) + "x" +
         std::to_string(g.kernel_size);
}

template <int m>
int64_t winograd_forward_scratch(const Conv2dGeometry& g, bool filter_prepared) {
  return (filter_prepared ? 0 : winograd_filter_floats(m, g.C, g.K)) + winograd_scratch_floats(m, g.C, g.K);
}
template <int m>
void winograd_forward(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  const float* prepared = o.prepared;
  if (!prepared) {
    float* transformed = scratch.take(winograd_filter_floats(m, g.C, g.K));  // U ((m+2)^2, K/OB, C, OB)
    winograd_transform_filter(transformed, o.weight, g.K, g.C, m, false);
    prepared = transformed;
  }
  float* blocks = scratch.take(winograd_scratch_floats(m, g.C, g.K));
  conv_winograd_cpu(o.output, o.input, prepared, o.bias, g.N, g.H, g.W, g.C, g.K, m, false, blocks);
}

template <int m>
int64_t winograd_input_gradient_scratch(const Conv2dGeometry& g, bool) {
  return winograd_filter_floats(m, g.K, g.C) + winograd_scratch_floats(m, g.K, g.C);
}
template <int m>
void winograd_input_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  float* transformed = scratch.take(winograd_filter_floats(m, g.K, g.C));  // of the flipped filter
  float* blocks = scratch.take(winograd_scratch_floats(m, g.K, g.C));
  winograd_transform_filter(transformed, o.weight, g.K, g.C, m, true);
  conv_winograd_cpu(o.input_gradient, o.output_gradient, transformed, nullptr, g.N, g.H, g.W, g.K, g.C, m, true,
                    blocks);
}

template <int m>
int64_t winograd_weight_gradient_scratch(const Conv2dGeometry& g, bool) {
  return winograd_weight_gradient_scratch_floats(m, g.C, g.K);
}
template <int m>
void winograd_weight_gradient(const ConvCpuOperands& o, const Conv2dGeometry& g, ConvScratch& scratch) {
  if (o.bias_gradient) accumulate_bias_gradient_cpu(o.bias_gradient, o.output_gradient, g.pixels(), g.K);
  float* buffer = scratch.take(winograd_weight_gradient_scratch_floats(m, g.C, g.K));
  conv_winograd_weight_gradient_cpu(o.weight_gradient, o.input, o.output_gradient, g.N, g.H, g.W, g.C, g.K, m, buffer);
}

// ---- the table --------------------------------------------------------------------------------

using A = ConvAlgorithm;
using D = ConvDirection;
const ConvCpuKernel kKernels[] = {
    {A::Reference, D::Forward, runs_everything, no_scratch, reference_forward, "conv_reference_forward_cpu"},
    {A::Reference, D::InputGradient, runs_everything, no_scratch, reference_input_gradient,
     "conv_reference_input_gradient_cpu"},
    {A::Reference, D::WeightGradient, runs_everything, no_scratch, reference_weight_gradient,
     "conv_reference_weight_gradient_cpu"},
    {A::Gemm, D::Forward, runs_everything, gemm_forward_scratch, gemm_forward,
     "im2col_same_cpu + cpu_sgemm per chunk of rows (1x1: one cpu_sgemm), add_bias_cpu"},
    {A::Gemm, D::InputGradient, runs_everything, gemm_input_gradient_scratch, gemm_input_gradient,
     "flip_filter, im2col_same_cpu + cpu_sgemm per chunk of rows (1x1: one cpu_sgemm)"},
    {A::Gemm, D::WeightGradient, runs_everything, gemm_weight_gradient_scratch, gemm_weight_gradient,
     "accumulate_bias_gradient_cpu, im2col_same_cpu + cpu_sgemm per chunk of rows (1x1: one cpu_sgemm)"},
    {A::Direct, D::Forward, direct_forward_unsupported, direct_forward_scratch, direct_forward,
     "pack_direct_filter, pad_image_cpu + conv_direct_cpu (one input channel: conv3x3_single_channel_forward_cpu)"},
    {A::Direct, D::InputGradient, direct_input_gradient_unsupported, direct_input_gradient_scratch,
     direct_input_gradient, "pad_image_cpu, pack_direct_filter + conv_direct_cpu"},
    {A::Direct, D::WeightGradient, direct_weight_gradient_unsupported, direct_weight_gradient_scratch,
     direct_weight_gradient,
     "accumulate_bias_gradient_cpu, pad_image_cpu + conv_weight_gradient_direct_cpu (one input channel: "
     "conv3x3_single_channel_weight_gradient_cpu)"},
    {A::Winograd2, D::Forward, winograd_unsupported<2>, winograd_forward_scratch<2>, winograd_forward<2>,
     "winograd_transform_filter + conv_winograd_cpu"},
    {A::Winograd2, D::InputGradient, winograd_unsupported<2>, winograd_input_gradient_scratch<2>,
     winograd_input_gradient<2>, "winograd_transform_filter (flipped) + conv_winograd_cpu"},
    {A::Winograd2, D::WeightGradient, winograd_unsupported<2>, winograd_weight_gradient_scratch<2>,
     winograd_weight_gradient<2>, "accumulate_bias_gradient_cpu, conv_winograd_weight_gradient_cpu"},
    {A::Winograd4, D::Forward, winograd_unsupported<4>, winograd_forward_scratch<4>, winograd_forward<4>,
     "winograd_transform_filter + conv_winograd_cpu"},
    {A::Winograd4, D::InputGradient, winograd_unsupported<4>, winograd_input_gradient_scratch<4>,
     winograd_input_gradient<4>, "winograd_transform_filter (flipped) + conv_winograd_cpu"},
    {A::Winograd4, D::WeightGradient, winograd_unsupported<4>, winograd_weight_gradient_scratch<4>,
     winograd_weight_gradient<4>, "accumulate_bias_gradient_cpu, conv_winograd_weight_gradient_cpu"},
};

// The old contents are not needed: the old buffer is freed before the larger one is allocated,
// so growing never holds both (resize would copy, the peak being old + new).
float* grow(std::vector<float>& scratch, int64_t count) {
  if (static_cast<int64_t>(scratch.size()) < count) {
    std::vector<float>().swap(scratch);
    scratch.resize(static_cast<size_t>(count));
  }
  return scratch.data();
}

}  // namespace

const ConvCpuKernel& conv_cpu_kernel(ConvAlgorithm algorithm, ConvDirection direction) {
  for (const ConvCpuKernel& kernel : kKernels)
    if (kernel.algorithm == algorithm && kernel.direction == direction) return kernel;
  throw Error(
      std::string("no CPU convolution kernel for '") + conv_algorithm_name(algorithm) + "' " +
      conv_direction_name(direction) +
      (algorithm == ConvAlgorithm::Auto || algorithm == ConvAlgorithm::Fast ? " (a choice: resolve it first)" : ""));
}

std::string conv_algorithm_unsupported_reason(ConvAlgorithm algorithm, ConvDirection direction,
                                              const Conv2dGeometry& geometry) {
  if (algorithm == ConvAlgorithm::Auto) return "auto is not a concrete algorithm";
  if (algorithm == ConvAlgorithm::Fast) return "fast is a rule, not a concrete algorithm";
  return conv_cpu_kernel(algorithm, direction).unsupported(geometry);
}

namespace {

// bf16 (portable path): the operands the direction multiplies, rounded to bfloat16 values kept
// as floats (round_to_bf16_cpu), in this order at the head of the scratch. Forward: input (N,H,W,C)
// and, without a prepared filter, weight (K,R,S,C); input-gradient: output gradient (N,H,W,K) and
// weight; weight-gradient: output gradient and input. The bias stays fp32.
int64_t bf16_operand_floats(const Conv2dGeometry& g, ConvDirection direction, bool filter_prepared) {
  const int64_t weight = g.K * taps(g) * g.C, input = g.pixels() * g.C, output = g.pixels() * g.K;
  switch (direction) {
    case ConvDirection::Forward: return input + (filter_prepared ? 0 : weight);
    case ConvDirection::InputGradient: return output + weight;
    case ConvDirection::WeightGradient: return output + input;
  }
  return 0;
}

// A rounded copy of `values` (count) taken from the scratch.
const float* rounded_copy(const float* values, int64_t count, ConvScratch& scratch) {
  float* rounded = scratch.take(count);
  round_to_bf16_cpu(rounded, values, count);
  return rounded;
}

}  // namespace

void conv2d_run_cpu(ConvAlgorithm algorithm, ConvDirection direction, const ConvCpuOperands& operands,
                    const Conv2dGeometry& geometry, std::vector<float>& scratch, Precision precision) {
  const std::string reason = conv_algorithm_unsupported_reason(algorithm, direction, geometry);
  if (!reason.empty())
    throw Error(std::string("Conv2d ") + conv_direction_name(direction) + " of " + describe_geometry(geometry) +
                ": algorithm '" + conv_algorithm_name(algorithm) + "' cannot run it: " + reason);
  const ConvCpuKernel& kernel = conv_cpu_kernel(algorithm, direction);
  const bool prepared = operands.prepared != nullptr;
  const int64_t floats = conv2d_cpu_scratch_floats(geometry, direction, algorithm, precision, prepared);
  ConvScratch pieces(grow(scratch, floats), floats);
  if (precision == Precision::Fp32) {
    kernel.run(operands, geometry, pieces);
    return;
  }
  // bf16: the row computes on bfloat16-valued operands; its products are exact in fp32 and it
  // accumulates in fp32, as a bf16 instruction with an fp32 accumulator does.
  ConvCpuOperands rounded = operands;
  const int64_t input = geometry.pixels() * geometry.C, output = geometry.pixels() * geometry.K;
  const int64_t weight = geometry.K * taps(geometry) * geometry.C;
  if (direction == ConvDirection::Forward) {
    rounded.input = rounded_copy(operands.input, input, pieces);
    if (!prepared) rounded.weight = rounded_copy(operands.weight, weight, pieces);
  } else {
    rounded.output_gradient = rounded_copy(operands.output_gradient, output, pieces);
    if (direction == ConvDirection::InputGradient)
      rounded.weight = rounded_copy(operands.weight, weight, pieces);
    else
      rounded.input = rounded_copy(operands.input, input, pieces);
  }
  kernel.run(rounded, geometry, pieces);
}

void conv2d_forward_cpu(float* output, const float* input, const float* weight, const float* bias,
                        const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch,
                        const float* prepared, Precision precision) {
  ConvCpuOperands operands;
  operands.output = output;
  operands.input = input;
  operands.weight = weight;
  operands.bias = bias;
  operands.prepared = prepared;
  conv2d_run_cpu(algorithm, ConvDirection::Forward, operands, geometry, scratch, precision);
}

void conv2d_input_gradient_cpu(float* input_gradient, const float* output_gradient, const float* weight,
                               const Conv2dGeometry& geometry, ConvAlgorithm algorithm, std::vector<float>& scratch,
                               Precision precision) {
  ConvCpuOperands operands;
  operands.input_gradient = input_gradient;
  operands.output_gradient = output_gradient;
  operands.weight = weight;
  conv2d_run_cpu(algorithm, ConvDirection::InputGradient, operands, geometry, scratch, precision);
}

void conv2d_weight_gradient_cpu(float* weight_gradient, float* bias_gradient, const float* output_gradient,
                                const float* input, const Conv2dGeometry& geometry, ConvAlgorithm algorithm,
                                std::vector<float>& scratch, Precision precision) {
  ConvCpuOperands operands;
  operands.weight_gradient = weight_gradient;
  operands.bias_gradient = bias_gradient;
  operands.output_gradient = output_gradient;
  operands.input = input;
  conv2d_run_cpu(algorithm, ConvDirection::WeightGradient, operands, geometry, scratch, precision);
}

int64_t conv2d_prepared_filter_floats(const Conv2dGeometry& geometry, ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::Direct: return direct_filter_floats(geometry);
    case ConvAlgorithm::Winograd2: return winograd_filter_floats(2, geometry.C, geometry.K);
    case ConvAlgorithm::Winograd4: return winograd_filter_floats(4, geometry.C, geometry.K);
    default: return 0;
  }
}

void conv2d_prepare_filter_cpu(float* prepared, const float* weight, const Conv2dGeometry& geometry,
                               ConvAlgorithm algorithm, Precision precision) {
  const std::string reason = conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, geometry);
  if (!reason.empty())
    throw Error("Conv2d forward of " + describe_geometry(geometry) + ": algorithm '" + conv_algorithm_name(algorithm) +
                "' cannot run it: " + reason);
  if (conv2d_prepared_filter_floats(geometry, algorithm) == 0) return;
  std::vector<float> rounded;  // bf16: the weight (K,R,S,C) rounded first, as the run would
  if (precision == Precision::Bf16) {
    rounded.resize(static_cast<size_t>(geometry.K * taps(geometry) * geometry.C));
    round_to_bf16_cpu(rounded.data(), weight, static_cast<int64_t>(rounded.size()));
    weight = rounded.data();
  }
  if (algorithm == ConvAlgorithm::Direct)
    pack_direct_filter(prepared, weight, geometry.K, geometry.C, geometry.kernel_size, false);
  else
    winograd_transform_filter(prepared, weight, geometry.K, geometry.C, algorithm == ConvAlgorithm::Winograd2 ? 2 : 4,
                              false);
}

int64_t conv2d_cpu_scratch_floats(const Conv2dGeometry& geometry, ConvDirection direction, ConvAlgorithm algorithm,
                                  Precision precision, bool filter_prepared) {
  const int64_t row = conv_cpu_kernel(algorithm, direction).scratch_floats(geometry, filter_prepared);
  return row + (precision == Precision::Bf16 ? bf16_operand_floats(geometry, direction, filter_prepared) : 0);
}

}  // namespace pneumo
