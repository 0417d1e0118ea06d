// resize_like_skimage and box_mask against scikit-image 0.19.3's own outputs, written by
// tests/data/make_resize_reference.py (inputs are regenerated here from the same integer formulas).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "data/input/mask.h"
#include "data/input/resize.h"
#include "engine/check.h"
#include "kernels/resize_math.h"
#include "tests/support/fixture_array.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

// Tolerance: scikit-image works in float64 from exact inputs; we read float32 inputs (8-bit
// values /255 rounded to float32: error <= 3e-8), accumulate in double and round the result to
// float32 once (<= 6e-8 for values in [0,1]). 2e-7 bounds the sum with margin.
constexpr double kTolerance = 2e-7;

using Array = pneumo::testing::FixtureArray;

Array read_array(const std::string& name) {
  return pneumo::testing::read_fixture_array(pneumo::testing::fixture_path("data/" + name));
}

// The same formulas as make_resize_reference.py.
std::vector<float> pattern_u8(int height, int width) {
  std::vector<float> image(static_cast<size_t>(height) * width);
  for (int64_t r = 0; r < height; ++r)
    for (int64_t c = 0; c < width; ++c) {
      int64_t value = (r * c) / 512 + r / 5 + c / 7 + (r * 7919 + c * 104729 + r * c * 13) % 41;
      image[r * width + c] = static_cast<float>(value % 256) / 255.0f;  // img_as_float
    }
  return image;
}
std::vector<float> pattern_probability(int height, int width) {
  std::vector<float> image(static_cast<size_t>(height) * width);
  for (int64_t r = 0; r < height; ++r)
    for (int64_t c = 0; c < width; ++c)
      image[r * width + c] = static_cast<float>((r * 131 + c * 71 + r * c * 3) % 1000) / 999.0f;
  return image;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst;
}

void check_case(const char* name, const std::vector<float>& input, int height, int width, int out_height,
                int out_width) {
  Array reference = read_array(name);
  REQUIRE(reference.shape == std::vector<uint32_t>{uint32_t(out_height), uint32_t(out_width)});
  for (bool threads : {true, false}) {
    std::vector<float> ours = pneumo::resize_like_skimage(input.data(), height, width, out_height, out_width, threads);
    double error = max_abs_difference(ours, reference.as<float>());
    INFO(std::string(name) << " threads=" << threads << " max abs error " << error);
    CHECK(error <= kTolerance);
  }
}

}  // namespace

TEST_CASE("mirror index is numpy.pad 'reflect' (ndimage 'mirror'), repeated far out") {
  // Naive reference: walk from 0 towards `index`, bouncing off both ends without repeating them.
  for (int size : {1, 2, 3, 7}) {
    for (int index = -40; index <= 40; ++index) {
      int position = 0, direction = index >= 0 ? 1 : -1;
      for (int step = 0; size > 1 && step < std::abs(index); ++step) {
        if (position + direction < 0 || position + direction >= size) direction = -direction;
        position += direction;
      }
      CHECK(pneumo::resize_mirror_index(index, size) == position);
    }
  }
  CHECK(pneumo::resize_mirror_index(-1, 4) == 1);  // d c b | a b c d
  CHECK(pneumo::resize_mirror_index(4, 4) == 2);   // a b c d | c b a
}

TEST_CASE("shrink 1024 -> 256 from an 8-bit image matches skimage") {
  check_case("resize_u8_1024_to_256.arr", pattern_u8(1024, 1024), 1024, 1024, 256, 256);
}

TEST_CASE("non-square, non-integer factors match skimage") {
  check_case("resize_u8_300x200_to_70x90.arr", pattern_u8(300, 200), 300, 200, 70, 90);
  check_case("resize_p_100x80_to_37x153.arr", pattern_probability(100, 80), 100, 80, 37, 153);
}

TEST_CASE("upscaling probability maps matches skimage") {
  check_case("resize_p_16_to_64.arr", pattern_probability(16, 16), 16, 16, 64, 64);
  Array rows = read_array("resize_p_256_to_1024_rows.arr");
  Array reference = read_array("resize_p_256_to_1024.arr");
  std::vector<float> input = pattern_probability(256, 256);
  std::vector<float> ours = pneumo::resize_like_skimage(input.data(), 256, 256, 1024, 1024);
  std::vector<int32_t> row_indices = rows.as<int32_t>();
  std::vector<float> expected = reference.as<float>();
  REQUIRE(expected.size() == row_indices.size() * 1024);
  double worst = 0.0;
  for (size_t i = 0; i < row_indices.size(); ++i)
    for (int x = 0; x < 1024; ++x)
      worst = std::max(worst, std::fabs(double(ours[row_indices[i] * 1024 + x]) - expected[i * 1024 + x]));
  INFO("max abs error " << worst);
  CHECK(worst <= kTolerance);

  // The per-element sample a CUDA kernel uses gives the same upscale.
  double sample_worst = 0.0;
  for (int y = 0; y < 1024; ++y)
    for (int x = 0; x < 1024; ++x) {
      float sample = pneumo::resize_bilinear_sample(input.data(), 256, 256, pneumo::resize_source_coordinate(y, 0.25),
                                                    pneumo::resize_source_coordinate(x, 0.25));
      sample_worst = std::max(sample_worst, std::fabs(double(sample) - ours[y * 1024 + x]));
    }
  CHECK(sample_worst <= 1e-7);
}

TEST_CASE("degenerate sizes: kernel longer than the image, a single row") {
  check_case("resize_p_10x7_to_2x3.arr", pattern_probability(10, 7), 10, 7, 2, 3);
  check_case("resize_p_1x20_to_3x5.arr", pattern_probability(1, 20), 1, 20, 3, 5);
}

TEST_CASE("same size is the identity, constant images stay constant") {
  std::vector<float> input = pattern_probability(9, 11);
  CHECK(pneumo::resize_like_skimage(input.data(), 9, 11, 9, 11) == input);
  std::vector<float> constant(50 * 40, 0.25f);
  for (float value : pneumo::resize_like_skimage(constant.data(), 50, 40, 13, 77)) CHECK(value == 0.25f);
  CHECK_THROWS_AS(pneumo::resize_like_skimage(input.data(), 9, 11, 0, 5), pneumo::Error);
}

TEST_CASE("box masks match skimage's resize(...) > 0.5, ties included") {
  struct MaskCase {
    const char* name;
    int height, width, size;
    std::vector<pneumo::Box> boxes;
  };
  std::vector<MaskCase> cases = {
      {"mask_1024_to_256.arr",
       1024,
       1024,
       256,
       {{264, 152, 213, 379}, {562, 152, 256, 453}, {900, 850, 200, 300}, {-20, 10, 60, 50}, {2, 602, 50, 46}}},
      {"mask_600x800_to_128.arr", 600, 800, 128, {{100, 50, 300, 200}, {450, 333, 123, 250}}},
  };
  for (const MaskCase& test : cases) {
    std::vector<uint8_t> reference = read_array(test.name).as<uint8_t>();
    std::vector<float> mask = pneumo::box_mask(test.boxes, test.height, test.width, test.size);
    REQUIRE(mask.size() == reference.size());
    int mismatches = 0, ties = 0, ones = 0;
    for (size_t i = 0; i < mask.size(); ++i) {
      CHECK((mask[i] == 0.0f || mask[i] == 1.0f));
      ties += reference[i] >= 2;
      ones += mask[i] == 1.0f;
      mismatches += mask[i] != static_cast<float>(reference[i] & 1);
    }
    INFO(std::string(test.name) << ": " << ties << " ties, " << ones << " ones");
    CHECK(mismatches == 0);
    CHECK(ones > 0);
  }
  // The 1024 case has boxes with edges midway between sample taps (x = 2 mod 4): ties exist.
  std::vector<uint8_t> reference = read_array("mask_1024_to_256.arr").as<uint8_t>();
  int ties = 0;
  for (uint8_t value : reference) ties += value >= 2;
  CHECK(ties > 0);
  CHECK(pneumo::box_mask({}, 1024, 1024, 256) == std::vector<float>(256 * 256, 0.0f));
}
