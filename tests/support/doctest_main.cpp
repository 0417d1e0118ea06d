// The main of every doctest binary. GPU test cases (PNEUMO_GPU_TEST_CASE, doctest suite "gpu")
// run in their own CTest entry, <binary>_gpu, which passes --gpu:
//   <binary>          every test case except the GPU ones;
//   <binary> --gpu    only the GPU ones; without a usable GPU it prints the reason and exits
//                     with kSkipReturnCode, which CTest's SKIP_RETURN_CODE shows as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/blas_setup.h"
#include "engine/device.h"
#include "tests/support/fixtures.h"

namespace {
constexpr int kSkipReturnCode = 77;  // = SKIP_RETURN_CODE in CMakeLists.txt
}

int main(int argc, char** argv) {
  pneumo::select_openblas_kernels(argc, argv);
  bool gpu_cases = false;
  std::vector<char*> arguments;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--gpu") == 0)
      gpu_cases = true;
    else
      arguments.push_back(argv[i]);
  }
  doctest::Context context(static_cast<int>(arguments.size()), arguments.data());
  pneumo::testing::set_running_gpu_entry(gpu_cases);
  if (gpu_cases) {
    const std::string reason = pneumo::cuda_unavailable_reason();
    if (!reason.empty()) {
      std::printf("SKIPPED %s --gpu: every GPU test case of this binary: %s\n", argv[0], reason.c_str());
      return kSkipReturnCode;
    }
    context.addFilter("test-suite", "gpu");
  } else {
    context.addFilter("test-suite-exclude", "gpu");
  }
  return context.run();
}
