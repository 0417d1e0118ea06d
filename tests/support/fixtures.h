// Test support: where fixture files live, and the GPU gate that CPU-vs-CUDA tests go through.
#pragma once
#include <string>

#include "engine/device.h"

namespace pneumo::testing {

// PNEUMO_SOURCE_DIR/tests/fixtures/<name>
std::string fixture_path(const std::string& name);

// True when a CUDA GPU is usable; otherwise prints "SKIPPED <file:line>: <reason>" and
// returns false. Outside the binary's --gpu run (a GPU test not declared with
// PNEUMO_GPU_TEST_CASE) it fails the test case instead.
bool gpu_available(const char* test_name);
void set_running_gpu_entry(bool gpu_entry);  // main: true for `<binary> --gpu`

// While alive, the CUDA per-element kernels take their 64-bit index path even on small tensors
// (engine/device.h), so CPU-vs-CUDA parity tests cover both instantiations.
class ForceWideCudaIndex {
 public:
  explicit ForceWideCudaIndex(bool force = true) { set_cuda_wide_index_for_testing(force); }
  ~ForceWideCudaIndex() { set_cuda_wide_index_for_testing(false); }
  ForceWideCudaIndex(const ForceWideCudaIndex&) = delete;
  ForceWideCudaIndex& operator=(const ForceWideCudaIndex&) = delete;
};

}  // namespace pneumo::testing

// A test case that needs a GPU: it belongs to the doctest suite "gpu", which runs only in the
// binary's own `<binary>_gpu` CTest entry (label gpu), shown by CTest as skipped without a GPU
// (tests/support/doctest_main.cpp). Its first line is PNEUMO_REQUIRE_GPU_OR_SKIP().
#define PNEUMO_GPU_TEST_CASE(name) TEST_CASE((name)*doctest::test_suite("gpu"))

// First line of every GPU test: returns from the test case with a printed reason when no GPU
// (a second guard for a binary run by hand with its own filters).
#define PNEUMO_REQUIRE_GPU_OR_SKIP()                                                     \
  do {                                                                                   \
    if (!::pneumo::testing::gpu_available(__FILE__ ":" DOCTEST_TOSTR(__LINE__))) return; \
  } while (0)
