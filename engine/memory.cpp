#include "engine/memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "engine/check.h"
#include "engine/cpu_threads.h"

namespace pneumo {

// engine/cuda_memory.cpp (or the stubs below without the CUDA back end)
void* cuda_allocate(size_t bytes);
void cuda_free(void* pointer) noexcept;
void cuda_copy(void* destination, Device destination_device, const void* source, Device source_device, size_t bytes);
void cuda_zero(void* destination, size_t bytes);

#ifndef PNEUMO_HAVE_CUDA
static Error no_cuda() { return Error("CUDA memory requested but " + cuda_unavailable_reason()); }
void* cuda_allocate(size_t) { throw no_cuda(); }
void cuda_free(void*) noexcept {}
void cuda_copy(void*, Device, const void*, Device, size_t) { throw no_cuda(); }
void cuda_zero(void*, size_t) { throw no_cuda(); }
#endif

Memory::Memory(Device device, size_t bytes) : device_(device), bytes_(bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    size_t rounded = (bytes + 63) / 64 * 64;
    data_ = std::aligned_alloc(64, rounded);
    if (!data_) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  } else {
    data_ = cuda_allocate(bytes);
  }
}

Memory::~Memory() { release(); }

void Memory::release() noexcept {
  if (!data_) return;
  if (device_ == Device::CPU)
    std::free(data_);
  else
    cuda_free(data_);
  data_ = nullptr;
  bytes_ = 0;
}

Memory::Memory(Memory&& other) noexcept : device_(other.device_), bytes_(other.bytes_), data_(other.data_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

Memory& Memory::operator=(Memory&& other) noexcept {
  if (this != &other) {
    release();
    device_ = other.device_;
    bytes_ = other.bytes_;
    data_ = std::exchange(other.data_, nullptr);
    other.bytes_ = 0;
  }
  return *this;
}

void copy_bytes(void* destination, Device destination_device, const void* source, Device source_device, size_t bytes) {
  if (bytes == 0) return;
  if (destination_device == Device::CPU && source_device == Device::CPU)
    std::memcpy(destination, source, bytes);
  else
    cuda_copy(destination, destination_device, source, source_device, bytes);
}

void zero_bytes(void* destination, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CUDA) {
    cuda_zero(destination, bytes);
    return;
  }
  // Large host buffers (activation gradients, the flat gradient buffer) are cleared by all CPU
  // threads: one thread's memset reaches only a fraction of the memory bandwidth.
  constexpr size_t chunk = size_t(1) << 20;  // 1 MiB per task
  char* bytes_out = static_cast<char*>(destination);
  const int64_t chunks = static_cast<int64_t>((bytes + chunk - 1) / chunk);
  parallel_for(chunks, 4, [&](int64_t begin, int64_t end) {
    const size_t first = static_cast<size_t>(begin) * chunk;
    const size_t last = std::min(bytes, static_cast<size_t>(end) * chunk);
    std::memset(bytes_out + first, 0, last - first);
  });
}

}  // namespace pneumo
