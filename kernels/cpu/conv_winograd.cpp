#include "kernels/cpu/conv_winograd.h"

#include <algorithm>
#include <cstring>

#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/gemm.h"

namespace pneumo {

namespace {

// The transform matrices (Lavin & Gray 2016; interpolation points 0, +-1 for F(2,3) and
// 0, +-1, +-2 for F(4,3), plus the point at infinity).
template <int m>
struct Matrices;

template <>
struct Matrices<2> {
  static constexpr int kAlpha = 4;
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

template <>
struct Matrices<4> {
  static constexpr int kAlpha = 6;
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                     {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                     {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr float AT[4][6] = {{1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, 0},
                                     {0, 1, 1, 4, 4, 0},
                                     {0, 1, -1, 8, -8, 1}};
};

constexpr int64_t kChannelBlock = 16;  // channels transformed together (one AVX-512 vector)

// Tile t of the chunk is tile `first_tile + t` of the batch: (n, tile row, tile column).
struct TileGrid {
  int64_t H, W, tiles_h, tiles_w;
};

// V ((m+2)^2, tiles, I) = B^T d B for the chunk's tiles [begin, end), d the (m+2)^2 input
// neighbourhood of the tile (zero outside the image). Plain loops over a block of channels,
// vectorized by the compiler for the caller's instruction set (see the wrappers below).
template <int m>
__attribute__((always_inline)) inline void input_transform(float* V, const float* input,
                                                          const TileGrid& grid, int64_t I,
                                                          int64_t first_tile, int64_t tiles,
                                                          int64_t begin, int64_t end) {
  using M = Matrices<m>;
  constexpr int a = M::kAlpha;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t tile = first_tile + t;
    const int64_t n = tile / (grid.tiles_h * grid.tiles_w);
    const int64_t y0 = (tile / grid.tiles_w) % grid.tiles_h * m - 1, x0 = tile % grid.tiles_w * m - 1;
    for (int64_t c0 = 0; c0 < I; c0 += kChannelBlock) {
      const int64_t width = std::min(kChannelBlock, I - c0);
      float d[a][a][kChannelBlock];
      for (int p = 0; p < a; ++p)
        for (int q = 0; q < a; ++q) {
          const int64_t y = y0 + p, x = x0 + q;
          if (y < 0 || y >= grid.H || x < 0 || x >= grid.W || width < kChannelBlock)
            for (int64_t c = 0; c < kChannelBlock; ++c) d[p][q][c] = 0.0f;
          if (y >= 0 && y < grid.H && x >= 0 && x < grid.W) {
            const float* pixel = input + ((n * grid.H + y) * grid.W + x) * I + c0;
            for (int64_t c = 0; c < width; ++c) d[p][q][c] = pixel[c];
          }
        }
      float rows[a][a][kChannelBlock];  // B^T d
      for (int p = 0; p < a; ++p)
        for (int q = 0; q < a; ++q) {
          float sum[kChannelBlock] = {};
          for (int r = 0; r < a; ++r) {
            if (M::BT[p][r] == 0) continue;
            for (int64_t c = 0; c < kChannelBlock; ++c) sum[c] += M::BT[p][r] * d[r][q][c];
          }
          for (int64_t c = 0; c < kChannelBlock; ++c) rows[p][q][c] = sum[c];
        }
      for (int p = 0; p < a; ++p)
        for (int q = 0; q < a; ++q) {  // (B^T d) B: column q of B is row q of B^T
          float sum[kChannelBlock] = {};
          for (int r = 0; r < a; ++r) {
            if (M::BT[q][r] == 0) continue;
            for (int64_t c = 0; c < kChannelBlock; ++c) sum[c] += M::BT[q][r] * rows[p][r][c];
          }
          float* destination = V + ((p * a + q) * tiles + t) * I + c0;
          for (int64_t c = 0; c < width; ++c) destination[c] = sum[c];
        }
    }
  }
}

// output tile (m x m, clipped at the image edge) (+)= bias + A^T Mt A, Mt the ((m+2)^2, tiles, O)
// GEMM products of the chunk's tiles [begin, end).
template <int m>
__attribute__((always_inline)) inline void output_transform(float* output, const float* Mt,
                                                           const float* bias,
                                                           const TileGrid& grid, int64_t O,
                                                           int64_t first_tile, int64_t tiles,
                                                           int64_t begin, int64_t end,
                                                           bool accumulate) {
  using M = Matrices<m>;
  constexpr int a = M::kAlpha;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t tile = first_tile + t;
    const int64_t n = tile / (grid.tiles_h * grid.tiles_w);
    const int64_t y0 = (tile / grid.tiles_w) % grid.tiles_h * m, x0 = tile % grid.tiles_w * m;
    for (int64_t o0 = 0; o0 < O; o0 += kChannelBlock) {
      const int64_t width = std::min(kChannelBlock, O - o0);
      float product[a][a][kChannelBlock];
      for (int p = 0; p < a; ++p)
        for (int q = 0; q < a; ++q) {
          const float* source = Mt + ((p * a + q) * tiles + t) * O + o0;
          for (int64_t c = 0; c < kChannelBlock; ++c) product[p][q][c] = c < width ? source[c] : 0.0f;
        }
      float rows[m][a][kChannelBlock];  // A^T Mt
      for (int u = 0; u < m; ++u)
        for (int q = 0; q < a; ++q) {
          float sum[kChannelBlock] = {};
          for (int r = 0; r < a; ++r) {
            if (M::AT[u][r] == 0) continue;
            for (int64_t c = 0; c < kChannelBlock; ++c) sum[c] += M::AT[u][r] * product[r][q][c];
          }
          for (int64_t c = 0; c < kChannelBlock; ++c) rows[u][q][c] = sum[c];
        }
      for (int u = 0; u < m; ++u) {
        if (y0 + u >= grid.H) break;
        for (int v = 0; v < m; ++v) {
          if (x0 + v >= grid.W) break;
          float sum[kChannelBlock] = {};
          for (int r = 0; r < a; ++r) {
            if (M::AT[v][r] == 0) continue;
            for (int64_t c = 0; c < kChannelBlock; ++c) sum[c] += M::AT[v][r] * rows[u][r][c];
          }
          float* destination = output + ((n * grid.H + y0 + u) * grid.W + x0 + v) * O + o0;
          for (int64_t c = 0; c < width; ++c)
            destination[c] = (accumulate ? destination[c] : 0.0f) + (bias ? bias[o0 + c] : 0.0f) + sum[c];
        }
      }
    }
  }
}

// The transforms compiled for each instruction set (the template bodies are inlined into these).
template <int m>
__attribute__((target("avx512f"))) void input_transform_avx512(float* V, const float* input, const TileGrid& grid, int64_t I, int64_t first_tile, int64_t tiles, int64_t begin, int64_t end) {
  input_transform<m>(V, input, grid, I, first_tile, tiles, begin, end);
}
template <int m>
__attribute__((target("avx2,fma"))) void input_transform_avx2(float* V, const float* input, const TileGrid& grid, int64_t I, int64_t first_tile, int64_t tiles, int64_t begin, int64_t end) {
  input_transform<m>(V, input, grid, I, first_tile, tiles, begin, end);
}
template <int m>
void input_transform_scalar(float* V, const float* input, const TileGrid& grid, int64_t I, int64_t first_tile, int64_t tiles, int64_t begin, int64_t end) {
  input_transform<m>(V, input, grid, I, first_tile, tiles, begin, end);
}
template <int m>
__attribute__((target("avx512f"))) void output_transform_avx512(float* output, const float* Mt, const float* bias, const TileGrid& grid, int64_t O, int64_t first_tile, int64_t tiles, int64_t begin, int64_t end, bool accumulate) {
  output_transform<m>(output, Mt, bias, grid, O, first_tile, tiles, begin, end, accumulate);
}
template <int m>
__attribute__((target("avx2,fma"))) void output_transform_avx2(float* output, const float* Mt, const float* bias, const TileGrid& grid, int64_t O, int64_t first_tile, int64_t tiles, int64_t begin, int64_t end, bool accumulate) {
  output_transform<m>(output, Mt, bias, grid, O, first_tile, tiles, begin, end, accumulate);
}
template <int m>
void output_transform_scalar(float* output, const float* Mt, const float* bias, const TileGrid& grid, int64_t O, int64_t first_tile, int64_t tiles, int64_t begin, int64_t end, bool accumulate) {
  output_transform<m>(output, Mt, bias, grid, O, first_tile, tiles, begin, end, accumulate);
}

// The transformed inputs and products of one chunk of tiles stay near this many floats (8 MiB).
constexpr int64_t kChunkBudgetFloats = int64_t{1} << 21;

int64_t chunk_tiles(int m, int64_t total_tiles, int64_t I, int64_t O) {
  const int64_t alpha2 = int64_t{m + 2} * (m + 2);
  const int64_t most = std::max<int64_t>(32, kChunkBudgetFloats / (alpha2 * (I + O)));
  const int64_t chunks = (total_tiles + most - 1) / most;
  return (total_tiles + chunks - 1) / chunks;
}

template <int m>
void run_winograd(float* output, const float* input, const float* transformed, const float* bias,
                  int64_t N, int64_t H, int64_t W, int64_t I, int64_t O, bool accumulate,
                  float* scratch) {
  constexpr int64_t alpha2 = int64_t{m + 2} * (m + 2);
  const TileGrid grid{H, W, (H + m - 1) / m, (W + m - 1) / m};
  const int64_t total_tiles = N * grid.tiles_h * grid.tiles_w;
  const int64_t tiles = chunk_tiles(m, total_tiles, I, O);
  float* V = scratch;                      // (alpha2, tiles, I)
  float* products = V + alpha2 * tiles * I;  // (alpha2, tiles, O)
  const CpuIsa isa = cpu_isa();
  for (int64_t first = 0; first < total_tiles; first += tiles) {
    const int64_t count = std::min(tiles, total_tiles - first);
    parallel_for(count, 4, [&](int64_t begin, int64_t end) {
      if (isa == CpuIsa::Avx512) input_transform_avx512<m>(V, input, grid, I, first, tiles, begin, end);
      else if (isa == CpuIsa::Avx2) input_transform_avx2<m>(V, input, grid, I, first, tiles, begin, end);
      else input_transform_scalar<m>(V, input, grid, I, first, tiles, begin, end);
    });
    // One GEMM per frequency point, each single-threaded on its own pool thread:
    // products[xi] (count, O) = V[xi] (count, I) x U[xi] (I, O).
    parallel_for(alpha2, 1, [&](int64_t begin, int64_t end) {
      for (int64_t xi = begin; xi < end; ++xi)
        cpu_sgemm(false, false, count, O, I, 1.0f, V + xi * tiles * I, I,
                  transformed + xi * I * O, O, 0.0f, products + xi * tiles * O, O);
    });
    parallel_for(count, 4, [&](int64_t begin, int64_t end) {
      if (isa == CpuIsa::Avx512) output_transform_avx512<m>(output, products, bias, grid, O, first, tiles, begin, end, accumulate);
      else if (isa == CpuIsa::Avx2) output_transform_avx2<m>(output, products, bias, grid, O, first, tiles, begin, end, accumulate);
      else output_transform_scalar<m>(output, products, bias, grid, O, first, tiles, begin, end, accumulate);
    });
  }
}

template <int m>
void transform_filter(float* transformed, const float* weight, int64_t K, int64_t C,
                      bool input_gradient) {
  using M = Matrices<m>;
  constexpr int a = M::kAlpha;
  const int64_t I = input_gradient ? K : C, O = input_gradient ? C : K;
  parallel_for(I, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t o = 0; o < O; ++o) {
        double g[3][3];
        for (int r = 0; r < 3; ++r)
          for (int s = 0; s < 3; ++s)
            g[r][s] = input_gradient ? weight[((i * 3 + 2 - r) * 3 + 2 - s) * C + o]
                                     : weight[((o * 3 + r) * 3 + s) * C + i];
        double rows[a][3];  // G g
        for (int p = 0; p < a; ++p)
          for (int s = 0; s < 3; ++s)
            rows[p][s] = M::G[p][0] * g[0][s] + M::G[p][1] * g[1][s] + M::G[p][2] * g[2][s];
        for (int p = 0; p < a; ++p)
          for (int q = 0; q < a; ++q)  // (G g) G^T
            transformed[((p * a + q) * I + i) * O + o] = static_cast<float>(
                rows[p][0] * M::G[q][0] + rows[p][1] * M::G[q][1] + rows[p][2] * M::G[q][2]);
      }
  });
}

}  // namespace

int64_t winograd_filter_floats(int m, int64_t I, int64_t O) {
  return int64_t{m + 2} * (m + 2) * I * O;
}

void winograd_transform_filter(float* transformed, const float* weight, int64_t K, int64_t C,
                               int m, bool input_gradient) {
  if (m == 2) transform_filter<2>(transformed, weight, K, C, input_gradient);
  else transform_filter<4>(transformed, weight, K, C, input_gradient);
}

int64_t winograd_scratch_floats(int m, int64_t N, int64_t H, int64_t W, int64_t I, int64_t O) {
  const int64_t total_tiles = N * ((H + m - 1) / m) * ((W + m - 1) / m);
  return int64_t{m + 2} * (m + 2) * chunk_tiles(m, total_tiles, I, O) * (I + O);
}

void conv_winograd_cpu(float* output, const float* input, const float* transformed,
                       const float* bias, int64_t N, int64_t H, int64_t W, int64_t I, int64_t O,
                       int m, bool accumulate, float* scratch) {
  if (m == 2) run_winograd<2>(output, input, transformed, bias, N, H, W, I, O, accumulate, scratch);
  else run_winograd<4>(output, input, transformed, bias, N, H, W, I, O, accumulate, scratch);
}

}  // namespace pneumo
