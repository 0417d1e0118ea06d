// Memory: an RAII owner of one allocation on the CPU (64-byte aligned) or on the GPU
// (cudaMalloc), and the explicit copies between them. Every host<->device copy in the engine
// goes through copy_bytes, so it is visible at its call site.
#pragma once
#include <cstddef>

#include "engine/device.h"

namespace pneumo {

class Memory {
 public:
  Memory() = default;
  Memory(Device device, size_t bytes);  // contents uninitialized
  ~Memory();
  Memory(Memory&& other) noexcept;
  Memory& operator=(Memory&& other) noexcept;
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void release() noexcept;
  Device device_ = Device::CPU;
  size_t bytes_ = 0;
  void* data_ = nullptr;
};

// Copies bytes between any two devices (synchronous).
void copy_bytes(void* destination, Device destination_device, const void* source, Device source_device, size_t bytes);
// Sets bytes to zero on either device.
void zero_bytes(void* destination, Device device, size_t bytes);

}  // namespace pneumo
