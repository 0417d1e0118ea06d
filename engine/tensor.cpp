#include "engine/tensor.h"

#include <sstream>

#include "engine/check.h"

namespace pneumo {

int64_t shape_count(const Shape& shape) {
  int64_t count = 1;
  for (int64_t dimension : shape) count *= dimension;
  return count;
}

std::string shape_string(const Shape& shape) {
  std::ostringstream text;
  text << "(";
  for (size_t i = 0; i < shape.size(); ++i) text << (i ? "," : "") << shape[i];
  text << ")";
  return text.str();
}

Tensor::Tensor(Device device, Shape shape) : device_(device), shape_(std::move(shape)) {
  for (int64_t dimension : shape_)
    if (dimension < 0) throw Error("negative tensor dimension in " + shape_string(shape_));
  owner_ = std::make_shared<Memory>(device, bytes());
  data_ = static_cast<float*>(owner_->data());
  zero();
}

Tensor Tensor::view(float* data, Device device, Shape shape) {
  Tensor tensor;
  tensor.device_ = device;
  tensor.shape_ = std::move(shape);
  tensor.data_ = data;
  return tensor;
}

void Tensor::zero() {
  if (data_) zero_bytes(data_, device_, bytes());
}

void Tensor::copy_from(const Tensor& source) {
  if (source.count() != count())
    throw Error("copy_from: count mismatch " + shape_string(source.shape()) + " -> " + shape_string(shape_));
  copy_bytes(data_, device_, source.data(), source.device(), bytes());
}

Tensor Tensor::to(Device device) const {
  Tensor copy(device, shape_);
  copy.copy_from(*this);
  return copy;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> values(static_cast<size_t>(count()));
  copy_bytes(values.data(), Device::CPU, data_, device_, bytes());
  return values;
}

void Tensor::set_values(const std::vector<float>& values) {
  if (static_cast<int64_t>(values.size()) != count())
    throw Error("set_values: " + std::to_string(values.size()) + " values for a tensor of shape " +
                shape_string(shape_));
  copy_bytes(data_, device_, values.data(), Device::CPU, bytes());
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_count(shape) != count())
    throw Error("reshape " + shape_string(shape_) + " -> " + shape_string(shape) + ": counts differ");
  Tensor tensor = *this;
  tensor.shape_ = std::move(shape);
  return tensor;
}

Tensor Tensor::leading(Shape shape) const {
  for (int64_t dimension : shape)
    if (dimension < 0) throw Error("negative tensor dimension in " + shape_string(shape));
  if (shape_count(shape) > capacity())
    throw Error("leading view " + shape_string(shape) + " of a tensor holding " + std::to_string(capacity()) +
                " floats: too large");
  Tensor tensor = *this;
  tensor.shape_ = std::move(shape);
  return tensor;
}

int64_t Tensor::capacity() const {
  if (!owner_ || !data_) return count();
  const auto* begin = static_cast<const char*>(owner_->data());
  const auto* here = reinterpret_cast<const char*>(data_);
  return static_cast<int64_t>((owner_->bytes() - static_cast<size_t>(here - begin)) / sizeof(float));
}

Tensor reuse_storage(Tensor& storage, Device device, const Shape& shape) {
  if (storage.empty() || storage.device() != device || storage.capacity() < shape_count(shape)) {
    storage = Tensor();  // free the old buffer before allocating the larger one
    storage = Tensor(device, shape);
  }
  return storage.leading(shape);
}

void require_shape(const Tensor& tensor, const Shape& expected, const char* what) {
  if (tensor.shape() != expected)
    throw Error(std::string(what) + ": expected shape " + shape_string(expected) + ", got " +
                shape_string(tensor.shape()));
}

void require_device(const Tensor& tensor, Device expected, const char* what) {
  if (tensor.device() != expected)
    throw Error(std::string(what) + ": expected a " + device_name(expected) + " tensor, got " +
                device_name(tensor.device()));
}

}  // namespace pneumo
