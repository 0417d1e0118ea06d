#include "engine/cuda_resources.h"

namespace pneumo {

CudnnHandle::CudnnHandle() { PNEUMO_CUDNN_CHECK(cudnnCreate(&handle_)); }
CudnnHandle::~CudnnHandle() {
  if (handle_) cudnnDestroy(handle_);
}

CublasHandle::CublasHandle() { PNEUMO_CUBLAS_CHECK(cublasCreate(&handle_)); }
CublasHandle::~CublasHandle() {
  if (handle_) cublasDestroy(handle_);
}

// Members are built in declaration order (cuDNN, cuBLAS, workspace); if the cuBLAS create
// throws, the already-built cuDNN member is destroyed, so nothing leaks.
CudaResources::CudaResources() = default;
CudaResources::~CudaResources() = default;

void* CudaResources::workspace(size_t bytes) {
  if (bytes > workspace_.bytes()) {
    workspace_ = Memory();  // free the old area before allocating the larger one
    workspace_ = Memory(Device::CUDA, bytes);
  }
  return workspace_.data();
}

void* CudaResources::staging(size_t bytes) {
  if (bytes > staging_.bytes()) {
    staging_ = Memory();
    staging_ = Memory(Device::CUDA, bytes);
  }
  return staging_.data();
}

}  // namespace pneumo
