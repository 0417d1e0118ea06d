// RAII owners of the CUDA back end's library resources: the cuDNN and cuBLAS handles, the
// network-wide grow-only workspace, and cuDNN descriptors. CUDA builds only.
#pragma once
#include <cstddef>

#include "engine/cuda_check.h"

namespace pneumo {

class CudaResources {
 public:
  CudaResources();
  ~CudaResources();
  CudaResources(const CudaResources&) = delete;
  CudaResources& operator=(const CudaResources&) = delete;

  cudnnHandle_t cudnn() const { return cudnn_; }
  cublasHandle_t cublas() const { return cublas_; }
  // Returns a device scratch area of at least `bytes`; it only grows (one cudaMalloc per new
  // maximum), and is shared by every layer, so its contents do not survive the next call.
  void* workspace(size_t bytes);
  size_t workspace_bytes() const { return workspace_bytes_; }

 private:
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

// Generic RAII owner for a cuDNN descriptor: Create/Destroy are the cudnnCreate*/cudnnDestroy*
// pair, e.g. CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor,
// cudnnDestroyTensorDescriptor>.
template <typename Handle, cudnnStatus_t (*Create)(Handle*), cudnnStatus_t (*Destroy)(Handle)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { PNEUMO_CUDNN_CHECK(Create(&handle_)); }
  ~CudnnDescriptor() { Destroy(handle_); }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  Handle get() const { return handle_; }

 private:
  Handle handle_{};
};

using CudnnTensorDescriptor =
    CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using CudnnFilterDescriptor =
    CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using CudnnConvolutionDescriptor =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                    cudnnDestroyConvolutionDescriptor>;

// Launch shape for a grid-stride loop over `count` elements.
inline int grid_size_for(long long count, int block = 256) {
  long long blocks = (count + block - 1) / block;
  if (blocks > 65535LL * 16) blocks = 65535LL * 16;
  return static_cast<int>(blocks < 1 ? 1 : blocks);
}

}  // namespace pneumo
