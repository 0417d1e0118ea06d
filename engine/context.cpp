#include "engine/context.h"

#include "engine/check.h"

#ifdef PNEUMO_HAVE_CUDA
#include "engine/cuda_resources.h"
#endif

namespace pneumo {

#ifdef PNEUMO_HAVE_CUDA
Context::Context(Device device) : device_(device) {
  if (device == Device::CUDA) {
    std::string reason = cuda_unavailable_reason();
    if (!reason.empty()) throw Error("cannot create a CUDA context: " + reason);
    cuda_ = std::make_unique<CudaResources>();
  }
}
void Context::synchronize() const {
  if (device_ == Device::CUDA) PNEUMO_CUDA_CHECK(cudaDeviceSynchronize());
}
#else
class CudaResources {};
Context::Context(Device device) : device_(device) {
  if (device == Device::CUDA) throw Error("cannot create a CUDA context: " + cuda_unavailable_reason());
}
void Context::synchronize() const {}
#endif

Context::~Context() = default;

CudaResources& Context::cuda() const {
  if (!cuda_) throw Error("CUDA resources requested from a CPU context");
  return *cuda_;
}

}  // namespace pneumo
