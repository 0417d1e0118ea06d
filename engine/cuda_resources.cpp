#include "engine/cuda_resources.h"

namespace pneumo {

CudaResources::CudaResources() {
  PNEUMO_CUDNN_CHECK(cudnnCreate(&cudnn_));
  PNEUMO_CUBLAS_CHECK(cublasCreate(&cublas_));
}

CudaResources::~CudaResources() {
  if (workspace_) cudaFree(workspace_);
  if (cublas_) cublasDestroy(cublas_);
  if (cudnn_) cudnnDestroy(cudnn_);
}

void* CudaResources::workspace(size_t bytes) {
  if (bytes > workspace_bytes_) {
    if (workspace_) PNEUMO_CUDA_CHECK(cudaFree(workspace_));
    workspace_ = nullptr;
    workspace_bytes_ = 0;
    PNEUMO_CUDA_CHECK(cudaMalloc(&workspace_, bytes));
    workspace_bytes_ = bytes;
  }
  return workspace_;
}

}  // namespace pneumo
