#include "kernels/cpu/im2col.h"

#include <algorithm>
#include <cstring>

#include "engine/cpu_threads.h"

namespace pneumo {

void im2col_same_cpu(float* columns, const float* image, int64_t H, int64_t W, int64_t C, int kernel_size,
                     int64_t first_row, int64_t row_count) {
  const int64_t R = kernel_size, pad = kernel_size / 2;
  const int64_t column_width = R * R * C;  // one column row: (kh, kw, c)
  // Threaded over image rows on the engine's pool.
  parallel_for(row_count, 2, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t local_row = row_begin; local_row < row_end; ++local_row) {
      const int64_t global_row = first_row + local_row;
      const int64_t n = global_row / H, h = global_row % H;
      float* destination_row = columns + local_row * W * column_width;  // (W, R*R*C)
      for (int64_t kh = 0; kh < R; ++kh) {
        const int64_t source_h = h + kh - pad;
        const bool row_inside = source_h >= 0 && source_h < H;
        const float* source_row = image + ((n * H + source_h) * W) * C;  // (W,C) when inside
        for (int64_t w = 0; w < W; ++w) {
          float* destination = destination_row + w * column_width + kh * R * C;  // (R,C)
          if (!row_inside) {
            std::memset(destination, 0, sizeof(float) * R * C);
            continue;
          }
          // Taps kw = 0..R-1 read pixels w-pad..w+pad, contiguous in NHWC: one copy for the
          // pixels inside the image, zeros for the ones past either edge.
          const int64_t kw_begin = std::max<int64_t>(0, pad - w);
          const int64_t kw_end = std::min<int64_t>(R, W + pad - w);
          if (kw_begin > 0) std::memset(destination, 0, sizeof(float) * kw_begin * C);
          std::memcpy(destination + kw_begin * C, source_row + (w + kw_begin - pad) * C,
                      sizeof(float) * (kw_end - kw_begin) * C);
          if (kw_end < R) std::memset(destination + kw_end * C, 0, sizeof(float) * (R - kw_end) * C);
        }
      }
    }
  });
}

}  // namespace pneumo
