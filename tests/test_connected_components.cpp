// Connected components: the CPU labelling against a naive flood fill written here (random masks
// of many densities and sizes, hand-made edge cases), the batched CPU call against per-image
// calls, and the CUDA labelling and bounds against the CPU exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/memory.h"
#include "kernels/connected_components.h"
#include "tests/support/fixtures.h"

namespace {

using pneumo::ComponentBounds;

struct Mask {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // (H,W)
  uint8_t& at(int y, int x) { return pixels[static_cast<size_t>(y) * width + x]; }
};

Mask blank_mask(int height, int width) {
  return Mask{height, width, std::vector<uint8_t>(static_cast<size_t>(height) * width, 0)};
}

Mask random_mask(int height, int width, double density, uint32_t seed) {
  Mask mask = blank_mask(height, width);
  std::mt19937 generator(seed);
  std::bernoulli_distribution foreground(density);
  for (uint8_t& pixel : mask.pixels) pixel = foreground(generator) ? 1 : 0;
  return mask;
}

// Reference: scan pixels in raster order; an unlabelled foreground pixel starts a new label and
// a depth-first flood fill over its 8 neighbours. Labels come out in raster order of first pixels.
int flood_fill_labels(const Mask& mask, std::vector<int32_t>& labels) {
  labels.assign(mask.pixels.size(), 0);
  int count = 0;
  std::vector<int> stack;
  for (int start = 0; start < mask.height * mask.width; ++start) {
    if (!mask.pixels[start] || labels[start]) continue;
    ++count;
    labels[start] = count;
    stack.push_back(start);
    while (!stack.empty()) {
      const int index = stack.back();
      stack.pop_back();
      const int y = index / mask.width, x = index % mask.width;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int ny = y + dy, nx = x + dx;
          if (ny < 0 || nx < 0 || ny >= mask.height || nx >= mask.width) continue;
          const int neighbour = ny * mask.width + nx;
          if (mask.pixels[neighbour] && !labels[neighbour]) {
            labels[neighbour] = count;
            stack.push_back(neighbour);
          }
        }
      }
    }
  }
  return count;
}

std::vector<int32_t> cpu_labels(const Mask& mask, int& count) {
  std::vector<int32_t> labels(mask.pixels.size(), -7);
  count = pneumo::label_components_cpu(mask.pixels.data(), mask.height, mask.width, labels.data());
  return labels;
}

void check_against_flood_fill(const Mask& mask, const std::string& what) {
  INFO(what << " (" << mask.height << "x" << mask.width << ")");
  std::vector<int32_t> expected;
  const int expected_count = flood_fill_labels(mask, expected);
  int count = 0;
  std::vector<int32_t> labels = cpu_labels(mask, count);
  CHECK(count == expected_count);
  CHECK(labels == expected);
}

std::vector<ComponentBounds> naive_bounds(const std::vector<int32_t>& labels, int height, int width, int count) {
  std::vector<ComponentBounds> bounds;
  for (int label = 1; label <= count; ++label) {
    ComponentBounds box{width, height, -1, -1};
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        if (labels[static_cast<size_t>(y) * width + x] == label) {
          box.min_x = std::min(box.min_x, x);
          box.max_x = std::max(box.max_x, x);
          box.min_y = std::min(box.min_y, y);
          box.max_y = std::max(box.max_y, y);
        }
    bounds.push_back(box);
  }
  return bounds;
}

bool same_bounds(const std::vector<ComponentBounds>& a, const std::vector<ComponentBounds>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].min_x != b[k].min_x || a[k].min_y != b[k].min_y || a[k].max_x != b[k].max_x || a[k].max_y != b[k].max_y)
      return false;
  return true;
}

// A square spiral corridor of width 1 with gaps of 1: one long connected component.
Mask spiral_mask(int size) {
  Mask mask = blank_mask(size, size);
  int top = 0, left = 0, bottom = size - 1, right = size - 1;
  while (top <= bottom && left <= right) {
    for (int x = left; x <= right; ++x) mask.at(top, x) = 1;
    for (int y = top; y <= bottom; ++y) mask.at(y, right) = 1;
    if (bottom - top >= 2)
      for (int x = left; x <= right; ++x) mask.at(bottom, x) = 1;
    if (right - left >= 2)
      for (int y = top + 2; y <= bottom; ++y) mask.at(y, left) = 1;
    if (left + 2 <= right) mask.at(top + 2, left + 1) = 1;  // step inward
    top += 2;
    left += 2;
    bottom -= 2;
    right -= 2;
  }
  return mask;
}

// The sizes and densities the random tests sweep.
const std::vector<std::pair<int, int>> kSizes = {{1, 1},   {1, 37},  {37, 1},  {2, 2},    {5, 7},
                                                 {16, 16}, {33, 65}, {64, 64}, {100, 31}, {129, 257}};
std::vector<double> densities() {
  std::vector<double> values;
  for (int k = 0; k < 19; ++k) values.push_back(0.05 + 0.05 * k);  // 0.05 .. 0.95
  return values;
}

}  // namespace

TEST_CASE("CPU labelling equals a naive flood fill on random masks of many densities and sizes") {
  uint32_t seed = 1;
  for (auto [height, width] : kSizes)
    for (double density : densities())
      check_against_flood_fill(random_mask(height, width, density, seed++), "density " + std::to_string(density));
}

TEST_CASE("CPU labelling: hand-made edge cases with known counts") {
  int count = -1;

  SUBCASE("empty mask -> no component, all background") {
    Mask mask = blank_mask(9, 11);
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(count == 0);
    CHECK(labels == std::vector<int32_t>(99, 0));
  }
  SUBCASE("full mask -> one component") {
    Mask mask = blank_mask(7, 13);
    std::fill(mask.pixels.begin(), mask.pixels.end(), 1);
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(count == 1);
    CHECK(labels == std::vector<int32_t>(91, 1));
  }
  SUBCASE("one pixel") {
    Mask mask = blank_mask(5, 6);
    mask.at(3, 4) = 1;
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(count == 1);
    CHECK(labels[3 * 6 + 4] == 1);
    check_against_flood_fill(mask, "one pixel");
  }
  SUBCASE("checkerboard is one component with 8-connectivity") {
    Mask mask = blank_mask(10, 9);
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 9; ++x) mask.at(y, x) = (x + y) % 2 == 0;
    cpu_labels(mask, count);
    CHECK(count == 1);
    check_against_flood_fill(mask, "checkerboard");
  }
  SUBCASE("anti-diagonal chain joins only through NE neighbours") {
    Mask mask = blank_mask(8, 8);
    for (int k = 0; k < 8; ++k) mask.at(k, 7 - k) = 1;
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(count == 1);
    CHECK(labels[7 * 8 + 0] == 1);
  }
  SUBCASE("skimage's own example numbering: first pixels in raster order") {
    // skimage.measure.label of this mask gives
    //   0 0 0 0 1 / 2 0 0 1 0 / 0 0 1 0 0 / 0 0 0 0 0 / 0 0 0 0 0  (checked with skimage 0.19).
    Mask mask = blank_mask(5, 5);
    mask.at(0, 4) = mask.at(1, 0) = mask.at(1, 3) = mask.at(2, 2) = 1;
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(count == 2);
    CHECK(labels[0 * 5 + 4] == 1);
    CHECK(labels[1 * 5 + 3] == 1);
    CHECK(labels[2 * 5 + 2] == 1);
    CHECK(labels[1 * 5 + 0] == 2);
  }
  SUBCASE("a V whose arms meet late keeps the left arm's (first) label") {
    // Row 0: arms at x=0 and x=6 start as two provisional labels; they meet at row 3.
    Mask mask = blank_mask(5, 7);
    for (int k = 0; k < 4; ++k) mask.at(k, k) = mask.at(k, 6 - k) = 1;
    mask.at(0, 3) = 1;  // a separate dot between the arms, first seen after the left arm
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(count == 2);
    CHECK(labels[0] == 1);
    CHECK(labels[6] == 1);
    CHECK(labels[3] == 2);
    CHECK(labels[3 * 7 + 3] == 1);
  }
  SUBCASE("spiral: one long component crossing itself many rows") {
    Mask mask = spiral_mask(41);
    cpu_labels(mask, count);
    CHECK(count == 1);
    check_against_flood_fill(mask, "spiral");
  }
  SUBCASE("components touching every border") {
    Mask mask = blank_mask(6, 8);
    for (int x = 0; x < 8; ++x) mask.at(0, x) = 1;  // top edge
    for (int y = 2; y < 6; ++y) mask.at(y, 0) = 1;  // left edge, separate from the top
    for (int y = 2; y < 6; ++y) mask.at(y, 7) = 1;  // right edge
    for (int x = 2; x < 6; ++x) mask.at(5, x) = 1;  // bottom edge, separate from the sides
    cpu_labels(mask, count);
    CHECK(count == 4);
    check_against_flood_fill(mask, "borders");
  }
  SUBCASE("1xN and Nx1 strips") {
    Mask row = blank_mask(1, 10);
    for (int x : {0, 1, 3, 5, 6, 7, 9}) row.at(0, x) = 1;
    std::vector<int32_t> labels = cpu_labels(row, count);
    CHECK(count == 4);
    CHECK(labels == std::vector<int32_t>{1, 1, 0, 2, 0, 3, 3, 3, 0, 4});
    Mask column = blank_mask(10, 1);
    for (int y : {0, 1, 3, 5, 6, 7, 9}) column.at(y, 0) = 1;
    labels = cpu_labels(column, count);
    CHECK(count == 4);
    CHECK(labels == std::vector<int32_t>{1, 1, 0, 2, 0, 3, 3, 3, 0, 4});
  }
}

TEST_CASE("CPU component bounds equal a naive scan") {
  uint32_t seed = 100;
  for (double density : {0.05, 0.3, 0.6}) {
    Mask mask = random_mask(70, 90, density, seed++);
    int count = 0;
    std::vector<int32_t> labels = cpu_labels(mask, count);
    CHECK(same_bounds(pneumo::component_bounds_cpu(labels.data(), 70, 90, count), naive_bounds(labels, 70, 90, count)));
  }
}

TEST_CASE("batched CPU labelling equals per-image labelling") {
  const int count = 7, height = 45, width = 67;
  std::vector<uint8_t> masks;  // (N,H,W)
  std::vector<int32_t> expected_labels;
  std::vector<int32_t> expected_counts;
  for (int n = 0; n < count; ++n) {
    Mask mask = random_mask(height, width, 0.1 + 0.12 * n, 500 + n);
    masks.insert(masks.end(), mask.pixels.begin(), mask.pixels.end());
    int components = 0;
    std::vector<int32_t> labels = cpu_labels(mask, components);
    expected_labels.insert(expected_labels.end(), labels.begin(), labels.end());
    expected_counts.push_back(components);
  }
  std::vector<int32_t> labels(masks.size(), -1), counts(count, -1);
  pneumo::label_components_batch_cpu(masks.data(), count, height, width, labels.data(), counts.data());
  CHECK(counts == expected_counts);
  CHECK(labels == expected_labels);
}

#ifdef PNEUMO_HAVE_CUDA
namespace {

// Labels a batch of equal-size masks on the GPU and checks labels, counts and bounds against the
// CPU exactly.
void check_gpu_equals_cpu(const std::vector<Mask>& batch, const std::string& what) {
  INFO(what);
  const int count = static_cast<int>(batch.size());
  const int height = batch[0].height, width = batch[0].width;
  const size_t pixels = static_cast<size_t>(height) * width;
  std::vector<uint8_t> masks;  // (N,H,W)
  for (const Mask& mask : batch) masks.insert(masks.end(), mask.pixels.begin(), mask.pixels.end());
  std::vector<int32_t> expected_labels(masks.size()), expected_counts(count);
  pneumo::label_components_batch_cpu(masks.data(), count, height, width, expected_labels.data(),
                                     expected_counts.data());

  using pneumo::Device;
  pneumo::Memory device_masks(Device::CUDA, masks.size());
  pneumo::Memory device_labels(Device::CUDA, masks.size() * sizeof(int32_t));
  pneumo::Memory device_counts(Device::CUDA, count * sizeof(int32_t));
  pneumo::copy_bytes(device_masks.data(), Device::CUDA, masks.data(), Device::CPU, masks.size());
  pneumo::label_components_cuda(static_cast<const uint8_t*>(device_masks.data()), count, height, width,
                                static_cast<int32_t*>(device_labels.data()),
                                static_cast<int32_t*>(device_counts.data()));
  std::vector<int32_t> labels(masks.size()), counts(count);
  pneumo::copy_bytes(labels.data(), Device::CPU, device_labels.data(), Device::CUDA, labels.size() * sizeof(int32_t));
  pneumo::copy_bytes(counts.data(), Device::CPU, device_counts.data(), Device::CUDA, counts.size() * sizeof(int32_t));
  CHECK(counts == expected_counts);
  CHECK(labels == expected_labels);

  std::vector<int32_t> offsets(count);
  std::vector<ComponentBounds> expected_bounds;
  int total = 0;
  for (int n = 0; n < count; ++n) {
    offsets[n] = total;
    total += expected_counts[n];
    std::vector<ComponentBounds> image_bounds =
        pneumo::component_bounds_cpu(expected_labels.data() + n * pixels, height, width, expected_counts[n]);
    expected_bounds.insert(expected_bounds.end(), image_bounds.begin(), image_bounds.end());
  }
  if (total == 0) return;
  pneumo::Memory device_offsets(Device::CUDA, count * sizeof(int32_t));
  pneumo::Memory device_bounds(Device::CUDA, total * sizeof(ComponentBounds));
  pneumo::copy_bytes(device_offsets.data(), Device::CUDA, offsets.data(), Device::CPU, count * sizeof(int32_t));
  pneumo::component_bounds_cuda(static_cast<const int32_t*>(device_labels.data()), count, height, width,
                                static_cast<const int32_t*>(device_offsets.data()), total,
                                static_cast<ComponentBounds*>(device_bounds.data()));
  std::vector<ComponentBounds> bounds(total);
  pneumo::copy_bytes(bounds.data(), Device::CPU, device_bounds.data(), Device::CUDA, total * sizeof(ComponentBounds));
  CHECK(same_bounds(bounds, expected_bounds));
}

}  // namespace

PNEUMO_GPU_TEST_CASE("GPU labelling and bounds equal the CPU exactly") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  uint32_t seed = 9000;
  for (auto [height, width] : kSizes) {
    std::vector<Mask> batch;
    for (double density : densities()) batch.push_back(random_mask(height, width, density, seed++));
    check_gpu_equals_cpu(batch, "random " + std::to_string(height) + "x" + std::to_string(width));
  }
  // Sizes that are and are not multiples of the 32x16 tiles, at the network's output size.
  for (auto [height, width] : std::vector<std::pair<int, int>>{{1024, 1024}, {1000, 1001}, {300, 1}, {1, 300}}) {
    std::vector<Mask> batch;
    for (double density : {0.05, 0.4, 0.55, 0.9}) batch.push_back(random_mask(height, width, density, seed++));
    check_gpu_equals_cpu(batch, "random " + std::to_string(height) + "x" + std::to_string(width));
  }
  std::vector<Mask> edge_cases;
  edge_cases.push_back(blank_mask(97, 97));
  edge_cases.push_back(spiral_mask(97));
  Mask full = blank_mask(97, 97);
  std::fill(full.pixels.begin(), full.pixels.end(), 1);
  edge_cases.push_back(full);
  Mask checkerboard = blank_mask(97, 97);
  for (int y = 0; y < 97; ++y)
    for (int x = 0; x < 97; ++x) checkerboard.at(y, x) = (x + y) % 2 == 0;
  edge_cases.push_back(checkerboard);
  check_gpu_equals_cpu(edge_cases, "edge cases 97x97");
}
#endif
