#include "layers/upsample.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/check.h"
#include "engine/cpu_threads.h"

namespace pneumo {

namespace {
constexpr int64_t kInputRowsPerChunk = 4;  // smallest parallel_for chunk of input rows
}

Upsample::Upsample(int factor) : factor_(factor) {
  if (factor < 1) throw Error("Upsample: factor must be at least 1, got " + std::to_string(factor));
}

Shape Upsample::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  const Shape& input = inputs[0];
  require_nhwc(input, "Upsample input");
  return {input[0], input[1] * factor_, input[2] * factor_, input[3]};
}

int64_t Upsample::forward_flops(const std::vector<Shape>& inputs) const {
  output_shape(inputs);
  return 0;
}

void Upsample::forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output,
                       bool training) {
  (void)training;
  PNEUMO_REQUIRE(inputs.size() == 1 && inputs[0], "Upsample::forward needs one input");
  const Tensor& input = *inputs[0];
  require_shape(output, output_shape({input.shape()}), "Upsample output");
  require_device(input, context.device(), "Upsample input");
  require_device(output, context.device(), "Upsample output");
  if (context.device() == Device::CPU) {
    upsample_forward_cpu(output.data(), input.data(), input.N(), input.H(), input.W(), input.C(),
                         factor_);
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  upsample_forward_cuda(output.data(), input.data(), input.N(), input.H(), input.W(), input.C(),
                        factor_);
#else
  throw_no_cuda_backend(kind());
#endif
}

void Upsample::backward(Context& context, const std::vector<const Tensor*>& inputs,
                        const Tensor& output, const Tensor& output_gradient,
                        const std::vector<Tensor*>& input_gradients) {
  (void)output;
  PNEUMO_REQUIRE(inputs.size() == 1 && inputs[0] && input_gradients.size() == 1,
                 "Upsample::backward needs one input and one input-gradient slot");
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  Tensor& input_gradient = *input_gradients[0];
  require_shape(output_gradient, output_shape({input.shape()}), "Upsample output gradient");
  require_shape(input_gradient, input.shape(), "Upsample input gradient");
  require_device(output_gradient, context.device(), "Upsample output gradient");
  require_device(input_gradient, context.device(), "Upsample input gradient");
  if (context.device() == Device::CPU) {
    upsample_backward_cpu(input_gradient.data(), output_gradient.data(), input.N(), input.H(),
                          input.W(), input.C(), factor_);
    return;
  }
#ifdef PNEUMO_HAVE_CUDA
  upsample_backward_cuda(input_gradient.data(), output_gradient.data(), input.N(), input.H(),
                         input.W(), input.C(), factor_);
#else
  throw_no_cuda_backend(kind());
#endif
}

// One input row (n, h) at a time: build output row h*factor, then copy it to the factor-1 rows
// below (the same values).
void upsample_forward_cpu(float* output, const float* input, int64_t N, int64_t H, int64_t W,
                          int64_t C, int64_t factor) {
  const int64_t output_row = W * factor * C;  // floats in one (W*factor, C) output row
  parallel_for(N * H, kInputRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const float* in = input + row * W * C;                // (W,C)
      float* out = output + row * factor * output_row;     // (factor, W*factor, C)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t j = 0; j < factor; ++j)
          for (int64_t k = 0; k < C; ++k) out[(w * factor + j) * C + k] = in[w * C + k];
      for (int64_t i = 1; i < factor; ++i)
        std::memcpy(out + i * output_row, out, static_cast<size_t>(output_row) * sizeof(float));
    }
  });
}

// One input row (n, h) at a time: sum its block over output rows i, then columns j, into a
// zeroed row buffer (the same order as the CUDA kernel), then add the buffer to the gradient.
void upsample_backward_cpu(float* input_gradient, const float* output_gradient, int64_t N,
                           int64_t H, int64_t W, int64_t C, int64_t factor) {
  const int64_t output_row = W * factor * C;
  parallel_for(N * H, kInputRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    std::vector<float> sums(static_cast<size_t>(W * C));  // (W,C)
    for (int64_t row = row_begin; row < row_end; ++row) {
      std::fill(sums.begin(), sums.end(), 0.0f);
      float* sum = sums.data();
      const float* dy = output_gradient + row * factor * output_row;  // (factor, W*factor, C)
      for (int64_t i = 0; i < factor; ++i)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t j = 0; j < factor; ++j)
            for (int64_t k = 0; k < C; ++k)
              sum[w * C + k] += dy[i * output_row + (w * factor + j) * C + k];
      float* dx = input_gradient + row * W * C;  // (W,C)
      for (int64_t index = 0; index < W * C; ++index) dx[index] += sum[index];
    }
  });
}

}  // namespace pneumo
