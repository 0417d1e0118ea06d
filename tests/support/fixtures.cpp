#include "tests/support/fixtures.h"

#include <cstdio>

#include "engine/device.h"

namespace pneumo::testing {

std::string fixture_path(const std::string& name) {
  return std::string(PNEUMO_SOURCE_DIR) + "/tests/fixtures/" + name;
}

bool gpu_available(const char* test_name) {
  std::string reason = cuda_unavailable_reason();
  if (reason.empty()) return true;
  std::printf("SKIPPED %s: %s\n", test_name, reason.c_str());
  return false;
}

}  // namespace pneumo::testing
