// pneumo.Network: the notebook's network (layers/network.h) on numpy arrays. Forward, backward,
// every node's output and d loss / d output, every parameter with its gradient and Adam moments
// by name, and checkpoints (layers/checkpoint.h) with the network's configuration in their
// metadata, as `pneumo train` writes them.
#include <pybind11/stl.h>

#include "apps/python/arrays.h"
#include "apps/python/bindings.h"
#include "apps/run_settings.h"
#include "engine/check.h"
#include "layers/checkpoint.h"

namespace pneumo::python {

namespace {

NetworkConfig make_config(int64_t size, int64_t channels, int64_t blocks, int64_t depth, float leaky_slope,
                          float dropout) {
  NetworkConfig config;
  config.input_size = size;
  config.channels = channels;
  config.n_blocks = blocks;
  config.depth = depth;
  config.leaky_slope = leaky_slope;
  config.dropout = dropout;
  return config;
}

// The CPU convolution policy: a program's default (`fast`, or PNEUMO_CONV_ALGO / _TUNING), as
// `pneumo train` computes, unless `algorithms` names a list ("direct,gemm": the reference sums).
ConvPolicy conv_policy(const std::string& algorithms) {
  ConvPolicy policy = conv_policy_from_environment();
  if (!algorithms.empty()) {
    policy.algorithms = parse_conv_algorithms(algorithms);
    policy.origin = "pneumo.Network(conv_algorithms=)";
  }
  return policy;
}

int node_index(const Network& network, const std::string& name) {
  const auto& nodes = network.nodes();
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == name) return static_cast<int>(i);
  throw Error("no node " + quoted(name, 80) + " in the network (Network.node_names() lists them; e.g. 'conv0', " +
              "'block1_1.conv1', 'head.sigmoid')");
}

const ParameterEntry& trainable_entry(const Network& network, const std::string& name, const char* what) {
  const ParameterEntry& entry = network.parameters().entry(name);
  if (!entry.spec.trainable)
    throw Error("parameter " + quoted(name, 80) + " is batch-norm state, not trained: it has no " + what);
  return entry;
}

void require_forward(const NetworkHandle& handle, const char* what) {
  if (handle.images.is_none()) throw Error(std::string(what) + ": run forward (or a training step) first");
}

py::dict info_dict(const CheckpointInfo& info) {
  py::dict result;
  result["step"] = info.step;
  result["epoch"] = info.epoch;
  result["metadata"] = info.metadata;
  py::dict shapes;
  for (const auto& [name, shape] : info.tensor_shapes) shapes[py::str(name)] = py::tuple(py::cast(shape));
  result["tensor_shapes"] = shapes;
  return result;
}

}  // namespace

NetworkHandle::NetworkHandle(const NetworkConfig& config, uint64_t seed)
    : network(std::make_unique<Network>(Device::CPU, config, seed)), images(py::none()) {}

void bind_network(py::module_& module) {
  py::class_<NetworkHandle>(module, "Network",
                            "The notebook's residual segmentation network (layers/network.h) on the CPU: images "
                            "(N,S,S,1) float32 -> probabilities (N,S,S,1).")
      .def(py::init([](int64_t size, int64_t channels, int64_t blocks, int64_t depth, uint64_t seed, float leaky_slope,
                       float dropout, const std::string& conv_algorithms, bool in_place) {
             auto handle = std::make_unique<NetworkHandle>(
                 make_config(size, channels, blocks, depth, leaky_slope, dropout), seed);
             handle->network->set_conv_policy(conv_policy(conv_algorithms));
             handle->network->set_in_place(in_place);
             return handle;
           }),
           py::arg("size") = 256, py::arg("channels") = 32, py::arg("blocks") = 2, py::arg("depth") = 4,
           py::arg("seed") = 1, py::arg("leaky_slope") = 0.0f, py::arg("dropout") = 0.0f,
           py::arg("conv_algorithms") = "", py::arg("in_place") = false,
           "Builds the network initialized from `seed` as `pneumo train --seed` does. conv_algorithms: the CPU "
           "convolution list ('' = the program's default, as `pneumo train`). in_place=True saves memory, but "
           "then a batch norm's or conv2's output holds its consumer's values (read_output refuses those).")
      .def_property_readonly("config",
                             [](const NetworkHandle& handle) {
                               const NetworkConfig& config = handle.network->config();
                               py::dict result;
                               result["size"] = config.input_size;
                               result["channels"] = config.channels;
                               result["blocks"] = config.n_blocks;
                               result["depth"] = config.depth;
                               result["leaky_slope"] = config.leaky_slope;
                               result["dropout"] = config.dropout;
                               return result;
                             })
      .def_property(
          "precision",
          [](const NetworkHandle& handle) { return std::string(precision_name(handle.network->precision())); },
          [](NetworkHandle& handle, const std::string& name) { handle.network->set_precision(parse_precision(name)); },
          "The convolutions' precision, 'fp32' or 'bf16' (layers/precision.md), as `pneumo train --precision`.")
      .def_property_readonly("trainable_parameter_count",
                             [](const NetworkHandle& handle) { return handle.network->trainable_parameter_count(); })
      .def(
          "summary",
          [](const NetworkHandle& handle, int64_t batch) { return format_summary(summarize(*handle.network, batch)); },
          py::arg("batch") = 1, "The model summary table (as `pneumo summary`).")
      .def(
          "node_names",
          [](const NetworkHandle& handle) {
            std::vector<std::string> names;
            for (const NetworkNode& node : handle.network->nodes()) names.push_back(node.name);
            return names;
          },
          "The nodes in forward order: conv0, down1.bn, ..., head.upsample.")
      .def(
          "node",
          [](const NetworkHandle& handle, const std::string& name) {
            const Network& network = *handle.network;
            const NetworkNode& node = network.nodes()[static_cast<size_t>(node_index(network, name))];
            py::dict result;
            result["kind"] = node.layer->kind();
            std::vector<std::string> inputs;
            for (int i : node.inputs) inputs.push_back(i < 0 ? std::string("images") : network.nodes()[i].name);
            result["inputs"] = inputs;
            result["image_shape"] = py::tuple(py::cast(node.image_shape));
            std::vector<std::string> parameters;
            for (const ParameterSpec& spec : node.layer->parameter_specs())
              parameters.push_back(name + "." + spec.name);
            result["parameters"] = parameters;
            return result;
          },
          py::arg("name"), "A node's layer kind, inputs, output shape per image and parameter names.")
      .def(
          "forward",
          [](const py::object& self, const py::array& images, bool training) {
            NetworkHandle& handle = self.cast<NetworkHandle&>();
            const int64_t size = handle.network->config().input_size;
            const Tensor view = tensor_view(images, "images", 4);
            require_shape(view, handle.network->input_shape(view.N()), "images");
            (void)size;
            handle.node_gradients.clear();
            handle.images = images;  // the network reads them again in backward
            const Tensor& output = handle.network->forward(handle.context, view, training);
            return array_view(output, self, false);
          },
          py::arg("images"), py::arg("training") = false,
          "images (N,S,S,1) float32 -> probabilities (N,S,S,1), a read-only view of the network's buffer, valid "
          "until the next forward (copy it to keep it). training=True: batch statistics, running ones updated.")
      .def(
          "backward",
          [](const py::object& self, const py::array& output_gradient, bool input_gradient) -> py::object {
            NetworkHandle& handle = self.cast<NetworkHandle&>();
            require_forward(handle, "backward");
            Network& network = *handle.network;
            const Tensor gradient = tensor_view(output_gradient, "output_gradient", network.output().shape());
            Tensor images_gradient;
            py::object images_gradient_array = py::none();
            if (input_gradient) images_gradient_array = new_array(network.output().shape(), &images_gradient);
            // Node by node, copying each node's d loss / d output while it is complete (all its
            // consumers ran); the network hands its buffers on to other nodes afterwards.
            handle.node_gradients.clear();
            network.begin_backward(gradient, input_gradient ? &images_gradient : nullptr);
            for (int i = static_cast<int>(network.nodes().size()) - 1; i >= 0; --i) {
              const NetworkNode& node = network.nodes()[static_cast<size_t>(i)];
              Tensor copy;
              py::array_t<float> array = new_array(node.output_gradient.shape(), &copy);
              copy.copy_from(node.output_gradient);
              handle.node_gradients[node.name] = array;
              network.backward_node(handle.context, i);
            }
            network.end_backward();
            return images_gradient_array;
          },
          py::arg("output_gradient"), py::arg("input_gradient") = false,
          "d loss / d probabilities (N,S,S,1) -> ACCUMULATES into the parameter gradients (zero_gradients first) "
          "and keeps a copy of every node's d loss / d output (read_gradient). Returns d loss / d images when "
          "input_gradient, else None.")
      .def("zero_gradients", [](NetworkHandle& handle) { handle.network->parameters().zero_gradients(); })
      .def(
          "read_output",
          [](const py::object& self, const std::string& name) {
            NetworkHandle& handle = self.cast<NetworkHandle&>();
            require_forward(handle, "read_output");
            const Network& network = *handle.network;
            const int index = node_index(network, name);
            for (const NetworkNode& other : network.nodes())
              if (other.overwrites == index)
                throw Error("node " + quoted(name, 80) + "'s output was overwritten in place by " + other.name +
                            "; build the Network with in_place=False to read it");
            return array_view(network.nodes()[static_cast<size_t>(index)].output, self, false);
          },
          py::arg("name"), "A node's output (N,H,W,C) of the last forward, a read-only view.")
      .def(
          "read_gradient",
          [](const NetworkHandle& handle, const std::string& name) {
            node_index(*handle.network, name);  // an unknown name is an error of its own
            const auto found = handle.node_gradients.find(name);
            if (found == handle.node_gradients.end())
              throw Error("read_gradient(" + quoted(name, 80) + "): run backward after the last forward first");
            return found->second;
          },
          py::arg("name"), "A node's d loss / d output (N,H,W,C) from the last backward (a copy).")
      .def(
          "parameter_names",
          [](const NetworkHandle& handle) {
            std::vector<std::string> names;
            for (const ParameterEntry& entry : handle.network->parameters().entries()) names.push_back(entry.spec.name);
            return names;
          },
          "Every parameter, trainable then batch-norm state, as the checkpoint names them.")
      .def(
          "parameter",
          [](const py::object& self, const std::string& name) {
            const NetworkHandle& handle = self.cast<const NetworkHandle&>();
            return array_view(handle.network->parameters().entry(name).value, self, true);
          },
          py::arg("name"),
          "A parameter's values, a writable view of the network's own memory (conv weights "
          "(K,R,S,C)).")
      .def(
          "parameter_gradient",
          [](const py::object& self, const std::string& name) {
            const NetworkHandle& handle = self.cast<const NetworkHandle&>();
            return array_view(trainable_entry(*handle.network, name, "gradient").gradient, self, false);
          },
          py::arg("name"), "d loss / d parameter, accumulated by backward (read-only view).")
      .def(
          "adam_m",
          [](const py::object& self, const std::string& name) {
            const NetworkHandle& handle = self.cast<const NetworkHandle&>();
            return array_view(trainable_entry(*handle.network, name, "Adam moment").adam_m, self, false);
          },
          py::arg("name"), "Adam's first moment of a parameter (read-only view).")
      .def(
          "adam_v",
          [](const py::object& self, const std::string& name) {
            const NetworkHandle& handle = self.cast<const NetworkHandle&>();
            return array_view(trainable_entry(*handle.network, name, "Adam moment").adam_v, self, false);
          },
          py::arg("name"), "Adam's second moment of a parameter (read-only view).")
      .def(
          "save",
          [](const NetworkHandle& handle, const std::string& path, int64_t step, int64_t epoch,
             const std::map<std::string, std::string>& metadata) {
            CheckpointInfo info;
            info.step = step;
            info.epoch = epoch;
            info.metadata = metadata;
            cli::add_network_metadata(info.metadata, handle.network->config());
            save_checkpoint(path, handle.network->parameters(), info);
          },
          py::arg("path"), py::arg("step") = 0, py::arg("epoch") = 0,
          py::arg("metadata") = std::map<std::string, std::string>{},
          "Writes a checkpoint (values, batch-norm state, Adam moments; layers/checkpoint.md) with the network's "
          "configuration, readable by `pneumo predict` and pneumo.load_network.")
      .def(
          "load",
          [](NetworkHandle& handle, const std::string& path) {
            return info_dict(load_checkpoint(path, handle.network->parameters()));
          },
          py::arg("path"),
          "Reads a checkpoint of this configuration into the network; returns its step, "
          "epoch and metadata.");

  module.def(
      "load_network",
      [](const std::string& path, const std::string& conv_algorithms) {
        const CheckpointInfo info = read_checkpoint_info(path);
        auto handle = std::make_unique<NetworkHandle>(cli::network_config_from_metadata(info.metadata, path), 1);
        handle->network->set_conv_policy(conv_policy(conv_algorithms));
        handle->network->set_in_place(false);
        load_checkpoint(path, handle->network->parameters());
        return handle;
      },
      py::arg("path"), py::arg("conv_algorithms") = "",
      "The network a checkpoint describes (its network.* metadata), with its values loaded.");
  module.def(
      "read_checkpoint_info", [](const std::string& path) { return info_dict(read_checkpoint_info(path)); },
      py::arg("path"), "A checkpoint's step, epoch, metadata and tensor shapes, validated, without loading it.");
}

}  // namespace pneumo::python
