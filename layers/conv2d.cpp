#include "layers/conv2d.h"

#include <algorithm>
#include <cstring>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv3x3_single_channel.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"


namespace pneumo {

namespace {

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

float* grow(std::vector<float>& scratch, int64_t count) {
  if (static_cast<int64_t>(scratch.size()) < count) scratch.resize(static_cast<size_t>(count));
  return scratch.data();
}

// The bias loops are memory-bound and small next to the convolution; they stay single-threaded.

// output (P,K) += bias (K) on every pixel row.
void add_bias_cpu(float* output, const float* bias, int64_t pixels, int64_t K) {
  for (int64_t p = 0; p < pixels; ++p) {
    float* row = output + p * K;
    for (int64_t k = 0; k < K; ++k) row[k] += bias[k];
  }
}

// bias_gradient (K) += sum over pixel rows of output_gradient (P,K), summed in double.
void accumulate_bias_gradient_cpu(float* bias_gradient, const float* output_gradient,
                                  int64_t pixels, int64_t K) {
  std::vector<double> sum(static_cast<size_t>(K), 0.0);  // (K)
  for (int64_t p = 0; p < pixels; ++p) {
    const float* row = output_gradient + p * K;
    for (int64_t k = 0; k < K; ++k) sum[k] += row[k];
  }
  for (int64_t k = 0; k < K; ++k) bias_gradient[k] += static_cast<float>(sum[k]);
}

// The direct AVX-512 kernels (kernels/cpu/conv_direct.h) beat im2col + OpenBLAS up to 256
// channels (64 channels @128x128, batch 8: forward 49 vs 99 ms, weight gradient ~1.5x); at 512
// channels @16x16 OpenBLAS's GEMM is faster (3x3 forward 54 vs 62 ms, 1x1 256->512 forward 12
// vs 14 ms, measured again after the kernels' contiguous filter slices), so 512 keeps im2col.
constexpr int64_t kDirectMaxChannels = 256;

bool use_direct_3x3(const Conv2dGeometry& geometry) {
  return geometry.kernel_size == 3 && conv_direct_supported(geometry.K) &&
         conv_direct_supported(geometry.C) &&
         conv_weight_gradient_direct_supported(geometry.C) &&
         std::max(geometry.C, geometry.K) <= kDirectMaxChannels;
}

// 1x1: the direct kernels for the forward pass, the input gradient and the weight gradient, same
// channel limit (32->64 @256x256 forward: 25 vs 47 ms, backward 39-44 vs 61-64 ms; 256->512
// @32x32: 16 vs 13 ms, so GEMM there).
bool use_direct_1x1(const Conv2dGeometry& geometry) {
  return geometry.kernel_size == 1 && conv_direct_supported(geometry.K) &&
         conv_direct_supported(geometry.C) &&
         std::max(geometry.C, geometry.K) <= kDirectMaxChannels;
}

// flipped (C,R,S,K)[c,i,j,k] = weight (K,R,S,C)[k,R-1-i,S-1-j,c], transposed through 16x16
// (k,c) tiles so reads and writes are both contiguous runs; threaded over c blocks.
void flip_filter(float* flipped, const float* weight, int64_t K, int64_t C, int64_t R) {
  constexpr int64_t kBlock = 16;
  const int64_t taps = R * R;
  parallel_for((C + kBlock - 1) / kBlock, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c_block = begin; c_block < end; ++c_block) {
      const int64_t c_begin = c_block * kBlock, c_end = std::min(C, c_begin + kBlock);
      for (int64_t k_begin = 0; k_begin < K; k_begin += kBlock) {
        const int64_t k_end = std::min(K, k_begin + kBlock);
        for (int64_t tap = 0; tap < taps; ++tap) {
          float tile[kBlock][kBlock];  // (k, c): read along c, written along k
          for (int64_t k = k_begin; k < k_end; ++k) {
            const float* source = weight + (k * taps + (taps - 1 - tap)) * C;  // (C)
            for (int64_t c = c_begin; c < c_end; ++c) tile[k - k_begin][c - c_begin] = source[c];
          }
          for (int64_t c = c_begin; c < c_end; ++c) {
            float* destination = flipped + (c * taps + tap) * K;  // (K)
            for (int64_t k = k_begin; k < k_end; ++k)
              destination[k] = tile[k - k_begin][c - c_begin];
          }
        }
      }
    }
  });
}

}  // namespace

void conv2d_forward_cpu(float* output, const float* input, const float* weight, const float* bias,
                        const Conv2dGeometry& geometry, std::vector<float>& scratch) {
  const int64_t W = geometry.W, C = geometry.C, K = geometry.K, R = geometry.kernel_size;
  if (R == 3 && C == 1 && conv3x3_single_channel_supported(K)) {
    // One input channel (the image): direct kernel, adds the bias itself.
    conv3x3_single_channel_forward_cpu(output, input, weight, bias, geometry.N, geometry.H, W, K);
    return;
  }
  if (R == 3 && use_direct_3x3(geometry)) {
    // Direct AVX-512 kernel over the zero-padded input; it adds the bias itself.
    const int64_t padded_count = padded_image_count(geometry.N, geometry.H, W, C);
    float* padded = grow(scratch, padded_count + 9 * C * K);  // (N,H+2,W+2,C+16)
    float* packed = padded + padded_count;                    // (K*3*3*C), direct layout
    pad_image_cpu(padded, input, geometry.N, geometry.H, W, C);
    pack_direct_filter(packed, weight, K, C, 3, false);
    conv_direct_cpu(output, padded, packed, bias, geometry.N, geometry.H, W, C, K, 3, false);
    return;
  }
  if (use_direct_1x1(geometry)) {
    float* packed = grow(scratch, C * K);  // (K*C), direct layout
    pack_direct_filter(packed, weight, K, C, 1, false);
    conv_direct_cpu(output, input, packed, bias, geometry.N, geometry.H, W, C, K, 1, false);
    return;
  }
  if (R == 1) {
    // output (P,K) = input (P,C) x weight (K,C)^T
    cpu_sgemm(false, true, geometry.pixels(), K, C, 1.0f, input, C, weight, C, 0.0f, output, K);
  } else {
    const int64_t column_width = R * R * C;  // weight read as (K, R*R*C)
    const int64_t total_rows = geometry.N * geometry.H;
    const int64_t chunk_rows = rows_per_chunk(geometry, column_width);
    float* columns = grow(scratch, chunk_rows * W * column_width);  // (chunk_rows*W, R*R*C)
    for (int64_t first = 0; first < total_rows; first += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, total_rows - first);
      im2col_same_cpu(columns, input, geometry.H, W, C, R, first, rows);
      // output rows of the chunk (rows*W, K) = columns (rows*W, R*R*C) x weight (K, R*R*C)^T
      cpu_sgemm(false, true, rows * W, K, column_width, 1.0f, columns, column_width, weight,
                column_width, 0.0f, output + first * W * K, K);
    }
  }
  if (bias) add_bias_cpu(output, bias, geometry.pixels(), K);
}

void conv2d_backward_cpu(float* input_gradient, float* weight_gradient, float* bias_gradient,
                         const float* output_gradient, const float* input, const float* weight,
                         const Conv2dGeometry& geometry, std::vector<float>& scratch) {
  const int64_t W = geometry.W, C = geometry.C, K = geometry.K, R = geometry.kernel_size;
  const int64_t pixels = geometry.pixels();
  if (bias_gradient) accumulate_bias_gradient_cpu(bias_gradient, output_gradient, pixels, K);
  if (R == 1) {
    // input_gradient (P,C) += output_gradient (P,K) x weight (K,C): direct kernel (a 1x1
    // convolution of d output with the transposed weight) or one GEMM.
    if (input_gradient && use_direct_1x1(geometry)) {
      float* packed = grow(scratch, C * K);  // (C*K), direct layout
      pack_direct_filter(packed, weight, K, C, 1, true);
      conv_direct_cpu(input_gradient, output_gradient, packed, nullptr, geometry.N, geometry.H, W,
                      K, C, 1, true);
    } else if (input_gradient)
      cpu_sgemm(false, false, pixels, C, K, 1.0f, output_gradient, K, weight, C, 1.0f,
                input_gradient, C);
    // weight_gradient (K,C) += output_gradient (P,K)^T x input (P,C): a GEMM with a very long
    // inner dimension (all pixels), which the direct kernel runs ~3x faster than OpenBLAS.
    if (use_direct_1x1(geometry) && conv_weight_gradient_direct_supported(C)) {
      float* partials = grow(scratch, (cpu_thread_count() - 1) * K * C);  // (threads-1, K,C)
      conv_weight_gradient_direct_cpu(weight_gradient, input, output_gradient, geometry.N,
                                      geometry.H, W, C, K, 1, partials);
    } else {
      cpu_sgemm(true, false, K, C, pixels, 1.0f, output_gradient, K, input, C, 1.0f,
                weight_gradient, C);
    }
    return;
  }
  const int64_t total_rows = geometry.N * geometry.H;
  if (input_gradient && R == 3 && use_direct_3x3(geometry)) {
    // d input is the 'same' convolution of d output with the flipped, in/out-swapped filter
    // (see below), run by the direct kernel in accumulate mode.
    const int64_t padded_count = padded_image_count(geometry.N, geometry.H, W, K);
    float* padded = grow(scratch, padded_count + 9 * C * K);  // (N,H+2,W+2,K+16)
    float* packed = padded + padded_count;                    // (C*3*3*K), direct layout
    pad_image_cpu(padded, output_gradient, geometry.N, geometry.H, W, K);
    pack_direct_filter(packed, weight, K, C, 3, true);
    conv_direct_cpu(input_gradient, padded, packed, nullptr, geometry.N, geometry.H, W, K, C, 3,
                    true);
  } else if (input_gradient) {
    // d input is the 'same' convolution of d output with the spatially flipped, in/out-swapped
    // weight: flipped (C,R,S,K)[c,i,j,k] = weight (K,R,S,C)[k,R-1-i,S-1-j,c]. So it is im2col of
    // d output + one GEMM that accumulates straight into input_gradient (beta = 1), with no
    // col2im scatter.
    const int64_t column_width = R * R * K;
    const int64_t chunk_rows = rows_per_chunk(geometry, column_width);
    const int64_t column_count = chunk_rows * W * column_width;
    float* columns = grow(scratch, column_count + C * column_width);  // (chunk_rows*W, R*R*K)
    float* flipped = columns + column_count;                          // (C,R,S,K)
    flip_filter(flipped, weight, K, C, R);
    for (int64_t first = 0; first < total_rows; first += chunk_rows) {
      const int64_t rows = std::min(chunk_rows, total_rows - first);
      im2col_same_cpu(columns, output_gradient, geometry.H, W, K, R, first, rows);
      // input_gradient rows (rows*W, C) += columns (rows*W, R*R*K) x flipped (C, R*R*K)^T
      cpu_sgemm(false, true, rows * W, C, column_width, 1.0f, columns, column_width, flipped,
                column_width, 1.0f, input_gradient + first * W * C, C);
    }
  }
  if (R == 3 && C == 1 && conv3x3_single_channel_supported(K)) {
    conv3x3_single_channel_weight_gradient_cpu(weight_gradient, output_gradient, input,
                                               geometry.N, geometry.H, W, K);
    return;
  }
  if (R == 3 && use_direct_3x3(geometry)) {
    // Direct AVX-512 kernel over the zero-padded input, per-thread partial sums.
    const int64_t padded_count = padded_image_count(geometry.N, geometry.H, W, C);
    const int64_t partial_count = (cpu_thread_count() - 1) * K * 9 * C;
    float* padded = grow(scratch, padded_count + partial_count);  // (N,H+2,W+2,C+16)
    float* partials = padded + padded_count;                      // (threads-1, K,3,3,C)
    pad_image_cpu(padded, input, geometry.N, geometry.H, W, C);
    conv_weight_gradient_direct_cpu(weight_gradient, padded, output_gradient, geometry.N,
                                    geometry.H, W, C, K, 3, partials);
    return;
  }
  const int64_t column_width = R * R * C;
  const int64_t chunk_rows = rows_per_chunk(geometry, column_width);
  float* columns = grow(scratch, chunk_rows * W * column_width);  // (chunk_rows*W, R*R*C)
  for (int64_t first = 0; first < total_rows; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, total_rows - first);
    im2col_same_cpu(columns, input, geometry.H, W, C, R, first, rows);
    // weight_gradient (K, R*R*C) += output_gradient rows (rows*W, K)^T x columns (rows*W, R*R*C)
    cpu_sgemm(true, false, K, column_width, rows * W, 1.0f, output_gradient + first * W * K, K,
              columns, column_width, 1.0f, weight_gradient, column_width);
  }
}

int64_t conv2d_cpu_scratch_floats(const Conv2dGeometry& geometry, bool input_gradient) {
  const int64_t N = geometry.N, H = geometry.H, W = geometry.W, C = geometry.C, K = geometry.K;
  const int64_t R = geometry.kernel_size;
  int64_t floats = 0;
  const auto need = [&](int64_t count) { floats = std::max(floats, count); };
  const auto im2col_columns = [&](int64_t column_width) {
    return rows_per_chunk(geometry, column_width) * W * column_width;
  };
  // Forward (conv2d_forward_cpu).
  if (R == 3 && C == 1 && conv3x3_single_channel_supported(K)) {
  } else if (R == 3 && use_direct_3x3(geometry)) {
    need(padded_image_count(N, H, W, C) + 9 * C * K);
  } else if (use_direct_1x1(geometry)) {
    need(C * K);
  } else if (R != 1) {
    need(im2col_columns(R * R * C));
  }
  // Backward (conv2d_backward_cpu).
  if (R == 1) {
    if (input_gradient && use_direct_1x1(geometry)) need(C * K);
    if (use_direct_1x1(geometry) && conv_weight_gradient_direct_supported(C))
      need((cpu_thread_count() - 1) * K * C);
    return floats;
  }
  if (input_gradient && R == 3 && use_direct_3x3(geometry))
    need(padded_image_count(N, H, W, K) + 9 * C * K);
  else if (input_gradient)
    need(im2col_columns(R * R * K) + C * R * R * K);
  if (R == 3 && C == 1 && conv3x3_single_channel_supported(K)) return floats;
  if (R == 3 && use_direct_3x3(geometry))
    need(padded_image_count(N, H, W, C) + (cpu_thread_count() - 1) * K * 9 * C);
  else
    need(im2col_columns(R * R * C));
  return floats;
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, bool bias)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size),
      has_bias_(bias) {
  if (in_channels <= 0 || out_channels <= 0)
    throw Error("Conv2d: channel counts must be positive, got in_channels=" +
                std::to_string(in_channels) + " out_channels=" + std::to_string(out_channels));
  if (kernel_size != 1 && kernel_size != 3)
    throw Error("Conv2d: kernel_size must be 1 or 3, got " + std::to_string(kernel_size));
}

Conv2dGeometry Conv2d::geometry_for(const Shape& input) const {
  Conv2dGeometry geometry;
  geometry.N = input[0];
  geometry.H = input[1];
  geometry.W = input[2];
  geometry.C = input[3];
  geometry.K = out_channels_;
  geometry.kernel_size = kernel_size_;
  return geometry;
}

Shape Conv2d::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  require_nhwc(inputs[0], "Conv2d input");
  if (inputs[0][3] != in_channels_)
    throw Error("Conv2d: input " + shape_string(inputs[0]) + " has " + std::to_string(inputs[0][3]) +
                " channels, expected " + std::to_string(in_channels_));
  return {inputs[0][0], inputs[0][1], inputs[0][2], out_channels_};
}

int64_t Conv2d::forward_flops(const std::vector<Shape>& inputs) const {
  const Shape output = output_shape(inputs);
  const int64_t output_count = shape_count(output);
  const int64_t taps = int64_t{kernel_size_} * kernel_size_ * in_channels_;
  return 2 * output_count * taps + (has_bias_ ? output_count : 0);
}

std::vector<ParameterSpec> Conv2d::parameter_specs() const {
  const int64_t R = kernel_size_;
  // Keras glorot_uniform on a (kh,kw,in,out) kernel: fan_in = kh*kw*in, fan_out = kh*kw*out.
  std::vector<ParameterSpec> specs = {{"weight", {out_channels_, R, R, in_channels_},
                                       Initializer::GlorotUniform, true, R * R * in_channels_,
                                       R * R * out_channels_}};
  if (has_bias_) specs.push_back({"bias", {out_channels_}, Initializer::Zeros, true});
  return specs;
}

void Conv2d::bind_parameters(const ParameterStore& store, const std::string& prefix) {
  const ParameterEntry& weight = store.entry(prefix + ".weight");
  require_shape(weight.value, {out_channels_, kernel_size_, kernel_size_, in_channels_},
                "Conv2d weight");
  weight_ = weight.value;
  weight_gradient_ = weight.gradient;
  if (has_bias_) {
    const ParameterEntry& bias = store.entry(prefix + ".bias");
    require_shape(bias.value, {out_channels_}, "Conv2d bias");
    bias_ = bias.value;
    bias_gradient_ = bias.gradient;
  }
}

void Conv2d::set_allow_tf32(bool allow) { allow_tf32_ = allow; }

int64_t Conv2d::scratch_floats(const std::vector<Shape>& inputs, Device device,
                               bool input_gradient) const {
  if (device != Device::CPU) return 0;
  return conv2d_cpu_scratch_floats(geometry_for(inputs.at(0)), input_gradient);
}

std::vector<Layer::HeldTensor> Conv2d::held_tensors() const {
  std::vector<HeldTensor> held = {{&weight_, "weight"}, {&weight_gradient_, "weight gradient"}};
  if (has_bias_) {
    held.push_back({&bias_, "bias"});
    held.push_back({&bias_gradient_, "bias gradient"});
  }
  return held;
}

void Conv2d::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output,
                         bool) {
  const Tensor& input = *inputs[0];
  conv2d_forward_cpu(output.data(), input.data(), weight_.data(),
                     has_bias_ ? bias_.data() : nullptr, geometry_for(input.shape()), cpu_scratch_);
}

void Conv2d::backward_cpu(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                          const Tensor& output_gradient,
                          const std::vector<Tensor*>& input_gradients) {
  const Tensor& input = *inputs[0];
  conv2d_backward_cpu(input_gradients[0] ? input_gradients[0]->data() : nullptr,
                      weight_gradient_.data(), has_bias_ ? bias_gradient_.data() : nullptr,
                      output_gradient.data(), input.data(), weight_.data(),
                      geometry_for(input.shape()), cpu_scratch_);
}

}  // namespace pneumo
