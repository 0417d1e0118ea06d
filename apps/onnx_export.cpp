#include "apps/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstdio>

#include "engine/check.h"
#include "engine/files.h"
#include "layers/batch_norm.h"

namespace pneumo::cli {

namespace {

constexpr int64_t kOpset = 13;  // ONNX 1.8+: Resize with (X, roi, scales), BatchNormalization-9 semantics

// A float initializer (a weight) named `name` with `dims`, from values in that exact layout.
void add_initializer(onnx::GraphProto& graph, const std::string& name, const std::vector<int64_t>& dims,
                     const std::vector<float>& values) {
  onnx::TensorProto* tensor = graph.add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t dim : dims) tensor->add_dims(dim);
  tensor->set_raw_data(values.data(), values.size() * sizeof(float));  // little-endian, as ONNX requires
}

onnx::NodeProto* add_node(onnx::GraphProto& graph, const std::string& op, const std::string& name,
                          const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* node = graph.add_node();
  node->set_op_type(op);
  node->set_name(name);
  for (const auto& input : inputs) node->add_input(input);
  node->add_output(output);
  return node;
}

void set_ints(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* attribute = node->add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INTS);
  for (int64_t value : values) attribute->add_ints(value);
}

void set_float(onnx::NodeProto* node, const std::string& name, float value) {
  onnx::AttributeProto* attribute = node->add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::FLOAT);
  attribute->set_f(value);
}

void set_string(onnx::NodeProto* node, const std::string& name, const std::string& value) {
  onnx::AttributeProto* attribute = node->add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::STRING);
  attribute->set_s(value);
}

// (N,1,S,S) float, N symbolic.
void describe_image_value(onnx::ValueInfoProto* value, const std::string& name, int64_t size) {
  value->set_name(name);
  onnx::TypeProto_Tensor* type = value->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = type->mutable_shape();
  shape->add_dim()->set_dim_param("N");
  shape->add_dim()->set_dim_value(1);
  shape->add_dim()->set_dim_value(size);
  shape->add_dim()->set_dim_value(size);
}

// Conv weights: pneumo's (K,R,S,C) -> ONNX's (K,C,R,S).
std::vector<float> krsc_to_kcrs(const std::vector<float>& krsc, const Shape& shape) {
  const int64_t K = shape[0], R = shape[1], S = shape[2], C = shape[3];
  std::vector<float> kcrs(krsc.size());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < C; ++c) kcrs[((k * C + c) * R + r) * S + s] = krsc[((k * R + r) * S + s) * C + c];
  return kcrs;
}

}  // namespace

void export_onnx(const NetworkConfig& config, const ParameterStore& store, const std::string& path) {
  // The graph mirrors the network's nodes one for one (same names), built from a CPU network of
  // the same configuration: only the node list and kinds are read from it; every number comes
  // from `store`.
  Network shape_source(Device::CPU, config, 0);
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("pneumo");
  model.set_producer_version("1");
  model.set_doc_string(
      "The RSNA pneumonia seed notebook's segmentation network (create_network), exported by pneumo. "
      "Input: images (N,1,S,S), DICOM pixels / (2^BitsStored - 1), resized to S (scikit-image "
      "bilinear, mode=reflect). Output: per-pixel pneumonia probabilities (N,1,S,S).");
  model.add_opset_import()->set_version(kOpset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("pneumo_network");
  describe_image_value(graph.add_input(), "images", config.input_size);

  auto values_of = [&](const std::string& name) {
    if (!store.contains(name)) throw Error(path + ": the parameters have no tensor '" + name + "'");
    return store.entry(name).value.to_vector();  // device -> host when the store is on CUDA
  };
  std::vector<std::string> outputs;  // per node, its output's name
  for (const NetworkNode& node : shape_source.nodes()) {
    std::vector<std::string> inputs;
    for (int index : node.inputs) inputs.push_back(index < 0 ? "images" : outputs[static_cast<size_t>(index)]);
    const std::string kind = node.layer->kind();
    const std::string& name = node.name;
    std::string output = name;
    if (kind == "Conv2d") {
      const Shape shape = store.entry(name + ".weight").spec.shape;  // (K,R,S,C)
      add_initializer(graph, name + ".weight", {shape[0], shape[3], shape[1], shape[2]},
                      krsc_to_kcrs(values_of(name + ".weight"), shape));
      inputs.push_back(name + ".weight");
      if (store.contains(name + ".bias")) {
        add_initializer(graph, name + ".bias", {shape[0]}, values_of(name + ".bias"));
        inputs.push_back(name + ".bias");
      }
      onnx::NodeProto* conv = add_node(graph, "Conv", name, inputs, output);
      set_ints(conv, "kernel_shape", {shape[1], shape[2]});
      const int64_t pad_r = (shape[1] - 1) / 2, pad_s = (shape[2] - 1) / 2;  // 'same', odd kernels
      set_ints(conv, "pads", {pad_r, pad_s, shape[1] - 1 - pad_r, shape[2] - 1 - pad_s});
      set_ints(conv, "strides", {1, 1});
    } else if (kind == "BatchNorm2d") {
      const int64_t channels = store.entry(name + ".gamma").spec.shape[0];
      for (const char* field : {"gamma", "beta", "running_mean", "running_var"}) {
        add_initializer(graph, name + "." + field, {channels}, values_of(name + "." + field));
        inputs.push_back(name + "." + field);
      }
      onnx::NodeProto* bn = add_node(graph, "BatchNormalization", name, inputs, output);
      set_float(bn, "epsilon", static_cast<const BatchNorm2d&>(*node.layer).epsilon());
    } else if (kind == "LeakyReLU") {
      set_float(add_node(graph, "LeakyRelu", name, inputs, output), "alpha", config.leaky_slope);
    } else if (kind == "MaxPool2d") {
      onnx::NodeProto* pool = add_node(graph, "MaxPool", name, inputs, output);
      set_ints(pool, "kernel_shape", {2, 2});
      set_ints(pool, "strides", {2, 2});
    } else if (kind == "Sigmoid") {
      add_node(graph, "Sigmoid", name, inputs, output);
    } else if (kind == "Add") {
      add_node(graph, "Add", name, inputs, output);
    } else if (kind == "Upsample") {
      // Nearest neighbour by an integer factor: output pixel (y, x) = input (floor(y/f), floor(x/f)).
      const float factor = static_cast<float>(int64_t{1} << config.depth);
      add_initializer(graph, name + ".scales", {4}, {1.0f, 1.0f, factor, factor});
      inputs.push_back("");  // no roi
      inputs.push_back(name + ".scales");
      onnx::NodeProto* resize = add_node(graph, "Resize", name, inputs, output);
      set_string(resize, "mode", "nearest");
      set_string(resize, "coordinate_transformation_mode", "asymmetric");
      set_string(resize, "nearest_mode", "floor");
    } else if (kind == "Dropout") {
      // Identity at inference (layers/dropout.md): the exported model is always an inference
      // model, so the node passes its input through, keeping the one-for-one node names.
      add_node(graph, "Identity", name, inputs, output);
    } else {
      throw Error(path + ": cannot export a layer of kind " + kind + " (" + name + ")");
    }
    outputs.push_back(output);
  }
  // The last node's output is the graph output, renamed.
  graph.mutable_node(graph.node_size() - 1)->set_output(0, "probabilities");
  describe_image_value(graph.add_output(), "probabilities", config.input_size);

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& error) {
    throw Error(path + ": the ONNX checker rejects the exported model: " + error.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error(path + ": cannot serialize the ONNX model (over 2 GiB?)");
  write_file_atomic(path, bytes);  // errors name the path and the reason (missing folder, a folder, disk full)
}

}  // namespace pneumo::cli
