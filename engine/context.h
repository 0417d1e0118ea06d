// Context: where a layer runs. One per device; on the CUDA back end it owns the cuDNN and cuBLAS
// handles and the network-wide, grow-only cuDNN workspace (see engine/cuda_resources.h).
// Layers take a Context& and dispatch on context.device().
#pragma once
#include <memory>

#include "engine/device.h"

namespace pneumo {

class CudaResources;  // engine/cuda_resources.h (CUDA builds only)

class Context {
 public:
  // Device::CUDA throws pneumo::Error when no GPU is usable or the build has no CUDA back end.
  explicit Context(Device device);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  CudaResources& cuda() const;  // throws on a CPU context
  void synchronize() const;     // waits for queued GPU work; no-op on the CPU

 private:
  Device device_;
  std::unique_ptr<CudaResources> cuda_;
};

}  // namespace pneumo
