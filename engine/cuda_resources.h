// RAII owners of the CUDA back end's library resources: the cuDNN and cuBLAS handles, the
// network-wide grow-only workspace, and cuDNN descriptors. CUDA builds only.
#pragma once
#include <climits>
#include <cstddef>
#include <cstdint>

#include "engine/cuda_check.h"
#include "engine/device.h"
#include "engine/memory.h"

namespace pneumo {

// RAII owners of one library handle each, so that a failure while creating a later one never
// leaks an earlier one.
class CudnnHandle {
 public:
  CudnnHandle();
  ~CudnnHandle();
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  cudnnHandle_t get() const { return handle_; }

 private:
  cudnnHandle_t handle_ = nullptr;
};

class CublasHandle {
 public:
  CublasHandle();
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

class CudaResources {
 public:
  CudaResources();
  ~CudaResources();
  CudaResources(const CudaResources&) = delete;
  CudaResources& operator=(const CudaResources&) = delete;

  cudnnHandle_t cudnn() const { return cudnn_.get(); }
  cublasHandle_t cublas() const { return cublas_.get(); }
  // Returns a device scratch area of at least `bytes`; it only grows (one cudaMalloc per new
  // maximum), and is shared by every layer, so its contents do not survive the next call.
  void* workspace(size_t bytes);
  size_t workspace_bytes() const { return workspace_.bytes(); }
  // A second grow-only device area, beside the workspace and used in the same calls: the bf16
  // convolutions' rounded operands and bf16 results (layers/conv2d.cu). Same lifetime rules.
  void* staging(size_t bytes);

 private:
  // Each member owns its resource; declaration order is creation order.
  CudnnHandle cudnn_;
  CublasHandle cublas_;
  Memory workspace_;  // (workspace_bytes) device bytes, grow-only
  Memory staging_;    // device bytes, grow-only (staging)
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
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

// Launch shape for a grid-stride loop over `count` elements.
inline int grid_size_for(long long count, int block = 256) {
  long long blocks = (count + block - 1) / block;
  if (blocks > 65535LL * 16) blocks = 65535LL * 16;
  return static_cast<int>(blocks < 1 ? 1 : blocks);
}

// True when a grid-stride loop of blocks x block threads over `count` elements can do its index
// math in 32 bits: every index it forms, up to count + one stride, fits an int32. False also when
// a test forced the wide path (set_cuda_wide_index_for_testing).
inline bool narrow_index_fits(long long count, long long blocks, int block) {
  return !cuda_wide_index_forced() && count + blocks * block <= INT32_MAX;
}

// Calls launch(Index{}) with Index = int32_t when narrow_index_fits, else int64_t: per-element
// kernels are templates on their index type, because 64-bit division and remainder per element
// are several times slower on the GPU than 32-bit ones.
template <typename Launch>
void launch_with_index(long long count, int blocks, int block, Launch&& launch) {
  if (narrow_index_fits(count, blocks, block))
    launch(int32_t{});
  else
    launch(int64_t{});
}

#ifdef __CUDACC__
// First index and stride of a grid-stride loop, in the loop's index type.
template <typename Index>
__device__ __forceinline__ Index grid_stride_first() {
  return static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + static_cast<Index>(threadIdx.x);
}
template <typename Index>
__device__ __forceinline__ Index grid_stride_step() {
  return static_cast<Index>(gridDim.x) * static_cast<Index>(blockDim.x);
}
#endif

}  // namespace pneumo
