#include "kernels/cpu/conv3x3_single_channel.h"

#include <algorithm>
#include <vector>

#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PNEUMO_SINGLE_CHANNEL_AVX512 1
#endif

namespace pneumo {

bool conv3x3_single_channel_supported(int64_t K) {
#ifdef PNEUMO_SINGLE_CHANNEL_AVX512
  return cpu_isa() == CpuIsa::Avx512 && (K == 16 || K == 32);
#else
  (void)K;
  return false;
#endif
}

namespace {

// rows (3, W+2) = image rows h-1, h, h+1 of image n with a zero border (zero rows outside).
void padded_rows(float* rows, const float* image, int64_t n, int64_t h, int64_t H, int64_t W) {
  for (int64_t i = 0; i < 3; ++i) {
    float* row = rows + i * (W + 2);
    const int64_t source = h + i - 1;
    row[0] = row[W + 1] = 0.0f;
    if (source < 0 || source >= H)
      std::fill(row + 1, row + W + 1, 0.0f);
    else
      std::copy(image + (n * H + source) * W, image + (n * H + source + 1) * W, row + 1);
  }
}

#ifdef PNEUMO_SINGLE_CHANNEL_AVX512
// V = K/16 vectors per pixel.
template <int V>
__attribute__((target("avx512f"))) void forward_rows(float* output, const float* image, const float* weight,
                                                     const float* bias, int64_t H, int64_t W, int64_t begin,
                                                     int64_t end) {
  constexpr int K = 16 * V;
  // taps[t][v] = weight (K,3,3,1)[16v + lane, t]: the 9 tap vectors, kept in registers.
  alignas(64) float transposed[9][K];
  for (int k = 0; k < K; ++k)
    for (int t = 0; t < 9; ++t) transposed[t][k] = weight[k * 9 + t];
  __m512 taps[9][V], start[V];
  for (int t = 0; t < 9; ++t)
    for (int v = 0; v < V; ++v) taps[t][v] = _mm512_load_ps(&transposed[t][16 * v]);
  for (int v = 0; v < V; ++v) start[v] = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
  std::vector<float> rows(static_cast<size_t>(3 * (W + 2)));  // (3, W+2)
  for (int64_t row = begin; row < end; ++row) {
    padded_rows(rows.data(), image, row / H, row % H, H, W);
    float* out = output + row * W * K;  // (W, K)
    for (int64_t w = 0; w < W; ++w) {
      __m512 sum[V];
      for (int v = 0; v < V; ++v) sum[v] = start[v];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          const __m512 value = _mm512_set1_ps(rows[i * (W + 2) + w + j]);
          for (int v = 0; v < V; ++v) sum[v] = _mm512_fmadd_ps(value, taps[i * 3 + j][v], sum[v]);
        }
      for (int v = 0; v < V; ++v) _mm512_storeu_ps(out + w * K + 16 * v, sum[v]);
    }
  }
}

// partial (9, K) = sum over rows [begin, end) (overwrites partial).
template <int V>
__attribute__((target("avx512f"))) void weight_gradient_rows(float* partial, const float* output_gradient,
                                                             const float* image, int64_t H, int64_t W, int64_t begin,
                                                             int64_t end) {
  constexpr int K = 16 * V;
  __m512 sum[9][V];
  for (int t = 0; t < 9; ++t)
    for (int v = 0; v < V; ++v) sum[t][v] = _mm512_setzero_ps();
  std::vector<float> rows(static_cast<size_t>(3 * (W + 2)));  // (3, W+2)
  for (int64_t row = begin; row < end; ++row) {
    padded_rows(rows.data(), image, row / H, row % H, H, W);
    const float* dy = output_gradient + row * W * K;  // (W, K)
    for (int64_t w = 0; w < W; ++w) {
      __m512 gradient[V];
      for (int v = 0; v < V; ++v) gradient[v] = _mm512_loadu_ps(dy + w * K + 16 * v);
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          const __m512 value = _mm512_set1_ps(rows[i * (W + 2) + w + j]);
          for (int v = 0; v < V; ++v) sum[i * 3 + j][v] = _mm512_fmadd_ps(value, gradient[v], sum[i * 3 + j][v]);
        }
    }
  }
  for (int t = 0; t < 9; ++t)
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(partial + t * K + 16 * v, sum[t][v]);
}
#endif

}  // namespace

void conv3x3_single_channel_forward_cpu(float* output, const float* image, const float* weight, const float* bias,
                                        int64_t N, int64_t H, int64_t W, int64_t K) {
#ifdef PNEUMO_SINGLE_CHANNEL_AVX512
  parallel_for(N * H, 4, [&](int64_t begin, int64_t end) {
    if (K == 16)
      forward_rows<1>(output, image, weight, bias, H, W, begin, end);
    else
      forward_rows<2>(output, image, weight, bias, H, W, begin, end);
  });
#else
  (void)output, (void)image, (void)weight, (void)bias, (void)N, (void)H, (void)W, (void)K;
#endif
}

void conv3x3_single_channel_weight_gradient_cpu(float* weight_gradient, const float* output_gradient,
                                                const float* image, int64_t N, int64_t H, int64_t W, int64_t K) {
#ifdef PNEUMO_SINGLE_CHANNEL_AVX512
  const int64_t rows = N * H, parts = std::min<int64_t>(cpu_thread_count(), rows);
  std::vector<float> partials(static_cast<size_t>(parts * 9 * K));  // (parts, 9, K)
  parallel_for(parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t part = begin; part < end; ++part) {
      const int64_t first = rows * part / parts, last = rows * (part + 1) / parts;
      float* partial = partials.data() + part * 9 * K;
      if (K == 16)
        weight_gradient_rows<1>(partial, output_gradient, image, H, W, first, last);
      else
        weight_gradient_rows<2>(partial, output_gradient, image, H, W, first, last);
    }
  });
  for (int64_t k = 0; k < K; ++k)
    for (int64_t t = 0; t < 9; ++t) {
      float sum = 0.0f;
      for (int64_t part = 0; part < parts; ++part) sum += partials[(part * 9 + t) * K + k];
      weight_gradient[k * 9 + t] += sum;
    }
#else
  (void)weight_gradient, (void)output_gradient, (void)image, (void)N, (void)H, (void)W, (void)K;
#endif
}

}  // namespace pneumo
