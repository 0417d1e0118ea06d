// CUDA side of engine/memory.h; compiled only with the CUDA back end.
#include <string>

#include "engine/cuda_check.h"
#include "engine/memory.h"

namespace pneumo {

void* cuda_allocate(size_t bytes) {
  void* pointer = nullptr;
  cudaError_t status = cudaMalloc(&pointer, bytes);
  if (status != cudaSuccess)
    throw Error("cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(status));
  return pointer;
}

void cuda_free(void* pointer) noexcept { cudaFree(pointer); }

void cuda_copy(void* destination, Device destination_device, const void* source, Device source_device, size_t bytes) {
  cudaMemcpyKind kind = destination_device == Device::CUDA
                            ? (source_device == Device::CUDA ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                            : cudaMemcpyDeviceToHost;
  PNEUMO_CUDA_CHECK(cudaMemcpy(destination, source, bytes, kind));
}

// Stream-ordered on the default stream: no host synchronisation (gradients are zeroed per step).
void cuda_zero(void* destination, size_t bytes) { PNEUMO_CUDA_CHECK(cudaMemsetAsync(destination, 0, bytes, nullptr)); }

const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

}  // namespace pneumo
