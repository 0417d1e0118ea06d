// Single-precision GEMM for the CPU back end: C = alpha * op(A) * op(B) + beta * C, row-major.
// Uses OpenBLAS when the build found it, otherwise a blocked, threaded built-in kernel.
#pragma once
#include <cstdint>

namespace pneumo {

// A: (M,K) or (K,M) if transpose_a; B: (K,N) or (N,K) if transpose_b; C: (M,N). Leading
// dimensions are the row strides of the matrices as stored.
void cpu_sgemm(bool transpose_a, bool transpose_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace pneumo
