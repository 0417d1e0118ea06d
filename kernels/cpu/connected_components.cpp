// CPU connected-component labelling: Wu, Otoo and Suzuki's scan-plus-array-union-find (SAUF),
// 8-connectivity. See data/evaluation/postprocess.md for a walk-through.
#include "kernels/connected_components.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "engine/check.h"
#include "engine/cpu_threads.h"

namespace pneumo {
namespace {

// The union-find forest over provisional labels: parent[k] <= k, and each root is the smallest
// provisional label of its set. Because provisional labels are handed out in raster order, the
// root of a component is the label created at its first pixel.
inline int32_t find_root(const int32_t* parent, int32_t label) {
  while (parent[label] < label) label = parent[label];
  return label;
}

// Points every label on the path from `label` to its root at `root` (path compression).
inline void set_root(int32_t* parent, int32_t label, int32_t root) {
  while (parent[label] < label) {
    int32_t next = parent[label];
    parent[label] = root;
    label = next;
  }
  parent[label] = root;
}

// Joins the sets of a and b; returns the new root (the smaller of the two roots).
inline int32_t merge(int32_t* parent, int32_t a, int32_t b) {
  int32_t root = find_root(parent, a);
  if (a != b) {
    int32_t root_b = find_root(parent, b);
    if (root_b < root) root = root_b;
    set_root(parent, b, root);
  }
  set_root(parent, a, root);
  return root;
}

// Upper bound on provisional labels for 8-connectivity: a new label needs its W, NW, N and NE
// neighbours to be background, so at most one per 2x2 cell (+1 for the unused label 0).
int64_t provisional_label_capacity(int height, int width) {
  return static_cast<int64_t>((height + 1) / 2) * ((width + 1) / 2) + 1;
}

int label_with_scratch(const uint8_t* mask, int height, int width, int32_t* labels, std::vector<int32_t>& parent) {
  const int64_t capacity = provisional_label_capacity(height, width);
  if (static_cast<int64_t>(parent.size()) < capacity) parent.resize(static_cast<size_t>(capacity));
  int32_t* p = parent.data();
  p[0] = 0;
  int32_t next_label = 1;

  // First pass. For the current pixel e the already-visited neighbours are
  //   a b c      a = NW, b = N, c = NE
  //   d e        d = W
  // SAUF's decision tree reads as few of them as possible: if b is foreground it is already
  // joined to a, c and d (they are its neighbours and were visited after or with it).
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = mask + static_cast<int64_t>(y) * width;
    int32_t* label_row = labels + static_cast<int64_t>(y) * width;
    const int32_t* label_up = y > 0 ? label_row - width : nullptr;
    for (int x = 0; x < width; ++x) {
      if (!row[x]) {
        // Background is most of a mask: skip 8 background pixels at a time when possible.
        uint64_t eight;
        if (x + 8 <= width && (std::memcpy(&eight, row + x, 8), eight == 0)) {
          std::memset(label_row + x, 0, 8 * sizeof(int32_t));
          x += 7;
        } else {
          label_row[x] = 0;
        }
        continue;
      }
      const int32_t b = label_up ? label_up[x] : 0;
      if (b) {
        label_row[x] = b;
        continue;
      }
      const int32_t a = (label_up && x > 0) ? label_up[x - 1] : 0;
      const int32_t c = (label_up && x + 1 < width) ? label_up[x + 1] : 0;
      const int32_t d = x > 0 ? label_row[x - 1] : 0;
      if (c) {
        // c touches neither a nor d, so they may belong to different sets still.
        if (a) {
          label_row[x] = merge(p, c, a);
        } else if (d) {
          label_row[x] = merge(p, c, d);
        } else {
          label_row[x] = c;
        }
      } else if (a) {
        label_row[x] = a;  // a and d are neighbours, so already joined
      } else if (d) {
        label_row[x] = d;
      } else {
        p[next_label] = next_label;
        label_row[x] = next_label++;
      }
    }
  }

  // Flatten: roots get consecutive final labels in increasing order (= raster order of each
  // component's first pixel); every other label takes its parent's final label, which is known
  // because parent[k] < k.
  int32_t component_count = 0;
  for (int32_t k = 1; k < next_label; ++k) {
    if (p[k] < k) {
      p[k] = p[p[k]];
    } else {
      p[k] = ++component_count;
    }
  }
  const int64_t pixel_count = static_cast<int64_t>(height) * width;
  for (int64_t i = 0; i < pixel_count; ++i) labels[i] = p[labels[i]];
  return component_count;
}

void require_mask_shape(int height, int width) {
  PNEUMO_REQUIRE(height > 0 && width > 0, "connected components: mask size must be positive, got " +
                                              std::to_string(height) + "x" + std::to_string(width));
  PNEUMO_REQUIRE(static_cast<int64_t>(height) * width < std::numeric_limits<int32_t>::max(),
                 "connected components: mask too large for 32-bit labels");
}

}  // namespace

int label_components_cpu(const uint8_t* mask, int height, int width, int32_t* labels) {
  require_mask_shape(height, width);
  std::vector<int32_t> parent;
  return label_with_scratch(mask, height, width, labels, parent);
}

void label_components_batch_cpu(const uint8_t* masks, int count, int height, int width, int32_t* labels,
                                int32_t* component_counts) {
  require_mask_shape(height, width);
  PNEUMO_REQUIRE(count >= 0, "connected components: negative batch size");
  const int64_t pixel_count = static_cast<int64_t>(height) * width;
  parallel_for(count, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> parent;  // reused across this thread's images
    for (int64_t n = begin; n < end; ++n) {
      component_counts[n] =
          label_with_scratch(masks + n * pixel_count, height, width, labels + n * pixel_count, parent);
    }
  });
}

std::vector<ComponentBounds> component_bounds_cpu(const int32_t* labels, int height, int width, int component_count) {
  std::vector<ComponentBounds> bounds(static_cast<size_t>(component_count), ComponentBounds{width, height, -1, -1});
  // Row by row, one update per run of equal labels.
  for (int y = 0; y < height; ++y) {
    const int32_t* row = labels + static_cast<int64_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      const int32_t label = row[x];
      if (!label) continue;
      PNEUMO_REQUIRE(label > 0 && label <= component_count, "component_bounds_cpu: label " + std::to_string(label) +
                                                                " outside 1.." + std::to_string(component_count));
      const int run_start = x;
      while (x + 1 < width && row[x + 1] == label) ++x;
      ComponentBounds& box = bounds[static_cast<size_t>(label - 1)];
      box.min_x = std::min(box.min_x, run_start);
      box.max_x = std::max(box.max_x, x);
      box.min_y = std::min(box.min_y, y);
      box.max_y = std::max(box.max_y, y);
    }
  }
  return bounds;
}

}  // namespace pneumo
