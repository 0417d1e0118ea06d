#include "tests/support/fixture_array.h"

#include <doctest/doctest.h>

#include <fstream>

namespace pneumo::testing {

FixtureArray read_fixture_array(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  REQUIRE_MESSAGE(file.good(), "missing fixture " << path);
  char magic[4];
  uint32_t header[2];
  file.read(magic, 4);
  file.read(reinterpret_cast<char*>(header), sizeof(header));
  REQUIRE_MESSAGE(std::memcmp(magic, "PNA1", 4) == 0, path << ": not a PNA1 array");
  FixtureArray array;
  array.dtype = header[0];
  REQUIRE_MESSAGE((array.dtype >= 1 && array.dtype <= 5), path << ": unknown dtype " << array.dtype);
  array.shape.resize(header[1]);
  file.read(reinterpret_cast<char*>(array.shape.data()), 4 * static_cast<std::streamsize>(header[1]));
  const int item = array.dtype == 2 ? 1 : array.dtype == 4 ? 8 : array.dtype == 5 ? 2 : 4;
  array.bytes.resize(static_cast<size_t>(array.count() * item));
  file.read(array.bytes.data(), static_cast<std::streamsize>(array.bytes.size()));
  REQUIRE_MESSAGE(file.good(), path << ": truncated");
  return array;
}

}  // namespace pneumo::testing
