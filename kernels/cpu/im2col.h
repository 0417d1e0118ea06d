// im2col for stride-1 'same' convolutions on NHWC activations (CPU): copies the R x R
// neighbourhood of every pixel of a range of image rows into one row of a column matrix, so the
// convolution becomes one GEMM. Data flows image (N,H,W,C) -> columns (rows*W, R*R*C); the
// columns OVERWRITE their buffer. Out-of-image taps are zero (the zero padding).
#pragma once
#include <cstdint>

namespace pneumo {

// `first_row`/`row_count` index the N*H image rows of `image` taken as one stack (row g is row
// g % H of image g / H), so a chunk may span images. columns: (row_count*W, R*R*C) with each row
// laid out (kh, kw, c), matching a (K,R,S,C) weight read as (K, R*S*C). kernel_size R is odd;
// padding R/2. Threaded over rows with parallel_for (engine/cpu_threads.h).
void im2col_same_cpu(float* columns, const float* image, int64_t H, int64_t W, int64_t C, int kernel_size,
                     int64_t first_row, int64_t row_count);

}  // namespace pneumo
