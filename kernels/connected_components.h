// Connected-component labelling of binary masks, 8-connectivity (skimage.measure.label's default
// for 2-D images), and the bounding box of each component. Mask in (nonzero = foreground),
// labels out: 0 = background, components numbered 1..n in raster order of their first pixel,
// exactly as skimage numbers them. The CPU and CUDA versions give identical labels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pneumo {

// Inclusive pixel bounds of one component: its pixels lie in [min_x, max_x] x [min_y, max_y].
struct ComponentBounds {
  int32_t min_x, min_y, max_x, max_y;
};

// Labels one mask (H,W) into labels (H,W) (overwritten); returns the number of components n.
// Two-pass scan with union-find over provisional labels (Wu, Otoo and Suzuki's SAUF).
int label_components_cpu(const uint8_t* mask, int height, int width, int32_t* labels);

// Labels a batch: masks (N,H,W) -> labels (N,H,W), component_counts (N); images run in parallel
// on the CPU threads (engine/cpu_threads.h). Same result as label_components_cpu per image.
void label_components_batch_cpu(const uint8_t* masks, int count, int height, int width, int32_t* labels,
                                int32_t* component_counts);

// Bounds of components 1..component_count of one labelled image (H,W); element k-1 is label k.
std::vector<ComponentBounds> component_bounds_cpu(const int32_t* labels, int height, int width, int component_count);

#ifdef PNEUMO_HAVE_CUDA
// CUDA back end (kernels/cuda/connected_components.cu). All pointers are device memory; the
// work is queued on the default stream and the call returns after its last launch is checked.
//
// Labels a batch: masks (N,H,W) -> labels (N,H,W), component_counts (N). Block-based union-find
// (Playne and Hawick 2018) then a relabelling pass to skimage's raster-order numbering.
// row_scratch: 2*N*H device int32s the call may overwrite (per-row root counts and offsets);
// null allocates them for this call (a cudaMalloc and a synchronising cudaFree), so callers that
// run per batch pass a buffer they keep (label_components_row_scratch_count).
void label_components_cuda(const uint8_t* masks, int count, int height, int width, int32_t* labels,
                           int32_t* component_counts, int32_t* row_scratch = nullptr);
inline size_t label_components_row_scratch_count(int count, int height) {
  return 2 * static_cast<size_t>(count) * static_cast<size_t>(height);
}

// Bounds of every component of a labelled batch (N,H,W). component_offsets (N) holds, per image,
// the index in `bounds` of its label 1 (an exclusive prefix sum of the component counts);
// bounds (total components) is overwritten.
void component_bounds_cuda(const int32_t* labels, int count, int height, int width, const int32_t* component_offsets,
                           int total_components, ComponentBounds* bounds);
#endif

}  // namespace pneumo
