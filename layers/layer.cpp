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
  if (!ok)
    throw Error(what + ": expected an NHWC shape (N,H,W,C) with positive dimensions, got " + shape_string(shape));
}

void throw_no_cuda_backend(const std::string& layer_kind) {
#ifdef PNEUMO_HAVE_CUDA
  throw Error(layer_kind + ": this layer has no CUDA implementation");
#else
  throw Error(layer_kind + ": the CUDA back end is not compiled into this binary (" + cuda_unavailable_reason() + ")");
#endif
}

void Layer::require_inputs(const Context& context, const std::vector<const Tensor*>& inputs, const char* pass) const {
  if (static_cast<int>(inputs.size()) != input_count())
    throw Error(kind() + "::" + pass + ": expected " + std::to_string(input_count()) + " input(s), got " +
                std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) throw Error(kind() + "::" + pass + ": input " + std::to_string(i) + " is null");
    const std::string what = kind() + " input " + std::to_string(i);
    require_device(*inputs[i], context.device(), what.c_str());
  }
  for (const HeldTensor& held : held_tensors()) {
    if (held.tensor->empty())
      throw Error(kind() + ": " + pass + " called before bind_parameters (no " + held.name + ")");
    const std::string what = kind() + " " + held.name;
    require_device(*held.tensor, context.device(), what.c_str());
  }
}

LayerFunctions Layer::functions(Device device, const std::vector<Shape>&, bool) const {
  const std::string b = device == Device::CPU ? "_cpu" : "_cuda";
  return {kind() + "::forward" + b, kind() + "::backward" + b, "layers/layer.h"};
}

void Layer::forward(Context& context, const std::vector<const Tensor*>& inputs, Tensor& output, bool training) {
  require_inputs(context, inputs, "forward");
  std::vector<Shape> shapes;
  shapes.reserve(inputs.size());
  for (const Tensor* input : inputs) shapes.push_back(input->shape());
  const std::string what = kind() + " output";
  require_shape(output, output_shape(shapes), what.c_str());
  require_device(output, context.device(), what.c_str());
  if (context.device() == Device::CPU)
    forward_cpu(context, inputs, output, training);
  else
    forward_cuda(context, inputs, output, training);
}

void Layer::backward(Context& context, const std::vector<const Tensor*>& inputs, const Tensor& output,
                     const Tensor& output_gradient, const std::vector<Tensor*>& input_gradients) {
  require_inputs(context, inputs, "backward");
  std::vector<Shape> shapes;
  shapes.reserve(inputs.size());
  for (const Tensor* input : inputs) shapes.push_back(input->shape());
  const Shape output_shape_expected = output_shape(shapes);
  const std::string output_what = kind() + " output";
  const std::string gradient_what = kind() + " output gradient";
  require_shape(output, output_shape_expected, output_what.c_str());
  require_device(output, context.device(), output_what.c_str());
  require_shape(output_gradient, output_shape_expected, gradient_what.c_str());
  require_device(output_gradient, context.device(), gradient_what.c_str());
  if (static_cast<int>(input_gradients.size()) != input_count())
    throw Error(kind() + "::backward: expected " + std::to_string(input_count()) +
                " input-gradient slot(s) (null when not needed), got " + std::to_string(input_gradients.size()));
  for (size_t i = 0; i < input_gradients.size(); ++i) {
    if (!input_gradients[i]) continue;
    const std::string what = kind() + " input gradient " + std::to_string(i);
    require_shape(*input_gradients[i], inputs[i]->shape(), what.c_str());
    require_device(*input_gradients[i], context.device(), what.c_str());
  }
  if (context.device() == Device::CPU)
    backward_cpu(context, inputs, output, output_gradient, input_gradients);
  else
    backward_cuda(context, inputs, output, output_gradient, input_gradients);
}

void Layer::forward_cuda(Context&, const std::vector<const Tensor*>&, Tensor&, bool) { throw_no_cuda_backend(kind()); }

void Layer::backward_cuda(Context&, const std::vector<const Tensor*>&, const Tensor&, const Tensor&,
                          const std::vector<Tensor*>&) {
  throw_no_cuda_backend(kind());
}

}  // namespace pneumo
