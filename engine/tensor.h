// Tensor: a float32 array with an explicit device and shape. Activations are NHWC, (N,H,W,C),
// on both back ends (see engine/layout.md). A tensor either owns its memory or is a view into
// memory owned elsewhere (e.g. one parameter inside the flat parameter buffer); copying a Tensor
// object copies the handle, never the data. Data moves between devices only through copy_from
// or to(), both visible at the call site.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/memory.h"

namespace pneumo {

using Shape = std::vector<int64_t>;

int64_t shape_count(const Shape& shape);       // product of the dimensions (1 for rank 0)
std::string shape_string(const Shape& shape);  // "(2,64,64,4)"

class Tensor {
 public:
  Tensor() = default;
  // Owning tensor, contents zeroed.
  Tensor(Device device, Shape shape);
  // Non-owning view of `data` (which must outlive the view).
  static Tensor view(float* data, Device device, Shape shape);

  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int index) const { return shape_.at(static_cast<size_t>(index)); }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t count() const { return shape_count(shape_); }
  size_t bytes() const { return static_cast<size_t>(count()) * sizeof(float); }
  float* data() const { return data_; }
  bool empty() const { return data_ == nullptr; }

  // NHWC accessors for rank-4 activations.
  int64_t N() const { return dim(0); }
  int64_t H() const { return dim(1); }
  int64_t W() const { return dim(2); }
  int64_t C() const { return dim(3); }

  void zero();                                        // on its own device
  void copy_from(const Tensor& source);               // same count; any devices
  Tensor to(Device device) const;                     // new owning copy on `device`
  std::vector<float> to_vector() const;               // copies to the host
  void set_values(const std::vector<float>& values);  // copies from the host; same count
  // Same data, new shape with the same count.
  Tensor reshaped(Shape shape) const;
  // The first shape_count(shape) floats under a new shape, sharing ownership of the memory
  // (the result keeps the whole buffer alive); shape_count(shape) must not exceed capacity().
  Tensor leading(Shape shape) const;
  // Floats this tensor's memory holds from data() on: the owned buffer's size (which may exceed
  // count() for a leading() view), or count() for a non-owning view.
  int64_t capacity() const;

 private:
  Device device_ = Device::CPU;
  Shape shape_;
  float* data_ = nullptr;
  std::shared_ptr<Memory> owner_;  // null for views
};

// A per-batch buffer without a per-batch allocation: returns a tensor of `shape` on `device`
// backed by `storage`, which is (re)allocated only when it is empty, on another device, or
// smaller than the shape needs (grow-only). The contents are whatever was there: overwrite them.
Tensor reuse_storage(Tensor& storage, Device device, const Shape& shape);

// Throws pneumo::Error naming `what` when the tensor's shape or device differs.
void require_shape(const Tensor& tensor, const Shape& expected, const char* what);
void require_device(const Tensor& tensor, Device expected, const char* what);

}  // namespace pneumo
