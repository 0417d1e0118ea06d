// pneumo.layers: each of the network's layers on its own (layers/*.h), forward and backward on
// numpy arrays, through the same Layer::forward / Layer::backward the network calls, so a reader
// can hold one layer's results against torch autograd (the teaching pages' check scripts do).
#include <pybind11/stl.h>

#include "apps/python/arrays.h"
#include "apps/python/bindings.h"
#include "engine/check.h"
#include "layers/add.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/conv_selection.h"
#include "layers/dropout.h"
#include "layers/leaky_relu.h"
#include "layers/max_pool.h"
#include "layers/sigmoid.h"
#include "layers/upsample.h"

namespace pneumo::python {

namespace {

// One layer with its own parameters (a ParameterStore of its specs, named "layer.<name>") and
// the arrays of its last forward, which backward reads again.
struct LayerHandle {
  LayerHandle(std::unique_ptr<Layer> owned, uint64_t seed, const std::string& conv_algorithms, uint64_t step)
      : layer(std::move(owned)) {
    std::vector<ParameterSpec> specs = layer->parameter_specs();
    for (ParameterSpec& spec : specs) spec.name = "layer." + spec.name;
    store = ParameterStore(Device::CPU, specs, seed);
    layer->bind_parameters(store, "layer");
    LayerSettings settings;
    ConvPolicy policy = conv_policy_from_environment();
    if (!conv_algorithms.empty()) {
      policy.algorithms = parse_conv_algorithms(conv_algorithms);
      policy.origin = "pneumo.layers.Conv2d(conv_algorithms=)";
    }
    settings.conv_selector = std::make_shared<ConvSelector>(policy);
    settings.step = step;
    layer->configure(settings);
  }
  const ParameterEntry& entry(const std::string& name) const {
    if (!store.contains("layer." + name)) {
      std::string known;
      for (const ParameterEntry& entry : store.entries())
        known += (known.empty() ? "" : ", ") + entry.spec.name.substr(6);
      throw Error(layer->kind() + " has no parameter " + quoted(name, 60) +
                  " (it has: " + (known.empty() ? std::string("none") : known) + ")");
    }
    return store.entry("layer." + name);
  }

  std::unique_ptr<Layer> layer;
  ParameterStore store;
  Context context{Device::CPU};
  std::vector<py::array> inputs;  // of the last forward
  py::object output = py::none();
};

py::object forward(LayerHandle& handle, const py::args& arguments, bool training) {
  Layer& layer = *handle.layer;
  if (static_cast<int>(arguments.size()) != layer.input_count())
    throw Error(layer.kind() + ".forward: expected " + std::to_string(layer.input_count()) + " input array(s), got " +
                std::to_string(arguments.size()));
  std::vector<py::array> arrays;
  std::vector<Tensor> views;
  std::vector<Shape> shapes;
  for (size_t i = 0; i < arguments.size(); ++i) {
    if (!py::isinstance<py::array>(arguments[i]))
      throw Error(layer.kind() + ".forward: input " + std::to_string(i) + " is not a numpy array");
    arrays.push_back(arguments[i].cast<py::array>());
    views.push_back(tensor_view(arrays.back(), layer.kind() + " input " + std::to_string(i), 4));
    shapes.push_back(views.back().shape());
  }
  std::vector<const Tensor*> inputs;
  inputs.reserve(views.size());
  for (const Tensor& view : views) inputs.push_back(&view);
  Tensor output;
  py::array_t<float> array = new_array(layer.output_shape(shapes), &output);
  layer.forward(handle.context, inputs, output, training);
  handle.inputs = arrays;
  handle.output = array;
  return std::move(array);
}

py::object backward(LayerHandle& handle, const py::array& output_gradient) {
  Layer& layer = *handle.layer;
  if (handle.output.is_none()) throw Error(layer.kind() + ".backward: run forward first");
  std::vector<Tensor> views;
  for (size_t i = 0; i < handle.inputs.size(); ++i)
    views.push_back(tensor_view(handle.inputs[i], layer.kind() + " input " + std::to_string(i), 4));
  const Tensor output = tensor_view(handle.output.cast<py::array>(), layer.kind() + " output", 4);
  const Tensor gradient = tensor_view(output_gradient, layer.kind() + " output_gradient", output.shape());
  std::vector<const Tensor*> inputs;
  std::vector<Tensor> gradient_views(views.size());
  std::vector<Tensor*> input_gradients;
  py::list results;
  for (size_t i = 0; i < views.size(); ++i) {
    inputs.push_back(&views[i]);
    results.append(new_array(views[i].shape(), &gradient_views[i]));
    input_gradients.push_back(&gradient_views[i]);
  }
  layer.backward(handle.context, inputs, output, gradient, input_gradients);
  if (results.size() == 1) return results[0];
  return py::tuple(results);
}

}  // namespace

void bind_layers(py::module_& module) {
  py::module_ layers = module.def_submodule("layers", "Each layer of the network on its own (layers/*.h).");
  py::class_<LayerHandle>(layers, "Layer",
                          "One engine layer with its own parameters. forward(*inputs, training=False) -> output; "
                          "backward(output_gradient) -> d loss / d input (a tuple for two inputs), computed from the "
                          "last forward; parameter gradients ACCUMULATE (zero_gradients).")
      .def_property_readonly("kind", [](const LayerHandle& handle) { return handle.layer->kind(); })
      .def("forward",
           [](LayerHandle& handle, const py::args& arguments, const py::kwargs& options) {
             bool training = false;
             for (const auto& [key, value] : options) {
               if (key.cast<std::string>() != "training")
                 throw Error(handle.layer->kind() + ".forward: unknown keyword " + key.cast<std::string>() +
                             " (only training=)");
               training = value.cast<bool>();
             }
             return forward(handle, arguments, training);
           })
      .def("backward", &backward, py::arg("output_gradient"))
      .def("parameter_names",
           [](const LayerHandle& handle) {
             std::vector<std::string> names;
             for (const ParameterEntry& entry : handle.store.entries()) names.push_back(entry.spec.name.substr(6));
             return names;
           })
      .def(
          "parameter",
          [](const py::object& self, const std::string& name) {
            return array_view(self.cast<const LayerHandle&>().entry(name).value, self, true);
          },
          py::arg("name"), "A parameter's values, a writable view (conv weight (K,R,S,C)).")
      .def(
          "parameter_gradient",
          [](const py::object& self, const std::string& name) {
            const ParameterEntry& entry = self.cast<const LayerHandle&>().entry(name);
            if (!entry.spec.trainable) throw Error(quoted(name, 60) + " is batch-norm state: it has no gradient");
            return array_view(entry.gradient, self, false);
          },
          py::arg("name"))
      .def("zero_gradients", [](LayerHandle& handle) { handle.store.zero_gradients(); })
      .def(
          "functions",
          [](const LayerHandle& handle) {
            if (handle.inputs.empty()) throw Error(handle.layer->kind() + ".functions: run forward first");
            std::vector<Shape> shapes;
            for (const py::array& input : handle.inputs) shapes.push_back(shape_of(input));
            const LayerFunctions functions = handle.layer->functions(Device::CPU, shapes, true);
            py::dict result;
            result["forward"] = functions.forward;
            result["backward"] = functions.backward;
            result["teaching_page"] = functions.teaching_page;
            return result;
          },
          "What the last forward's shapes run (the functions, outermost first) and the teaching page.");

  auto make = [](std::unique_ptr<Layer> layer, uint64_t seed = 0, const std::string& conv_algorithms = "",
                 uint64_t step = 0) {
    return std::make_unique<LayerHandle>(std::move(layer), seed, conv_algorithms, step);
  };
  layers.def(
      "Conv2d",
      [make](int64_t in_channels, int64_t out_channels, int kernel_size, bool bias, uint64_t seed,
             const std::string& conv_algorithms) {
        return make(std::make_unique<Conv2d>(in_channels, out_channels, kernel_size, bias), seed, conv_algorithms);
      },
      py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("bias") = false,
      py::arg("seed") = 0, py::arg("conv_algorithms") = "",
      "Conv2d 'same' (layers/conv2d.h), weight (K,R,S,C) Glorot-initialized from seed, optional bias (K).");
  layers.def(
      "BatchNorm2d",
      [make](int64_t channels, float momentum, float epsilon) {
        return make(std::make_unique<BatchNorm2d>(channels, momentum, epsilon));
      },
      py::arg("channels"), py::arg("momentum") = 0.9f, py::arg("epsilon") = 1e-3f,
      "BatchNorm2d (layers/batch_norm.h): gamma, beta (trained), running_mean, running_var (state).");
  layers.def(
      "LeakyReLU", [make](float slope) { return make(std::make_unique<LeakyReLU>(slope)); }, py::arg("slope") = 0.0f,
      "LeakyReLU (layers/leaky_relu.h); the notebook's slope is 0.");
  layers.def(
      "MaxPool2d", [make]() { return make(std::make_unique<MaxPool2d>()); }, "2x2 max pooling, stride 2.");
  layers.def(
      "Upsample", [make](int factor) { return make(std::make_unique<Upsample>(factor)); }, py::arg("factor"),
      "Nearest upsampling by `factor`.");
  layers.def(
      "Sigmoid", [make]() { return make(std::make_unique<Sigmoid>()); }, "Elementwise sigmoid.");
  layers.def(
      "Add", [make]() { return make(std::make_unique<Add>()); }, "first + second (two inputs).");
  layers.def(
      "Dropout",
      [make](float rate, uint64_t seed, uint64_t step) {
        return make(std::make_unique<Dropout>(rate, seed), 0, "", step);
      },
      py::arg("rate"), py::arg("seed") = 0, py::arg("step") = 0,
      "Dropout (layers/dropout.h): the mask of (seed, step); identity when not training.");
}

}  // namespace pneumo::python
