#include "engine/device.h"

#include <atomic>
#include <thread>

#include "engine/check.h"
#include "engine/cpu_threads.h"

namespace pneumo {

namespace {
std::atomic<bool> force_wide_index{false};
}  // namespace

void set_cuda_wide_index_for_testing(bool force) { force_wide_index = force; }
bool cuda_wide_index_forced() { return force_wide_index; }

const char* device_name(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

#ifndef PNEUMO_HAVE_CUDA
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() {
  return "this binary was built without the CUDA back end (nvcc, cuDNN or cuBLAS not found)";
}
std::string describe_cuda_device() { return "cuda (not compiled)"; }
#else
std::string describe_cuda_device();  // engine/cuda_device.cpp
#endif

Device resolve_device(const std::string& choice) {
  if (choice == "cpu") return Device::CPU;
  if (choice == "cuda") {
    std::string reason = cuda_unavailable_reason();
    if (!reason.empty()) throw Error("--device cuda requested but " + reason);
    return Device::CUDA;
  }
  if (choice == "auto") return cuda_device_count() > 0 ? Device::CUDA : Device::CPU;
  throw Error("--device: expected auto, cpu or cuda, got '" + choice + "'");
}

std::string describe_device(Device device) {
  if (device == Device::CUDA) return describe_cuda_device();
  return "cpu (" + std::to_string(cpu_thread_count()) + " threads, " + cpu_blas_name() + ")";
}

}  // namespace pneumo
