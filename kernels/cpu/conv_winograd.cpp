#include "kernels/cpu/conv_winograd.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "engine/cpu_threads.h"
#include "kernels/cpu/cpu_isa.h"

// GCC only, like the direct kernels: clang does not honour `#pragma GCC target`, so a clang
// build runs the one-float-per-vector compilation of the same kernels.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define PNEUMO_WINOGRAD_X86 1
#endif

namespace pneumo {

namespace {

// The transform matrices (Lavin & Gray 2016; interpolation points 0, +-1 for F(2,3) and
// 0, +-1, +-2 for F(4,3), plus the point at infinity). A = (A^T)^T is spelled out for the
// weight gradient's A dY A^T.
template <int m>
struct Matrices;

template <>
struct Matrices<2> {
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr float A[4][2] = {{1, 0}, {1, 1}, {1, -1}, {0, -1}};
};

template <>
struct Matrices<4> {
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
  static constexpr float A[6][4] = {{1, 0, 0, 0}, {1, 1, 1, 1},   {1, -1, 1, -1},
                                    {1, 2, 4, 8}, {1, -2, 4, -8}, {0, 0, 0, 1}};
};

// Tile t of a block is tile `first + t` of the batch: (n, tile row, tile column).
struct TileGrid {
  int64_t H, W, tiles_h, tiles_w;
};

}  // namespace

// The kernels of conv_winograd_kernels.inc, compiled for each instruction set.
#ifdef PNEUMO_WINOGRAD_X86
#pragma GCC push_options
#pragma GCC target("avx512f")
namespace winograd_avx512 {
#include "kernels/cpu/simd_avx512.inc"
// 6 tiles x 64 channels or 12 x 32 (24 accumulators of 32 registers).
constexpr int kMaxVectors = 4;
constexpr int rows_for(int vectors) { return vectors == 4 ? 6 : 12; }
#include "kernels/cpu/conv_winograd_kernels.inc"
}  // namespace winograd_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace winograd_avx2 {
#include "kernels/cpu/simd_avx2.inc"
// 6 tiles x 16 channels (12 accumulators of 16 registers).
constexpr int kMaxVectors = 2;
constexpr int rows_for(int) { return 6; }
#include "kernels/cpu/conv_winograd_kernels.inc"
}  // namespace winograd_avx2
#pragma GCC pop_options
#endif

namespace winograd_scalar {
// One float per "vector": the same kernels for any CPU and any channel count.
struct Vec {
  using Register = float;
  static constexpr int kLanes = 1;
  static Register load(const float* p) { return *p; }
  static void store(float* p, Register v) { *p = v; }
  static Register zero() { return 0.0f; }
  static Register broadcast(float x) { return x; }
  static Register fmadd(Register a, Register b, Register c) { return a * b + c; }
  static Register add(Register a, Register b) { return a + b; }
  static Register sub(Register a, Register b) { return a - b; }
  static Register mul(Register a, Register b) { return a * b; }
};
constexpr int kMaxVectors = 4;
constexpr int rows_for(int) { return 4; }
#include "kernels/cpu/conv_winograd_kernels.inc"
}  // namespace winograd_scalar

namespace {

// Which compilation of the kernels runs a shape: the widest vector that divides both channel
// counts, within what the CPU (and PNEUMO_CPU_ISA) allows.
enum class Kernels { Scalar, Avx2, Avx512 };

Kernels kernels_for(int64_t I, int64_t O) {
#ifdef PNEUMO_WINOGRAD_X86
  const CpuIsa isa = cpu_isa();
  if (isa == CpuIsa::Avx512 && I % 16 == 0 && O % 16 == 0) return Kernels::Avx512;
  if (isa != CpuIsa::Scalar && I % 8 == 0 && O % 8 == 0) return Kernels::Avx2;
#else
  (void)I, (void)O;
#endif
  return Kernels::Scalar;
}

// Output channels per panel of the transformed filter (OB).
int64_t panel_width(int64_t I, int64_t O) {
  switch (kernels_for(I, O)) {
#ifdef PNEUMO_WINOGRAD_X86
    case Kernels::Avx512: return winograd_avx512::panel_vectors(O) * 16;
    case Kernels::Avx2: return winograd_avx2::panel_vectors(O) * 8;
#endif
    default: return winograd_scalar::panel_vectors(O);
  }
}

// Tiles per block T, a multiple of 12 (whole register tiles). Every block streams the whole
// transformed filter (a*a*I*O floats, 9 MiB at 256 channels) once for a*a*T*I*O
// multiply-adds, 4/T bytes per multiply-add; the block's transformed inputs (a*a, T, I) are
// re-read once per panel of OB output channels (4/OB bytes per multiply-add). 24 tiles
// measured best from 64 to 512 channels (12: the filter stream dominates at 256-512
// channels; 48 and more: the inputs fall out of L2).
int64_t block_tiles(int, int64_t) { return 24; }

// Weight gradient: tiles per chunk. Every chunk loads and stores dU (a*a*I*O floats) once
// for a*a*T*I*O multiply-adds, 8/T bytes per multiply-add: T as large as a budget of 16 MiB
// for the chunk's V and Z (a*a, T, I + O) allows, 64 to 512 tiles (measured: 32 tiles ran
// 2x slower than 512 at 64-256 channels).
constexpr int64_t kChunkBudgetFloats = int64_t{1} << 22;

int64_t chunk_tiles(int m, int64_t I, int64_t O) {
  const int64_t alpha2 = int64_t{m + 2} * (m + 2);
  return std::clamp<int64_t>(kChunkBudgetFloats / (alpha2 * (I + O)), 64, 512);
}

template <int m>
void run_winograd(float* output, const float* input, const float* transformed, const float* bias,
                  int64_t N, int64_t H, int64_t W, int64_t I, int64_t O, bool accumulate,
                  float* scratch) {
  constexpr int64_t alpha2 = int64_t{m + 2} * (m + 2);
  const TileGrid grid{H, W, (H + m - 1) / m, (W + m - 1) / m};
  const int64_t total_tiles = N * grid.tiles_h * grid.tiles_w;
  const int64_t T = block_tiles(m, I), OB = panel_width(I, O);
  const int64_t per_thread = alpha2 * T * (I + OB);
  const int64_t blocks = (total_tiles + T - 1) / T;
  const int threads = cpu_thread_count();
  const Kernels kernels = kernels_for(I, O);
  // Worker j runs blocks j, j + threads, ... in its own V and product buffers.
  parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      float* V = scratch + j * per_thread;  // (a*a, T, I)
      float* products = V + alpha2 * T * I;  // (a*a, T, OB)
      for (int64_t block = j; block < blocks; block += threads) {
        const int64_t first = block * T, count = std::min(T, total_tiles - first);
        switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
          case Kernels::Avx512:
            winograd_avx512::winograd_block<m>(output, input, transformed, bias, grid, I, O, first, count, T, accumulate, V, products);
            break;
          case Kernels::Avx2:
            winograd_avx2::winograd_block<m>(output, input, transformed, bias, grid, I, O, first, count, T, accumulate, V, products);
            break;
#endif
          default:
            winograd_scalar::winograd_block<m>(output, input, transformed, bias, grid, I, O, first, count, T, accumulate, V, products);
        }
      }
    }
  });
}

template <int m>
void run_weight_gradient(float* weight_gradient, const float* input, const float* output_gradient,
                         int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, float* scratch) {
  using Mx = Matrices<m>;
  constexpr int a = m + 2;
  constexpr int64_t alpha2 = int64_t{a} * a;
  const TileGrid grid{H, W, (H + m - 1) / m, (W + m - 1) / m};
  const int64_t total_tiles = N * grid.tiles_h * grid.tiles_w;
  const int64_t I = C, O = K, T = chunk_tiles(m, I, O);
  float* dU = scratch;                // (a*a, I, O)
  float* V = dU + alpha2 * I * O;     // (a*a, T, I)
  float* Z = V + alpha2 * T * I;      // (a*a, T, O)
  std::memset(dU, 0, sizeof(float) * alpha2 * I * O);
  const Kernels kernels = kernels_for(I, O);
  for (int64_t first = 0; first < total_tiles; first += T) {
    const int64_t count = std::min(T, total_tiles - first);
    parallel_for(count, 4, [&](int64_t begin, int64_t end) {
      switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
        case Kernels::Avx512:
          winograd_avx512::input_transform<m>(V, T, input, grid, I, first, begin, end);
          winograd_avx512::gradient_transform<m>(Z, T, output_gradient, grid, O, first, begin, end);
          break;
        case Kernels::Avx2:
          winograd_avx2::input_transform<m>(V, T, input, grid, I, first, begin, end);
          winograd_avx2::gradient_transform<m>(Z, T, output_gradient, grid, O, first, begin, end);
          break;
#endif
        default:
          winograd_scalar::input_transform<m>(V, T, input, grid, I, first, begin, end);
          winograd_scalar::gradient_transform<m>(Z, T, output_gradient, grid, O, first, begin, end);
      }
    });
    // Each frequency point's dU is summed by one thread, chunk after chunk, tile after tile:
    // the result does not depend on the thread count.
    parallel_for(alpha2, 1, [&](int64_t begin, int64_t end) {
      switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
        case Kernels::Avx512: winograd_avx512::weight_products(dU, V, Z, T, I, O, count, begin, end); break;
        case Kernels::Avx2: winograd_avx2::weight_products(dU, V, Z, T, I, O, count, begin, end); break;
#endif
        default: winograd_scalar::weight_products(dU, V, Z, T, I, O, count, begin, end);
      }
    });
  }
  // weight_gradient[k, r, s, c] += sum_{p,q} G[p][r] dU[p*a+q][c][k] G[q][s], in double.
  parallel_for(K, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      for (int64_t c = 0; c < C; ++c) {
        double rows[3][a];  // G^T dU: rows[r][q]
        for (int r = 0; r < 3; ++r)
          for (int q = 0; q < a; ++q) {
            double sum = 0.0;
            for (int p = 0; p < a; ++p) sum += Mx::G[p][r] * dU[((p * a + q) * I + c) * O + k];
            rows[r][q] = sum;
          }
        for (int r = 0; r < 3; ++r)
          for (int s = 0; s < 3; ++s) {
            double sum = 0.0;
            for (int q = 0; q < a; ++q) sum += rows[r][q] * Mx::G[q][s];
            weight_gradient[((k * 3 + r) * 3 + s) * C + c] += static_cast<float>(sum);
          }
      }
  });
}

// U (a*a, O / OB, I, OB) = G g G^T for every (input channel i, output channel o), in double.
template <int m>
void transform_filter(float* transformed, const float* weight, int64_t K, int64_t C,
                      bool input_gradient) {
  using M = Matrices<m>;
  constexpr int a = m + 2;
  const int64_t I = input_gradient ? K : C, O = input_gradient ? C : K;
  const int64_t OB = panel_width(I, O);
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
        const int64_t panel = o / OB, lane = o % OB;
        for (int p = 0; p < a; ++p)
          for (int q = 0; q < a; ++q)  // (G g) G^T
            transformed[(p * a + q) * I * O + (panel * I + i) * OB + lane] = static_cast<float>(
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

int64_t winograd_scratch_floats(int m, int64_t I, int64_t O) {
  const int64_t alpha2 = int64_t{m + 2} * (m + 2);
  return cpu_thread_count() * alpha2 * block_tiles(m, I) * (I + panel_width(I, O));
}

void conv_winograd_cpu(float* output, const float* input, const float* transformed,
                       const float* bias, int64_t N, int64_t H, int64_t W, int64_t I, int64_t O,
                       int m, bool accumulate, float* scratch) {
  if (m == 2) run_winograd<2>(output, input, transformed, bias, N, H, W, I, O, accumulate, scratch);
  else run_winograd<4>(output, input, transformed, bias, N, H, W, I, O, accumulate, scratch);
}

int64_t winograd_weight_gradient_scratch_floats(int m, int64_t C, int64_t K) {
  const int64_t alpha2 = int64_t{m + 2} * (m + 2);
  return alpha2 * (C * K + chunk_tiles(m, C, K) * (C + K));
}

void conv_winograd_weight_gradient_cpu(float* weight_gradient, const float* input,
                                       const float* output_gradient, int64_t N, int64_t H,
                                       int64_t W, int64_t C, int64_t K, int m, float* scratch) {
  if (m == 2) run_weight_gradient<2>(weight_gradient, input, output_gradient, N, H, W, C, K, scratch);
  else run_weight_gradient<4>(weight_gradient, input, output_gradient, N, H, W, C, K, scratch);
}

}  // namespace pneumo
