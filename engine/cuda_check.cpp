// The launch check of engine/cuda_check.h and its PNEUMO_CUDA_SYNC switch; CUDA builds only.
#include "engine/cuda_check.h"

#include <cstdlib>
#include <cstring>

namespace pneumo {

bool cuda_sync_after_launch() {
  static const bool enabled = [] {
    const char* value = std::getenv("PNEUMO_CUDA_SYNC");
    return value != nullptr && std::strcmp(value, "1") == 0;
  }();
  return enabled;
}

void check_cuda_launch(const char* expression, const char* file, int line) {
  const cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) throw_status_error("CUDA", expression, file, line, cudaGetErrorString(launch));
  if (!cuda_sync_after_launch()) return;
  const cudaError_t run = cudaDeviceSynchronize();
  if (run != cudaSuccess)
    throw_status_error("CUDA", "kernel run (PNEUMO_CUDA_SYNC=1: cudaDeviceSynchronize after launch)", file, line,
                       cudaGetErrorString(run));
}

}  // namespace pneumo
