#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <vector>

#include "engine/cpu_threads.h"

#ifdef PNEUMO_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace pneumo {

#ifdef PNEUMO_HAVE_OPENBLAS
// OpenBLAS runs single-threaded (cpu_threads.cpp sets it); the engine's own pool splits C into
// one block of rows (or of columns, when C has few rows) per thread, each a single-threaded
// cblas_sgemm. So the process has one set of worker threads: OpenBLAS's own workers spin
// (sched_yield) for a while after each call and took a core from the direct kernels that ran
// next.
void cpu_sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  auto block = [&](int64_t row, int64_t rows, int64_t column, int64_t columns) {
    // A rows [row, row+rows) are A's rows, or its columns when transposed; likewise B.
    const float* a = transpose_a ? A + row : A + row * lda;
    const float* b = transpose_b ? B + column * ldb : B + column;
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(rows), static_cast<blasint>(columns), static_cast<blasint>(K), alpha, a,
                static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, C + row * ldc + column,
                static_cast<blasint>(ldc));
  };
  constexpr int64_t kMinimumBlock = 64;  // rows or columns per thread worth a thread
  if (M >= N) {
    parallel_for(M, kMinimumBlock, [&](int64_t begin, int64_t end) { block(begin, end - begin, 0, N); });
  } else {
    parallel_for(N, kMinimumBlock, [&](int64_t begin, int64_t end) { block(0, M, begin, end - begin); });
  }
}
#else
// Built-in fallback for machines without OpenBLAS (e.g. a GPU box without Debian packages):
// rows of C split across threads, B packed row-major once so the inner loop is contiguous.
void cpu_sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  std::vector<float> packed_b(static_cast<size_t>(K * N));  // (K,N)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) packed_b[k * N + n] = transpose_b ? B[n * ldb + k] : B[k * ldb + n];
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
      for (int64_t n = 0; n < N; ++n) c_row[n] = alpha * row[n] + (beta == 0.0f ? 0.0f : beta * c_row[n]);
    }
  });
}
#endif

}  // namespace pneumo
