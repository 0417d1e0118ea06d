#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <vector>

#include "engine/cpu_threads.h"

#ifdef PNEUMO_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace pneumo {

#ifdef PNEUMO_HAVE_OPENBLAS
void cpu_sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
              transpose_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
              static_cast<blasint>(N), static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda),
              B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}
#else
// Built-in fallback for machines without OpenBLAS (e.g. a GPU box without Debian packages):
// rows of C split across threads, B packed row-major once so the inner loop is contiguous.
void cpu_sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc) {
  std::vector<float> packed_b(static_cast<size_t>(K * N));  // (K,N)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      packed_b[k * N + n] = transpose_b ? B[n * ldb + k] : B[k * ldb + n];
  parallel_for(M, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(N));
    for (int64_t m = begin; m < end; ++m) {
      std::fill(row.begin(), row.end(), 0.0f);
      for (int64_t k = 0; k < K; ++k) {
        float a = transpose_a ? A[k * lda + m] : A[m * lda + k];
        if (a == 0.0f) continue;
        const float* b_row = &packed_b[k * N];
        for (int64_t n = 0; n < N; ++n) row[n] += a * b_row[n];
      }
      float* c_row = C + m * ldc;
      for (int64_t n = 0; n < N; ++n)
        c_row[n] = alpha * row[n] + (beta == 0.0f ? 0.0f : beta * c_row[n]);
    }
  });
}
#endif

}  // namespace pneumo
