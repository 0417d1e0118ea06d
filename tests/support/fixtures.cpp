#include "tests/support/fixtures.h"

#include <doctest/doctest.h>

#include <cstdio>

#include "engine/device.h"

namespace pneumo::testing {

namespace {
bool running_gpu_entry = false;  // set by main for `<binary> --gpu`
}

void set_running_gpu_entry(bool gpu_entry) { running_gpu_entry = gpu_entry; }

std::string fixture_path(const std::string& name) { return std::string(PNEUMO_SOURCE_DIR) + "/tests/fixtures/" + name; }

bool gpu_available(const char* test_name) {
  // A GPU test outside the "gpu" suite would print SKIPPED and pass in the CPU entry: the old lie.
  if (!running_gpu_entry) {
    FAIL_CHECK(std::string(test_name) << ": a test that needs a GPU must be declared with PNEUMO_GPU_TEST_CASE");
    return false;
  }
  std::string reason = cuda_unavailable_reason();
  if (reason.empty()) return true;
  std::printf("SKIPPED %s: %s\n", test_name, reason.c_str());
  return false;
}

}  // namespace pneumo::testing
