#include "kernels/cpu/conv_winograd.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

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
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr float AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
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

// How run_winograd cuts the batch's tiles into blocks (winograd_block). Every block streams
// the whole transformed filter U (a*a*I*O floats) once, for a*a*T*I*O multiply-adds: 4/T bytes
// per multiply-add.
//  - U up to kLargeFilterFloats (4 MiB; at most 128 channels for F(4x4), 180 for F(2x2)): 24
//    tiles per block, panel outer. U mostly stays in L2/L3 and the block's transformed inputs
//    (a*a, 24, I), re-read once per panel, in L2 (measured best at 64-128 channels; 12 tiles:
//    the filter stream dominates; 48 and more: the inputs fall out of L2).
//  - a larger U (F(4x4) at 256 channels: 9 MiB, at 512: 36 MiB) comes from memory for every
//    block, and 24-tile blocks spent most of their time waiting for it: frequency outer, and
//    blocks as large as kMaxBlockTiles, the same number per thread (measured at 256 and 512
//    channels: ... see benchmarks/README.md).
constexpr int64_t kSmallBlockTiles = 24;
constexpr int64_t kMaxBlockTiles = 96;
constexpr int64_t kLargeFilterFloats = int64_t{1} << 20;

struct BlockPlan {
  int64_t tiles;         // T: tiles per block
  bool frequency_outer;  // winograd_block's loop order
};

// Whether U outgrows the caches: larger blocks, frequency outer.
bool large_filter(int m, int64_t I, int64_t O) { return winograd_filter_floats(m, I, O) > kLargeFilterFloats; }

BlockPlan block_plan(int m, int64_t I, int64_t O, int64_t total_tiles, int threads) {
  if (!large_filter(m, I, O)) return {kSmallBlockTiles, false};
  // The fewest blocks per thread that keep T <= kMaxBlockTiles, then T evened out over them.
  const int64_t per_thread = (total_tiles + threads - 1) / threads;
  const int64_t blocks_per_thread = (per_thread + kMaxBlockTiles - 1) / kMaxBlockTiles;
  return {std::max<int64_t>(1, (per_thread + blocks_per_thread - 1) / blocks_per_thread), true};
}

// Rows per frequency point in the V, product and Z buffers of T tiles: one spare, so that the
// a*a slabs do not start a power of two apart. With 512 or 24 x 64 rows the a*a streams of a
// transform fell into the same cache sets (the 64-channel weight gradient measured from 20 to 48
// ms, depending on the buffer's alignment in the process).
int64_t slab_rows(int64_t T) { return T + 1; }

// Floats of one thread's V and product buffers for blocks of T tiles.
int64_t thread_block_floats(int m, int64_t I, int64_t O, int64_t T, bool frequency_outer) {
  const int64_t alpha2 = int64_t{m + 2} * (m + 2);
  return alpha2 * slab_rows(T) * (I + (frequency_outer ? O : panel_width(I, O)));
}

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
void run_winograd(float* output, const float* input, const float* transformed, const float* bias, int64_t N, int64_t H,
                  int64_t W, int64_t I, int64_t O, bool accumulate, float* scratch) {
  constexpr int64_t alpha2 = int64_t{m + 2} * (m + 2);
  const TileGrid grid{H, W, (H + m - 1) / m, (W + m - 1) / m};
  const int64_t total_tiles = N * grid.tiles_h * grid.tiles_w;
  const int threads = cpu_thread_count();
  const BlockPlan plan = block_plan(m, I, O, total_tiles, threads);
  const int64_t T = plan.tiles;
  const bool frequency_outer = plan.frequency_outer;
  const int64_t per_thread = thread_block_floats(m, I, O, T, frequency_outer);
  const int64_t rows = slab_rows(T);
  const int64_t blocks = (total_tiles + T - 1) / T;
  const Kernels kernels = kernels_for(I, O);
  // Worker j runs blocks j, j + threads, ... in its own V and product buffers.
  parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      float* V = scratch + j * per_thread;      // (a*a, rows, I)
      float* products = V + alpha2 * rows * I;  // (a*a, rows, OB), frequency outer (a*a, rows, O)
      for (int64_t block = j; block < blocks; block += threads) {
        const int64_t first = block * T, count = std::min(T, total_tiles - first);
        switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
          case Kernels::Avx512:
            winograd_avx512::winograd_block<m>(output, input, transformed, bias, grid, I, O, first, count, rows,
                                               frequency_outer, accumulate, V, products);
            break;
          case Kernels::Avx2:
            winograd_avx2::winograd_block<m>(output, input, transformed, bias, grid, I, O, first, count, rows,
                                             frequency_outer, accumulate, V, products);
            break;
#endif
          default:
            winograd_scalar::winograd_block<m>(output, input, transformed, bias, grid, I, O, first, count, rows,
                                               frequency_outer, accumulate, V, products);
        }
      }
    }
  });
}

template <int m>
void run_weight_gradient(float* weight_gradient, const float* input, const float* output_gradient, int64_t N, int64_t H,
                         int64_t W, int64_t C, int64_t K, float* scratch) {
  constexpr int a = m + 2;
  constexpr int64_t alpha2 = int64_t{a} * a;
  const TileGrid grid{H, W, (H + m - 1) / m, (W + m - 1) / m};
  const int64_t total_tiles = N * grid.tiles_h * grid.tiles_w;
  const int64_t I = C, O = K, T = chunk_tiles(m, I, O), rows = slab_rows(T);
  float* dU = scratch;               // (a*a, I, O)
  float* V = dU + alpha2 * I * O;    // (a*a, rows, I)
  float* Z = V + alpha2 * rows * I;  // (a*a, rows, O)
  std::memset(dU, 0, sizeof(float) * alpha2 * I * O);
  const Kernels kernels = kernels_for(I, O);
  for (int64_t first = 0; first < total_tiles; first += T) {
    const int64_t count = std::min(T, total_tiles - first);
    parallel_for(count, 4, [&](int64_t begin, int64_t end) {
      switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
        case Kernels::Avx512:
          winograd_avx512::input_transform<m>(V, rows, input, grid, I, first, begin, end);
          winograd_avx512::gradient_transform<m>(Z, rows, output_gradient, grid, O, first, begin, end);
          break;
        case Kernels::Avx2:
          winograd_avx2::input_transform<m>(V, rows, input, grid, I, first, begin, end);
          winograd_avx2::gradient_transform<m>(Z, rows, output_gradient, grid, O, first, begin, end);
          break;
#endif
        default:
          winograd_scalar::input_transform<m>(V, rows, input, grid, I, first, begin, end);
          winograd_scalar::gradient_transform<m>(Z, rows, output_gradient, grid, O, first, begin, end);
      }
    });
    // Each frequency point's dU is summed by one thread, chunk after chunk, tile after tile:
    // the result does not depend on the thread count.
    parallel_for(alpha2, 1, [&](int64_t begin, int64_t end) {
      switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
        case Kernels::Avx512: winograd_avx512::weight_products(dU, V, Z, rows, I, O, count, begin, end); break;
        case Kernels::Avx2: winograd_avx2::weight_products(dU, V, Z, rows, I, O, count, begin, end); break;
#endif
        default: winograd_scalar::weight_products(dU, V, Z, rows, I, O, count, begin, end);
      }
    });
  }
  // weight_gradient[k, r, s, c] += sum_{p,q} G[p][r] dU[p*a+q][c][k] G[q][s], in double, in
  // runs of kFilterLanes output channels per thread.
  constexpr int64_t lanes = winograd_scalar::kFilterLanes;
  parallel_for((K + lanes - 1) / lanes, 1, [&](int64_t begin, int64_t end) {
    const int64_t k_begin = begin * lanes, k_end = std::min(K, end * lanes);
    switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
      case Kernels::Avx512:
        winograd_avx512::weight_output_transform<m>(weight_gradient, dU, C, K, k_begin, k_end);
        break;
      case Kernels::Avx2: winograd_avx2::weight_output_transform<m>(weight_gradient, dU, C, K, k_begin, k_end); break;
#endif
      default: winograd_scalar::weight_output_transform<m>(weight_gradient, dU, C, K, k_begin, k_end);
    }
  });
}

// U (a*a, O / OB, I, OB) = G g G^T for every (input channel i, output channel o), in double,
// threaded over (panel, input channel) rows (conv_winograd_kernels.inc, filter_transform).
template <int m>
void transform_filter(float* transformed, const float* weight, int64_t K, int64_t C, bool input_gradient) {
  const int64_t I = input_gradient ? K : C, O = input_gradient ? C : K;
  const int64_t OB = panel_width(I, O);
  const Kernels kernels = kernels_for(I, O);
  // Worker j transforms rows [j * total / threads, (j + 1) * total / threads) through its own
  // `local` (allocated once per call: 147 KiB at OB = 64 would be an mmap per chunk).
  const int64_t total = (O + OB - 1) / OB * I;
  const int threads = cpu_thread_count();
  parallel_for(threads, 1, [&](int64_t first_worker, int64_t last_worker) {
    std::vector<float> local(
        static_cast<size_t>((m + 2) * (m + 2) * winograd_scalar::kFilterRows * OB));  // (a*a, rows, OB)
    for (int64_t worker = first_worker; worker < last_worker; ++worker) {
      const int64_t begin = worker * total / threads, end = (worker + 1) * total / threads;
      switch (kernels) {
#ifdef PNEUMO_WINOGRAD_X86
        case Kernels::Avx512:
          winograd_avx512::filter_transform<m>(transformed, weight, C, I, O, OB, input_gradient, begin, end,
                                               local.data());
          break;
        case Kernels::Avx2:
          winograd_avx2::filter_transform<m>(transformed, weight, C, I, O, OB, input_gradient, begin, end,
                                             local.data());
          break;
#endif
        default:
          winograd_scalar::filter_transform<m>(transformed, weight, C, I, O, OB, input_gradient, begin, end,
                                               local.data());
      }
    }
  });
}

}  // namespace

int64_t winograd_filter_floats(int m, int64_t I, int64_t O) { return int64_t{m + 2} * (m + 2) * I * O; }

void winograd_transform_filter(float* transformed, const float* weight, int64_t K, int64_t C, int m,
                               bool input_gradient) {
  if (m == 2)
    transform_filter<2>(transformed, weight, K, C, input_gradient);
  else
    transform_filter<4>(transformed, weight, K, C, input_gradient);
}

int64_t winograd_scratch_floats(int m, int64_t I, int64_t O) {
  // Sized for the largest block block_plan can choose.
  const bool large = large_filter(m, I, O);
  return cpu_thread_count() * thread_block_floats(m, I, O, large ? kMaxBlockTiles : kSmallBlockTiles, large);
}

void conv_winograd_cpu(float* output, const float* input, const float* transformed, const float* bias, int64_t N,
                       int64_t H, int64_t W, int64_t I, int64_t O, int m, bool accumulate, float* scratch) {
  if (m == 2)
    run_winograd<2>(output, input, transformed, bias, N, H, W, I, O, accumulate, scratch);
  else
    run_winograd<4>(output, input, transformed, bias, N, H, W, I, O, accumulate, scratch);
}

int64_t winograd_weight_gradient_scratch_floats(int m, int64_t C, int64_t K) {
  const int64_t alpha2 = int64_t{m + 2} * (m + 2);
  return alpha2 * (C * K + slab_rows(chunk_tiles(m, C, K)) * (C + K));
}

void conv_winograd_weight_gradient_cpu(float* weight_gradient, const float* input, const float* output_gradient,
                                       int64_t N, int64_t H, int64_t W, int64_t C, int64_t K, int m, float* scratch) {
  if (m == 2)
    run_weight_gradient<2>(weight_gradient, input, output_gradient, N, H, W, C, K, scratch);
  else
    run_weight_gradient<4>(weight_gradient, input, output_gradient, N, H, W, C, K, scratch);
}

}  // namespace pneumo
