// numpy arrays <-> engine tensors for the Python module, without copies where the layout allows:
// an input array that is float32 and C-contiguous (NHWC for activations, engine/layout.md) is
// read in place through a Tensor view; outputs are allocated as numpy arrays the engine writes
// into; the network's own buffers (parameters, node outputs) are numpy views that keep their
// owner alive. Anything else (another dtype, a strided or Fortran-ordered array, a wrong rank or
// shape) is a pneumo::Error naming what was expected: nothing is converted behind the caller.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "engine/tensor.h"

namespace pneumo::python {

namespace py = pybind11;

// The array's shape as an engine Shape.
Shape shape_of(const py::array& array);

// A CPU Tensor view of `array`'s memory (no copy). `what` names the argument in the error;
// rank < 0 accepts any rank. The caller keeps `array` alive while the view is used.
Tensor tensor_view(const py::array& array, const std::string& what, int rank);

// The same, also requiring `expected` as the shape.
Tensor tensor_view(const py::array& array, const std::string& what, const Shape& expected);

// A new zeroed float32 C-contiguous array of `shape`, and in *view a Tensor view of its memory
// for the engine to write into.
py::array_t<float> new_array(const Shape& shape, Tensor* view);

// A numpy view (no copy) of a CPU tensor's memory; `owner` is kept alive while the view exists.
// Read-only unless `writable`.
py::array array_view(const Tensor& tensor, py::handle owner, bool writable);

// A float32 array owning `values` (moved, not copied) with `shape`.
py::array_t<float> array_from_vector(std::vector<float>&& values, const Shape& shape);

}  // namespace pneumo::python
