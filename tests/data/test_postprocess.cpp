// Post-processing (probability map -> boxes with confidences) against the notebook's own cell run
// by scikit-image (tests/data/make_postprocess_reference.py -> tests/fixtures/postprocess/), the
// batched CPU path against single maps, and the GPU path against the CPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/evaluation/postprocess.h"
#include "engine/check.h"
#include "engine/tensor.h"
#include "tests/support/fixtures.h"

namespace {

using pneumo::PostprocessOptions;
using pneumo::ScoredBox;

struct ReferenceCase {
  std::string name;
  int height = 0, width = 0;
  PostprocessOptions options;
  std::vector<float> probabilities;  // (H,W)
  std::vector<ScoredBox> boxes;      // skimage's, in regionprops order
};

std::vector<ReferenceCase> read_reference() {
  const std::string path = pneumo::testing::fixture_path("postprocess/reference.txt");
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "missing fixture " << path);
  std::vector<ReferenceCase> cases;
  std::string word;
  while (file >> word) {
    if (word[0] == '#') {
      std::getline(file, word);
      continue;
    }
    REQUIRE(word == "map");
    ReferenceCase reference;
    file >> reference.name >> reference.height >> reference.width >> reference.options.output_height >>
        reference.options.output_width >> reference.options.threshold;
    reference.probabilities.resize(static_cast<size_t>(reference.height) * reference.width);
    for (float& value : reference.probabilities) file >> value;
    int count = 0;
    file >> word >> count;
    REQUIRE(word == "boxes");
    for (int k = 0; k < count; ++k) {
      ScoredBox scored;
      file >> scored.confidence >> scored.box.x >> scored.box.y >> scored.box.width >> scored.box.height;
      reference.boxes.push_back(scored);
    }
    REQUIRE(file.good());
    cases.push_back(reference);
  }
  return cases;
}

std::string describe(const std::vector<ScoredBox>& boxes) {
  std::ostringstream text;
  for (const ScoredBox& b : boxes)
    text << "[" << b.confidence << " " << b.box.x << " " << b.box.y << " " << b.box.width << " " << b.box.height
         << "] ";
  return text.str();
}

// Boxes exactly; confidences within `tolerance` (skimage's np.mean sums float32 pairwise, we sum
// in double: they differ by float rounding, ~1e-7 = one float ulp near 0.5).
void check_same_boxes(const std::vector<ScoredBox>& actual, const std::vector<ScoredBox>& expected, float tolerance) {
  INFO("actual:   " << describe(actual));
  INFO("expected: " << describe(expected));
  REQUIRE(actual.size() == expected.size());
  for (size_t k = 0; k < actual.size(); ++k) {
    CHECK(actual[k].box == expected[k].box);
    CHECK(std::fabs(actual[k].confidence - expected[k].confidence) <= tolerance);
  }
}

pneumo::Tensor map_batch(const std::vector<std::vector<float>>& maps, int height, int width, pneumo::Device device) {
  std::vector<float> values;
  for (const auto& map : maps) values.insert(values.end(), map.begin(), map.end());
  pneumo::Tensor tensor(device, {static_cast<int64_t>(maps.size()), height, width, 1});
  tensor.set_values(values);
  return tensor;
}

// Smooth random maps like a network's output: bilinear upsampling of a coarse random field
// (done here by hand), through a logistic.
std::vector<float> smooth_random_map(int size, int field, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal;
  std::vector<float> coarse(static_cast<size_t>(field) * field);
  for (float& value : coarse) value = normal(generator);
  std::vector<float> map(static_cast<size_t>(size) * size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const float fy = (y + 0.5f) * field / size - 0.5f, fx = (x + 0.5f) * field / size - 0.5f;
      const int y0 = std::max(0, std::min(field - 2, static_cast<int>(std::floor(fy))));
      const int x0 = std::max(0, std::min(field - 2, static_cast<int>(std::floor(fx))));
      const float ty = std::min(1.f, std::max(0.f, fy - y0)), tx = std::min(1.f, std::max(0.f, fx - x0));
      auto at = [&](int yy, int xx) { return coarse[static_cast<size_t>(yy) * field + xx]; };
      const float value = (1 - ty) * ((1 - tx) * at(y0, x0) + tx * at(y0, x0 + 1)) +
                          ty * ((1 - tx) * at(y0 + 1, x0) + tx * at(y0 + 1, x0 + 1));
      map[static_cast<size_t>(y) * size + x] = 1.f / (1.f + std::exp(-4.f * (value - 0.8f)));
    }
  return map;
}

}  // namespace

TEST_CASE("post-processing equals the notebook's skimage cell on the committed maps") {
  std::vector<ReferenceCase> cases = read_reference();
  REQUIRE(cases.size() == 7);
  int total_boxes = 0;
  for (const ReferenceCase& reference : cases) {
    INFO("map " << reference.name);
    std::vector<ScoredBox> boxes = pneumo::boxes_from_probability_map(reference.probabilities.data(), reference.height,
                                                                      reference.width, reference.options);
    check_same_boxes(boxes, reference.boxes, 5e-7f);  // measured: at most 1 float ulp (1.2e-7)
    total_boxes += static_cast<int>(reference.boxes.size());
  }
  CHECK(total_boxes == 52);  // the fixture really exercises boxes (see the script's output)
}

TEST_CASE("post-processing: constant maps and the strict threshold") {
  PostprocessOptions options;
  options.output_height = 40;
  options.output_width = 24;
  std::vector<float> map(10 * 6, 0.75f);
  std::vector<ScoredBox> boxes = pneumo::boxes_from_probability_map(map.data(), 10, 6, options);
  REQUIRE(boxes.size() == 1);
  CHECK(boxes[0].box == pneumo::Box{0, 0, 24, 40});
  CHECK(boxes[0].confidence == 0.75f);  // a resized constant stays that constant

  std::fill(map.begin(), map.end(), 0.5f);  // foreground needs > 0.5, not >= 0.5
  CHECK(pneumo::boxes_from_probability_map(map.data(), 10, 6, options).empty());
  options.threshold = 0.49f;
  CHECK(pneumo::boxes_from_probability_map(map.data(), 10, 6, options).size() == 1);
}

TEST_CASE("post-processing: confidence is the mean over the box rectangle, not the component") {
  // A 4x4 map upscaled 1x (output = input): an L-shaped component of 0.9 whose bounding box also
  // holds two 0.1 pixels and a 0.3 pixel. Rectangle rows 0..2, columns 0..1 (width 2, height 3):
  //   0.9 0.1 / 0.9 0.3 / 0.9 0.9 -> mean = (0.9*4 + 0.1 + 0.3) / 6 = 4.0 / 6 = 0.666667;
  // the component's own mean would be 0.9.
  std::vector<float> map = {0.9f, 0.1f, 0.0f, 0.0f,  //
                            0.9f, 0.3f, 0.0f, 0.0f,  //
                            0.9f, 0.9f, 0.0f, 0.0f,  //
                            0.0f, 0.0f, 0.0f, 0.8f};
  PostprocessOptions options;
  options.output_height = 4;
  options.output_width = 4;
  std::vector<ScoredBox> boxes = pneumo::boxes_from_probability_map(map.data(), 4, 4, options);
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].box == pneumo::Box{0, 0, 2, 3});
  CHECK(boxes[0].confidence == doctest::Approx(4.0 / 6.0).epsilon(1e-6));
  CHECK(boxes[1].box == pneumo::Box{3, 3, 1, 1});
  CHECK(boxes[1].confidence == doctest::Approx(0.8).epsilon(1e-6));
}

TEST_CASE("batched CPU post-processing equals one map at a time") {
  std::vector<std::vector<float>> maps;
  for (uint32_t seed = 1; seed <= 6; ++seed) maps.push_back(smooth_random_map(64, 8, seed));
  PostprocessOptions options;
  options.output_height = options.output_width = 256;
  pneumo::Tensor batch = map_batch(maps, 64, 64, pneumo::Device::CPU);
  std::vector<std::vector<ScoredBox>> boxes = pneumo::boxes_from_probability_maps(batch, options);
  REQUIRE(boxes.size() == maps.size());
  int total = 0;
  for (size_t n = 0; n < maps.size(); ++n) {
    check_same_boxes(boxes[n], pneumo::boxes_from_probability_map(maps[n].data(), 64, 64, options), 0.f);
    total += static_cast<int>(boxes[n].size());
  }
  CHECK(total > 0);
  CHECK_THROWS_AS(pneumo::boxes_from_probability_maps_cpu(pneumo::Tensor(pneumo::Device::CPU, {2, 8, 8, 3})),
                  pneumo::Error);
}

PNEUMO_GPU_TEST_CASE("GPU post-processing equals the CPU: boxes exactly, confidences to float rounding") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  bool wide_index = false;  // the per-element kernels' int32_t and int64_t index paths
  SUBCASE("32-bit index math") { wide_index = false; }
  SUBCASE("64-bit index math, forced") { wide_index = true; }
  pneumo::testing::ForceWideCudaIndex wide(wide_index);
  for (const ReferenceCase& reference : read_reference()) {
    INFO("map " << reference.name);
    pneumo::Tensor map = map_batch({reference.probabilities}, reference.height, reference.width, pneumo::Device::CUDA);
    std::vector<std::vector<ScoredBox>> gpu = pneumo::boxes_from_probability_maps(map, reference.options);
    REQUIRE(gpu.size() == 1);
    check_same_boxes(gpu[0], reference.boxes, 1e-6f);
  }
  // A batch of 32 network-sized maps at the real output size.
  std::vector<std::vector<float>> maps;
  for (uint32_t seed = 100; seed < 132; ++seed) maps.push_back(smooth_random_map(256, 16, seed));
  const PostprocessOptions options;  // 1024x1024, threshold 0.5
  std::vector<std::vector<ScoredBox>> cpu =
      pneumo::boxes_from_probability_maps(map_batch(maps, 256, 256, pneumo::Device::CPU), options);
  std::vector<std::vector<ScoredBox>> gpu =
      pneumo::boxes_from_probability_maps(map_batch(maps, 256, 256, pneumo::Device::CUDA), options);
  REQUIRE(gpu.size() == cpu.size());
  for (size_t n = 0; n < cpu.size(); ++n) {
    INFO("batch map " << n);
    check_same_boxes(gpu[n], cpu[n], 1e-6f);
  }
}
