// The .arr fixture format the reference scripts write (tests/data/make_resize_reference.py):
// "PNA1", uint32 dtype code (1 float32, 2 uint8, 3 int32, 4 float64, 5 uint16), uint32 rank, rank uint32
// dimensions, then the values, little-endian, row-major. One reader for every test.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pneumo::testing {

struct FixtureArray {
  uint32_t dtype = 0;
  std::vector<uint32_t> shape;
  std::vector<char> bytes;
  int64_t count() const {
    int64_t n = 1;
    for (uint32_t d : shape) n *= d;
    return n;
  }
  template <typename T>
  std::vector<T> as() const {
    std::vector<T> values(static_cast<size_t>(count()));
    std::memcpy(values.data(), bytes.data(), bytes.size());
    return values;
  }
};

// Reads `path`; fails the current test case (doctest REQUIRE) on a missing or malformed file.
FixtureArray read_fixture_array(const std::string& path);

}  // namespace pneumo::testing
