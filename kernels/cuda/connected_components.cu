// CUDA connected-component labelling (8-connectivity) for a batch of masks (N,H,W), after
// Playne and Hawick, "A new algorithm for parallel connected-component labelling on GPUs" (2018):
//   1. local_merge:    each thread block labels one 32x16 tile with union-find in shared memory;
//   2. boundary_merge: pixels on tile edges join their neighbours in other tiles (global atomics);
//   3. compress:       every pixel points straight at its root.
// Union-find always keeps parent[i] <= i, so the root of a component is its smallest linear
// index, i.e. its first pixel in raster order. Relabelling then ranks the roots per image:
//   4. count_roots_per_row, 5. scan_rows_per_image, 6. label_roots, 7. spread_root_labels,
//   8. make_root_labels_positive
// which gives skimage's numbering (1..n in raster order of first pixels) exactly, as on the CPU.
// See data/evaluation/postprocess.md.
#include <climits>
#include <string>

#include <cuda/atomic>

#include "engine/check.h"
#include "engine/cuda_check.h"
#include "engine/device.h"
#include "engine/memory.h"
#include "kernels/connected_components.h"

namespace pneumo {
namespace {

constexpr int kTileWidth = 32;   // one warp per tile row
constexpr int kTileHeight = 16;  // 512 threads per tile
constexpr unsigned kFullWarp = 0xffffffffu;

// parent[index] read while other threads lower parents with atomicMin: a relaxed atomic load, so
// the concurrent access is an atomic one (not a data race; compute-sanitizer's racecheck reports
// none) and a stale cached value is never reused. Relaxed suffices: a parent only ever decreases
// towards its root, and union_sets re-checks every link it makes with atomicMin's result.
__device__ int32_t load_parent(int32_t* parent, int32_t index) {
  return cuda::atomic_ref<int32_t, cuda::thread_scope_device>(parent[index]).load(cuda::memory_order_relaxed);
}

// Root of `index`: follows parents until a self-parent.
__device__ int32_t find_root(int32_t* parent, int32_t index) {
  int32_t next = load_parent(parent, index);
  while (next != index) {
    index = next;
    next = load_parent(parent, index);
  }
  return index;
}

// Joins the sets of a and b (Playne and Hawick's atomic union). The larger root is lowered to
// the smaller one with atomicMin; if another thread re-parented it meanwhile, the value that
// atomicMin returns is that newer parent and the loop joins it too, so no link is lost. Each
// failed round strictly lowers a + b, so the loop ends.
__device__ void union_sets(int32_t* parent, int32_t a, int32_t b) {
  bool done;
  do {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a < b) {
      int32_t old = atomicMin(&parent[b], a);
      done = (old == b);
      b = old;
    } else if (b < a) {
      int32_t old = atomicMin(&parent[a], b);
      done = (old == a);
      a = old;
    } else {
      done = true;
    }
  } while (!done);
}

// Grid (ceil(W/32), ceil(H/16), N), block (32,16). parents (N,H,W): per-image linear index of
// each foreground pixel's root within its tile; background pixels get their own index.
__global__ void local_merge_kernel(const uint8_t* masks, int height, int width, int32_t* parents) {
  __shared__ int32_t tile_parent[kTileHeight * kTileWidth];
  __shared__ uint8_t tile_mask[kTileHeight][kTileWidth];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int x = blockIdx.x * kTileWidth + tx;
  const int y = blockIdx.y * kTileHeight + ty;
  const long long image_offset = static_cast<long long>(blockIdx.z) * height * width;
  const bool inside = x < width && y < height;
  const bool foreground = inside && masks[image_offset + static_cast<long long>(y) * width + x] != 0;
  const int local = ty * kTileWidth + tx;
  tile_parent[local] = local;
  tile_mask[ty][tx] = foreground;
  __syncthreads();
  if (foreground) {
    if (tx > 0 && tile_mask[ty][tx - 1]) union_sets(tile_parent, local, local - 1);
    if (ty > 0) {
      if (tx > 0 && tile_mask[ty - 1][tx - 1]) union_sets(tile_parent, local, local - kTileWidth - 1);
      if (tile_mask[ty - 1][tx]) union_sets(tile_parent, local, local - kTileWidth);
      if (tx + 1 < kTileWidth && tile_mask[ty - 1][tx + 1]) union_sets(tile_parent, local, local - kTileWidth + 1);
    }
  }
  __syncthreads();
  if (!inside) return;
  int32_t value = y * width + x;
  if (foreground) {
    // Tile-local raster order maps monotonically onto image raster order, so the tile root
    // (smallest local index) is also the smallest image index of its tile component.
    const int root = find_root(tile_parent, local);
    value = (blockIdx.y * kTileHeight + root / kTileWidth) * width + blockIdx.x * kTileWidth + root % kTileWidth;
  }
  parents[image_offset + y * width + x] = value;
}

__device__ bool is_foreground(const uint8_t* image_mask, int width, int height, int x, int y) {
  return x >= 0 && y >= 0 && x < width && y < height && image_mask[y * width + x] != 0;
}

// Grid and block as local_merge. Joins each foreground pixel to its already-scanned neighbours
// (W, NW, N, NE) that lie in another tile; pairs inside a tile were joined by local_merge.
__global__ void boundary_merge_kernel(const uint8_t* masks, int height, int width, int32_t* parents) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  if (tx != 0 && ty != 0 && tx != kTileWidth - 1) return;  // no neighbour across a tile edge
  const int x = blockIdx.x * kTileWidth + tx;
  const int y = blockIdx.y * kTileHeight + ty;
  const long long image_offset = static_cast<long long>(blockIdx.z) * height * width;
  const uint8_t* image_mask = masks + image_offset;
  if (!is_foreground(image_mask, width, height, x, y)) return;
  int32_t* image_parents = parents + image_offset;
  const int32_t self = y * width + x;
  const int neighbour_dx[4] = {-1, -1, 0, 1};
  const int neighbour_dy[4] = {0, -1, -1, -1};
  for (int k = 0; k < 4; ++k) {
    const int nx = x + neighbour_dx[k], ny = y + neighbour_dy[k];
    if (!is_foreground(image_mask, width, height, nx, ny)) continue;
    const bool other_tile = (nx / kTileWidth != x / kTileWidth) || (ny / kTileHeight != y / kTileHeight);
    if (other_tile) union_sets(image_parents, self, ny * width + nx);
  }
}

// Grid over all N*H*W pixels. Every foreground pixel points straight at its root afterwards.
__global__ void compress_kernel(const uint8_t* masks, long long total, int pixels_per_image, int32_t* parents) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (!masks[i]) continue;
    const long long image_offset = i - i % pixels_per_image;
    // Others may be following this pixel's parent meanwhile: an atomic store, like the loads.
    int32_t* image_parents = parents + image_offset;
    const int32_t root = find_root(image_parents, load_parent(image_parents, static_cast<int32_t>(i - image_offset)));
    cuda::atomic_ref<int32_t, cuda::thread_scope_device>(parents[i]).store(root, cuda::memory_order_relaxed);
  }
}

__device__ bool is_root(const uint8_t* masks, const int32_t* parents, long long image_offset, int index) {
  return masks[image_offset + index] != 0 && parents[image_offset + index] == index;
}

// One warp per image row (N*H rows, 8 rows per 256-thread block): row_counts[row] = number of
// component roots (first pixels) in the row.
__global__ void count_roots_per_row_kernel(const uint8_t* masks, const int32_t* parents, int count, int height,
                                           int width, int32_t* row_counts) {
  const int lane = threadIdx.x % 32;
  const long long row = blockIdx.x * (blockDim.x / 32LL) + threadIdx.x / 32;
  if (row >= static_cast<long long>(count) * height) return;  // whole warp leaves together
  const long long image_offset = (row / height) * height * static_cast<long long>(width);
  const int y = static_cast<int>(row % height);
  int32_t roots = 0;
  for (int x0 = 0; x0 < width; x0 += 32) {
    const int x = x0 + lane;
    const bool root = x < width && is_root(masks, parents, image_offset, y * width + x);
    roots += __popc(__ballot_sync(kFullWarp, root));
  }
  if (lane == 0) row_counts[row] = roots;
}

// One 1024-thread block per image: row_offsets (N,H) = exclusive prefix sum of row_counts over
// the image's rows; component_counts[n] = the image's total.
__global__ void scan_rows_per_image_kernel(const int32_t* row_counts, int height, int32_t* row_offsets,
                                           int32_t* component_counts) {
  __shared__ int32_t warp_totals[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const long long base = static_cast<long long>(blockIdx.x) * height;
  int32_t carry = 0;
  for (int start = 0; start < height; start += blockDim.x) {
    const int row = start + threadIdx.x;
    const int32_t value = row < height ? row_counts[base + row] : 0;
    // Inclusive scan inside the warp, then across the warps' totals.
    int32_t inclusive = value;
    for (int offset = 1; offset < 32; offset *= 2) {
      const int32_t other = __shfl_up_sync(kFullWarp, inclusive, offset);
      if (lane >= offset) inclusive += other;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
      const int warps = blockDim.x / 32;
      int32_t total = lane < warps ? warp_totals[lane] : 0;
      for (int offset = 1; offset < 32; offset *= 2) {
        const int32_t other = __shfl_up_sync(kFullWarp, total, offset);
        if (lane >= offset) total += other;
      }
      if (lane < warps) warp_totals[lane] = total;  // inclusive over warps
    }
    __syncthreads();
    const int32_t before_warp = warp > 0 ? warp_totals[warp - 1] : 0;
    if (row < height) row_offsets[base + row] = carry + before_warp + inclusive - value;
    carry += warp_totals[blockDim.x / 32 - 1];
    __syncthreads();  // warp_totals is rewritten by the next chunk
  }
  if (threadIdx.x == 0) component_counts[blockIdx.x] = carry;
}

// One warp per row, as count_roots_per_row: each root gets -(its rank in the image + 1), the
// negative sign marking "final label" for spread_root_labels.
__global__ void label_roots_kernel(const uint8_t* masks, int count, int height, int width, const int32_t* row_offsets,
                                   int32_t* labels) {
  const int lane = threadIdx.x % 32;
  const long long row = blockIdx.x * (blockDim.x / 32LL) + threadIdx.x / 32;
  if (row >= static_cast<long long>(count) * height) return;
  const long long image_offset = (row / height) * height * static_cast<long long>(width);
  const int y = static_cast<int>(row % height);
  int32_t rank = row_offsets[row];
  for (int x0 = 0; x0 < width; x0 += 32) {
    const int x = x0 + lane;
    const bool root = x < width && is_root(masks, labels, image_offset, y * width + x);
    const unsigned roots = __ballot_sync(kFullWarp, root);
    if (root) {
      const int32_t before = __popc(roots & ((1u << lane) - 1u));
      labels[image_offset + y * width + x] = -(rank + before + 1);
    }
    rank += __popc(roots);
  }
}

// Grid over all pixels: background -> 0; a non-root foreground pixel holds its root's index and
// takes the root's final label (positive). Roots (negative) are left for the next kernel, so
// every value read here is stable during the launch.
__global__ void spread_root_labels_kernel(const uint8_t* masks, long long total, int pixels_per_image,
                                          int32_t* labels) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (!masks[i]) {
      labels[i] = 0;
      continue;
    }
    const int32_t root = labels[i];
    if (root < 0) continue;
    const long long image_offset = i - i % pixels_per_image;
    labels[i] = -labels[image_offset + root];
  }
}

__global__ void make_root_labels_positive_kernel(long long total, int32_t* labels) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    if (labels[i] < 0) labels[i] = -labels[i];
  }
}

__global__ void initialize_bounds_kernel(int total_components, ComponentBounds* bounds) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < total_components) bounds[k] = ComponentBounds{INT_MAX, INT_MAX, -1, -1};
}

// Grid (ceil(W/32), ceil(H/8), N), block (32,8): each warp covers 32 consecutive pixels of one
// row. Lanes with the same component are grouped with __match_any_sync; the group's lowest lane
// updates the component's bounds once with the group's leftmost and rightmost x.
__global__ void component_bounds_kernel(const int32_t* labels, int height, int width, const int32_t* component_offsets,
                                        ComponentBounds* bounds) {
  const int lane = threadIdx.x;
  const int x = blockIdx.x * 32 + lane;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const long long image_offset = static_cast<long long>(blockIdx.z) * height * width;
  int32_t label = 0;
  if (x < width && y < height) label = labels[image_offset + static_cast<long long>(y) * width + x];
  const int32_t key = label > 0 ? component_offsets[blockIdx.z] + label - 1 : -1;
  const unsigned peers = __match_any_sync(kFullWarp, key);
  if (key < 0) return;
  const int first_lane = __ffs(peers) - 1;
  if (lane != first_lane) return;
  const int last_lane = 31 - __clz(peers);
  const int warp_x = static_cast<int>(blockIdx.x) * 32;
  ComponentBounds* box = bounds + key;
  atomicMin(&box->min_x, warp_x + first_lane);
  atomicMax(&box->max_x, warp_x + last_lane);
  atomicMin(&box->min_y, y);
  atomicMax(&box->max_y, y);
}

int blocks_for(long long count, int block) {
  long long blocks = (count + block - 1) / block;
  if (blocks > 65535LL * 32) blocks = 65535LL * 32;
  return static_cast<int>(blocks < 1 ? 1 : blocks);
}

}  // namespace

void label_components_cuda(const uint8_t* masks, int count, int height, int width, int32_t* labels,
                           int32_t* component_counts, int32_t* row_scratch) {
  PNEUMO_REQUIRE(height > 0 && width > 0 && count >= 0, "label_components_cuda: bad batch shape (" +
                                                            std::to_string(count) + "," + std::to_string(height) + "," +
                                                            std::to_string(width) + ")");
  PNEUMO_REQUIRE(static_cast<long long>(height) * width < INT_MAX,
                 "label_components_cuda: image too large for 32-bit labels");
  PNEUMO_REQUIRE(count <= 65535, "label_components_cuda: at most 65535 images per call");
  if (count == 0) return;
  const long long total = static_cast<long long>(count) * height * width;
  const int pixels_per_image = height * width;

  const dim3 tile_block(kTileWidth, kTileHeight);
  const dim3 tile_grid((width + kTileWidth - 1) / kTileWidth, (height + kTileHeight - 1) / kTileHeight, count);
  local_merge_kernel<<<tile_grid, tile_block>>>(masks, height, width, labels);
  PNEUMO_CUDA_CHECK_LAUNCH();
  boundary_merge_kernel<<<tile_grid, tile_block>>>(masks, height, width, labels);
  PNEUMO_CUDA_CHECK_LAUNCH();
  compress_kernel<<<blocks_for(total, 256), 256>>>(masks, total, pixels_per_image, labels);
  PNEUMO_CUDA_CHECK_LAUNCH();

  const long long rows = static_cast<long long>(count) * height;
  Memory own_scratch;  // only when the caller passed none; freed (synchronising) on return
  if (!row_scratch) {
    own_scratch = Memory(Device::CUDA, label_components_row_scratch_count(count, height) * sizeof(int32_t));
    row_scratch = static_cast<int32_t*>(own_scratch.data());
  }
  int32_t* row_counts_data = row_scratch;          // (N,H)
  int32_t* row_offsets_data = row_scratch + rows;  // (N,H)
  const int rows_per_block = 8;                    // 256 threads, one warp per row
  const int row_blocks = static_cast<int>((rows + rows_per_block - 1) / rows_per_block);
  count_roots_per_row_kernel<<<row_blocks, 32 * rows_per_block>>>(masks, labels, count, height, width, row_counts_data);
  PNEUMO_CUDA_CHECK_LAUNCH();
  scan_rows_per_image_kernel<<<count, 1024>>>(row_counts_data, height, row_offsets_data, component_counts);
  PNEUMO_CUDA_CHECK_LAUNCH();
  label_roots_kernel<<<row_blocks, 32 * rows_per_block>>>(masks, count, height, width, row_offsets_data, labels);
  PNEUMO_CUDA_CHECK_LAUNCH();
  spread_root_labels_kernel<<<blocks_for(total, 256), 256>>>(masks, total, pixels_per_image, labels);
  PNEUMO_CUDA_CHECK_LAUNCH();
  make_root_labels_positive_kernel<<<blocks_for(total, 256), 256>>>(total, labels);
  PNEUMO_CUDA_CHECK_LAUNCH();
  // own_scratch, if any, is freed when this returns; cudaFree waits for the kernels.
}

void component_bounds_cuda(const int32_t* labels, int count, int height, int width, const int32_t* component_offsets,
                           int total_components, ComponentBounds* bounds) {
  PNEUMO_REQUIRE(height > 0 && width > 0 && count >= 0 && count <= 65535 && total_components >= 0,
                 "component_bounds_cuda: bad batch shape");
  if (count == 0 || total_components == 0) return;
  initialize_bounds_kernel<<<(total_components + 255) / 256, 256>>>(total_components, bounds);
  PNEUMO_CUDA_CHECK_LAUNCH();
  const dim3 block(32, 8);
  const dim3 grid((width + 31) / 32, (height + 7) / 8, count);
  component_bounds_kernel<<<grid, block>>>(labels, height, width, component_offsets, bounds);
  PNEUMO_CUDA_CHECK_LAUNCH();
}

}  // namespace pneumo
