#include "layers/layer.h"

#include "engine/check.h"

namespace pneumo {

void require_input_count(const Layer& layer, const std::vector<Shape>& inputs) {
  if (static_cast<int>(inputs.size()) != layer.input_count())
    throw Error(layer.kind() + ": expected " + std::to_string(layer.input_count()) + " input(s), got " +
                std::to_string(inputs.size()));
}

void require_nhwc(const Shape& shape, const std::string& what) {
  bool ok = shape.size() == 4;
  for (int64_t dimension : shape) ok = ok && dimension > 0;
  if (!ok) throw Error(what + ": expected an NHWC shape (N,H,W,C) with positive dimensions, got " + shape_string(shape));
}

void throw_no_cuda_backend(const std::string& layer_kind) {
  throw Error(layer_kind + ": the CUDA back end is not compiled into this binary (" +
              cuda_unavailable_reason() + ")");
}

}  // namespace pneumo
