#include "kernels/cpu/conv_reference.h"

#include "engine/cpu_threads.h"

namespace pneumo {

void conv_reference_forward_cpu(float* output, const float* input, const float* weight, const float* bias, int64_t N,
                                int64_t H, int64_t W, int64_t C, int64_t K, int R) {
  const int64_t pad = R / 2;
  parallel_for(N * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / H, h = row % H;
      for (int64_t w = 0; w < W; ++w)
        for (int64_t k = 0; k < K; ++k) {
          double sum = bias ? bias[k] : 0.0;
          for (int64_t i = 0; i < R; ++i)
            for (int64_t j = 0; j < R; ++j) {
              const int64_t y = h + i - pad, x = w + j - pad;
              if (y < 0 || y >= H || x < 0 || x >= W) continue;        // zero padding
              const float* pixel = input + ((n * H + y) * W + x) * C;  // (C)
              const float* taps = weight + ((k * R + i) * R + j) * C;  // (C)
              for (int64_t c = 0; c < C; ++c) sum += double{pixel[c]} * taps[c];
            }
          output[((n * H + h) * W + w) * K + k] = static_cast<float>(sum);
        }
    }
  });
}

void conv_reference_input_gradient_cpu(float* input_gradient, const float* output_gradient, const float* weight,
                                       int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int R) {
  const int64_t pad = R / 2;
  parallel_for(N * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / H, y = row % H;
      for (int64_t x = 0; x < W; ++x)
        for (int64_t c = 0; c < C; ++c) {
          double sum = 0.0;
          for (int64_t i = 0; i < R; ++i)
            for (int64_t j = 0; j < R; ++j) {
              // Output pixel (h, w) read input (y, x) through tap (i, j) when y = h + i - pad.
              const int64_t h = y - i + pad, w = x - j + pad;
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const float* gradient = output_gradient + ((n * H + h) * W + w) * K;  // (K)
              for (int64_t k = 0; k < K; ++k) sum += double{gradient[k]} * weight[((k * R + i) * R + j) * C + c];
            }
          input_gradient[((n * H + y) * W + x) * C + c] += static_cast<float>(sum);
        }
    }
  });
}

void conv_reference_weight_gradient_cpu(float* weight_gradient, float* bias_gradient, const float* output_gradient,
                                        const float* input, int64_t N, int64_t H, int64_t W, int64_t C, int64_t K,
                                        int R) {
  const int64_t pad = R / 2;
  parallel_for(K, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      if (bias_gradient) {
        double sum = 0.0;
        for (int64_t p = 0; p < N * H * W; ++p) sum += output_gradient[p * K + k];
        bias_gradient[k] += static_cast<float>(sum);
      }
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < R; ++j)
          for (int64_t c = 0; c < C; ++c) {
            double sum = 0.0;
            for (int64_t n = 0; n < N; ++n)
              for (int64_t h = 0; h < H; ++h)
                for (int64_t w = 0; w < W; ++w) {
                  const int64_t y = h + i - pad, x = w + j - pad;
                  if (y < 0 || y >= H || x < 0 || x >= W) continue;
                  sum += double{output_gradient[((n * H + h) * W + w) * K + k]} * input[((n * H + y) * W + x) * C + c];
                }
            weight_gradient[((k * R + i) * R + j) * C + c] += static_cast<float>(sum);
          }
    }
  });
}

}  // namespace pneumo
