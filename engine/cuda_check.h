// CUDA/cuDNN/cuBLAS status checks. Include only from files that are compiled with the CUDA
// back end (.cu files and engine/cuda_*.cpp). Each macro throws pneumo::Error on failure with
// the library's own message, the expression, the file and the line.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "engine/check.h"

namespace pneumo {
const char* cublas_status_name(cublasStatus_t status);

// True when the environment variable PNEUMO_CUDA_SYNC is set to 1 (read once, at the first
// launch check): every PNEUMO_CUDA_CHECK_LAUNCH then also waits for the device, so an
// asynchronous fault (an illegal address, a failed device assert) is reported at the launch
// that caused it instead of at some later, unrelated call. Slow; for debugging only.
bool cuda_sync_after_launch();

// What PNEUMO_CUDA_CHECK_LAUNCH runs: cudaGetLastError, and with PNEUMO_CUDA_SYNC=1 also
// cudaDeviceSynchronize; throws pneumo::Error naming `expression`, the file and the line.
void check_cuda_launch(const char* expression, const char* file, int line);
}  // namespace pneumo

#define PNEUMO_CUDA_CHECK(expression)                                                                            \
  do {                                                                                                           \
    cudaError_t pneumo_status_ = (expression);                                                                   \
    if (pneumo_status_ != cudaSuccess)                                                                           \
      ::pneumo::throw_status_error("CUDA", #expression, __FILE__, __LINE__, cudaGetErrorString(pneumo_status_)); \
  } while (0)

#define PNEUMO_CUDNN_CHECK(expression)                                                                             \
  do {                                                                                                             \
    cudnnStatus_t pneumo_status_ = (expression);                                                                   \
    if (pneumo_status_ != CUDNN_STATUS_SUCCESS)                                                                    \
      ::pneumo::throw_status_error("cuDNN", #expression, __FILE__, __LINE__, cudnnGetErrorString(pneumo_status_)); \
  } while (0)

#define PNEUMO_CUBLAS_CHECK(expression)                                           \
  do {                                                                            \
    cublasStatus_t pneumo_status_ = (expression);                                 \
    if (pneumo_status_ != CUBLAS_STATUS_SUCCESS)                                  \
      ::pneumo::throw_status_error("cuBLAS", #expression, __FILE__, __LINE__,     \
                                   ::pneumo::cublas_status_name(pneumo_status_)); \
  } while (0)

// After every kernel launch (and every cuDNN/cuBLAS compute call): catches bad launch
// configurations at the launch site, and with PNEUMO_CUDA_SYNC=1 also faults that happen while
// the kernel runs (see cuda_sync_after_launch).
#define PNEUMO_CUDA_CHECK_LAUNCH() ::pneumo::check_cuda_launch("kernel launch (cudaGetLastError)", __FILE__, __LINE__)
