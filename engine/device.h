// Devices and the run-time choice between back ends (--device auto|cpu|cuda). The CUDA back end
// is compiled whenever the build finds nvcc, cuDNN and cuBLAS; choosing it without a GPU is an
// error, never a silent fallback to the CPU.
#pragma once
#include <string>

namespace pneumo {

enum class Device { CPU, CUDA };

const char* device_name(Device device);  // "cpu" or "cuda"

// True when this binary was built with the CUDA back end.
bool cuda_compiled();

// Number of usable CUDA GPUs (0 when none or when built without CUDA). Never throws.
int cuda_device_count();

// Why no GPU can be used, e.g. "no CUDA device found (cudaGetDeviceCount: no CUDA-capable device
// is detected)"; empty when a GPU is usable.
std::string cuda_unavailable_reason();

// Parses "auto", "cpu" or "cuda": auto takes the GPU when one is usable. "cuda" without a GPU
// throws pneumo::Error with the reason; anything else throws naming the accepted values.
Device resolve_device(const std::string& choice);

// One line describing the device, e.g. "cpu (2 threads, OpenBLAS)" or "cuda:0 NVIDIA H200 (sm_90)".
std::string describe_device(Device device);

// Test hook: true makes the CUDA per-element kernels use 64-bit index math even when the
// element count would allow 32-bit math, so that the rarely used wide path is exercised on small
// tensors by the parity tests. No effect on the CPU back end; off by default.
void set_cuda_wide_index_for_testing(bool force);
bool cuda_wide_index_forced();

}  // namespace pneumo
