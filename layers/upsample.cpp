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

void Upsample::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  upsample_forward_cpu(output.data(), input.data(), input.N(), input.H(), input.W(), input.C(), factor_);
}

void Upsample::backward_cpu(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                            const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  upsample_backward_cpu(input_gradients[0]->data(), output_gradient.data(), input.N(), input.H(), input.W(), input.C(),
                        factor_);
}

// One input row (n, h) at a time: build output row h*factor, then copy it to the factor-1 rows
// below (the same values).
void upsample_forward_cpu(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C,
                          int64_t factor) {
  const int64_t output_row = W * factor * C;  // floats in one (W*factor, C) output row
  parallel_for(N * H, kInputRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const float* in = input + row * W * C;            // (W,C)
      float* out = output + row * factor * output_row;  // (factor, W*factor, C)
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
void upsample_backward_cpu(float* input_gradient, const float* output_gradient, int64_t N, int64_t H, int64_t W,
                           int64_t C, int64_t factor) {
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
            for (int64_t k = 0; k < C; ++k) sum[w * C + k] += dy[i * output_row + (w * factor + j) * C + k];
      float* dx = input_gradient + row * W * C;  // (W,C)
      for (int64_t index = 0; index < W * C; ++index) dx[index] += sum[index];
    }
  });
}

LayerFunctions Upsample::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {"Upsample::forward" + b + " -> upsample_forward" + b + " -> upsample_source_index (kernels/resample_math.h)",
          "Upsample::backward" + b + " -> upsample_backward" + b, "layers/upsample.md"};
}

}  // namespace pneumo
