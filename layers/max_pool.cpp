#include "layers/max_pool.h"

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "kernels/resample_math.h"

namespace pneumo {

namespace {

constexpr int64_t kOutputRowsPerChunk = 8;  // smallest parallel_for chunk of output rows

// One output column: the four window positions' gradients (C) each += their routed share of
// dy (C). The four targets are disjoint runs of C floats (restrict lets GCC vectorize).
void route_window_gradient(float* __restrict top_left_gradient, float* __restrict top_right_gradient,
                           float* __restrict bottom_left_gradient, float* __restrict bottom_right_gradient,
                           const float* top_left, const float* top_right, const float* bottom_left,
                           const float* bottom_right, const float* dy, int64_t C) {
  for (int64_t k = 0; k < C; ++k) {
    const WindowGradient shares =
        max_pool_route_gradient(top_left[k], top_right[k], bottom_left[k], bottom_right[k], dy[k]);
    top_left_gradient[k] += shares.top_left;
    top_right_gradient[k] += shares.top_right;
    bottom_left_gradient[k] += shares.bottom_left;
    bottom_right_gradient[k] += shares.bottom_right;
  }
}

}  // namespace

Shape MaxPool2d::output_shape(const std::vector<Shape>& inputs) const {
  require_input_count(*this, inputs);
  const Shape& input = inputs[0];
  require_nhwc(input, "MaxPool2d input");
  if (input[1] < 2 || input[2] < 2)
    throw Error("MaxPool2d: input height and width must be at least 2 for a 2x2 window, got " + shape_string(input));
  return {input[0], input[1] / 2, input[2] / 2, input[3]};
}

int64_t MaxPool2d::forward_flops(const std::vector<Shape>& inputs) const {
  return 3 * shape_count(output_shape(inputs));
}

void MaxPool2d::forward_cpu(Context&, const std::vector<const Tensor*>& inputs, Tensor& output, bool) {
  const Tensor& input = *inputs[0];
  max_pool_forward_cpu(output.data(), input.data(), input.N(), input.H(), input.W(), input.C());
}

void MaxPool2d::backward_cpu(Context&, const std::vector<const Tensor*>& inputs, const Tensor&,
                             const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  if (!input_gradients[0]) return;
  const Tensor& input = *inputs[0];
  max_pool_backward_cpu(input_gradients[0]->data(), input.data(), output_gradient.data(), input.N(), input.H(),
                        input.W(), input.C());
}

// Both loops walk output rows (n, oh); for each output column the four window rows are
// contiguous runs of C channels, so the channel loop vectorizes.
void max_pool_forward_cpu(float* output, const float* input, int64_t N, int64_t H, int64_t W, int64_t C) {
  const int64_t OH = H / 2, OW = W / 2;
  parallel_for(N * OH, kOutputRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t n = row / OH, oh = row % OH;
      const float* top = input + ((n * H + 2 * oh) * W) * C;  // (W,C) input row 2*oh
      const float* bottom = top + W * C;                      // (W,C) input row 2*oh+1
      float* out = output + row * OW * C;                     // (OW,C)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float* a = top + 2 * ow * C;
        const float* b = a + C;
        const float* c = bottom + 2 * ow * C;
        const float* d = c + C;
        float* o = out + ow * C;
        for (int64_t k = 0; k < C; ++k) o[k] = max_pool_max(a[k], b[k], c[k], d[k]);
      }
    }
  });
}

void max_pool_backward_cpu(float* input_gradient, const float* input, const float* output_gradient, int64_t N,
                           int64_t H, int64_t W, int64_t C) {
  const int64_t OH = H / 2, OW = W / 2;
  parallel_for(N * OH, kOutputRowsPerChunk, [=](int64_t row_begin, int64_t row_end) {
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int64_t n = row / OH, oh = row % OH;
      const int64_t top_offset = ((n * H + 2 * oh) * W) * C;
      const float* gradient_row = output_gradient + row * OW * C;  // (OW,C)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t a = top_offset + 2 * ow * C, b = a + C, c = a + W * C, d = c + C;
        route_window_gradient(input_gradient + a, input_gradient + b, input_gradient + c, input_gradient + d, input + a,
                              input + b, input + c, input + d, gradient_row + ow * C, C);
      }
    }
  });
}

LayerFunctions MaxPool2d::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {"MaxPool2d::forward" + b + " -> max_pool_forward" + b + " -> max_pool_max (kernels/resample_math.h)",
          "MaxPool2d::backward" + b + " -> max_pool_backward" + b + " -> max_pool_route_gradient",
          "layers/max_pool.md"};
}

}  // namespace pneumo
