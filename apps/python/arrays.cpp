#include "apps/python/arrays.h"

#include <utility>
#include <vector>

#include "engine/check.h"

namespace pneumo::python {

namespace {

std::string dtype_name(const py::array& array) { return py::str(array.dtype()).cast<std::string>(); }

}  // namespace

Shape shape_of(const py::array& array) {
  Shape shape;
  for (py::ssize_t axis = 0; axis < array.ndim(); ++axis) shape.push_back(static_cast<int64_t>(array.shape(axis)));
  return shape;
}

Tensor tensor_view(const py::array& array, const std::string& what, int rank) {
  if (!array.dtype().is(py::dtype::of<float>()))
    throw Error(what + ": expected a float32 array, got " + dtype_name(array) +
                " (the engine computes in float32; convert with .astype(numpy.float32))");
  if (!(array.flags() & py::array::c_style))
    throw Error(what +
                ": expected a C-contiguous array (row-major; activations NHWC), got strides that are not; "
                "use numpy.ascontiguousarray");
  const Shape shape = shape_of(array);
  if (rank >= 0 && static_cast<int>(shape.size()) != rank)
    throw Error(what + ": expected " + std::to_string(rank) + " dimensions" +
                (rank == 4 ? std::string(" (N,H,W,C)") : std::string()) + ", got shape " + shape_string(shape));
  for (int64_t dim : shape)
    if (dim <= 0) throw Error(what + ": every dimension must be positive, got shape " + shape_string(shape));
  // The engine only reads inputs: a view of a read-only array is never written through.
  float* data = const_cast<float*>(static_cast<const float*>(array.data()));
  return Tensor::view(data, Device::CPU, shape);
}

Tensor tensor_view(const py::array& array, const std::string& what, const Shape& expected) {
  Tensor view = tensor_view(array, what, static_cast<int>(expected.size()));
  if (view.shape() != expected)
    throw Error(what + ": expected shape " + shape_string(expected) + ", got " + shape_string(view.shape()));
  return view;
}

py::array_t<float> new_array(const Shape& shape, Tensor* view) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<float> array(dims);
  *view = Tensor::view(array.mutable_data(), Device::CPU, shape);
  view->zero();
  return array;
}

py::array array_view(const Tensor& tensor, py::handle owner, bool writable) {
  if (tensor.empty()) throw Error("no tensor to view (empty)");
  if (tensor.device() != Device::CPU) throw Error("a numpy view needs a CPU tensor");
  std::vector<py::ssize_t> dims(tensor.shape().begin(), tensor.shape().end());
  py::array array(py::dtype::of<float>(), dims, {}, tensor.data(), owner);
  if (!writable) py::detail::array_proxy(array.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return array;
}

py::array_t<float> array_from_vector(std::vector<float>&& values, const Shape& shape) {
  PNEUMO_REQUIRE(static_cast<int64_t>(values.size()) == shape_count(shape), "array_from_vector: size and shape differ");
  auto* owned = new std::vector<float>(std::move(values));
  py::capsule free_when_done(owned, [](void* pointer) { delete static_cast<std::vector<float>*>(pointer); });
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array_t<float>(dims, owned->data(), free_when_done);
}

}  // namespace pneumo::python
