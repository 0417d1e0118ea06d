// ONNX export (apps/onnx_export.cpp), without Python: a small trained network
// (tests/fixtures/peers/onnx_reference.safetensors, from benchmarks/peers/make_onnx_fixture.sh)
// is exported again here; the file must pass ONNX's checker (inside export_onnx), carry the
// checkpoint's numbers in ONNX's layouts, and pneumo's probabilities for the fixture's images must
// match the ones ONNX Runtime computed from the exported model when the fixture was made.
// Built only when CMake finds libonnx.
#include <doctest/doctest.h>

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "apps/onnx_export.h"
#include "engine/check.h"
#include "engine/context.h"
#include "engine/safetensors.h"
#include "layers/network.h"
#include "tests/support/fixtures.h"

using namespace pneumo;

namespace {

// Tolerance on probabilities: both sides float32 with different summation orders; pneumo's forward
// is within 1e-5 of a float64 PyTorch (test_golden), so two float32 runs may be 2e-5 apart. Export
// mistakes (a transposed kernel, a lost epsilon, misaligned upsampling) cost 1e-2 or more.
constexpr double kProbabilityTolerance = 2e-5;

struct Loaded {
  NetworkConfig config;
  SafetensorsContents fixture;
};

Loaded load_fixture(Network*& network_out, std::unique_ptr<Network>& owner) {
  Loaded loaded;
  loaded.fixture = read_safetensors(pneumo::testing::fixture_path("peers/onnx_reference.safetensors"));
  auto field = [&](const char* key) {
    REQUIRE(loaded.fixture.metadata.count(key));
    return std::stoll(loaded.fixture.metadata.at(key));
  };
  loaded.config = NetworkConfig{field("network.input_size"), field("network.channels"), field("network.n_blocks"),
                                field("network.depth"), 0.0f};
  owner = std::make_unique<Network>(Device::CPU, loaded.config, 0);
  for (const auto& entry : owner->parameters().entries()) {
    const SafetensorsTensor* weight = loaded.fixture.find("weight." + entry.spec.name);
    REQUIRE(weight);
    REQUIRE(weight->shape == entry.spec.shape);
    Tensor value = entry.value;
    value.set_values(weight->floats());
  }
  network_out = owner.get();
  return loaded;
}

std::string temporary_path(const char* name) { return "/tmp/pneumo-test-" + std::to_string(::getpid()) + "-" + name; }

}  // namespace

TEST_CASE("the exported ONNX model carries the checkpoint and reproduces ONNX Runtime's probabilities") {
  Network* network = nullptr;
  std::unique_ptr<Network> owner;
  const Loaded loaded = load_fixture(network, owner);
  const std::string path = temporary_path("model.onnx");
  cli::export_onnx(loaded.config, network->parameters(), path);  // throws if the checker rejects it

  onnx::ModelProto model;
  {
    std::ifstream file(path, std::ios::binary);
    REQUIRE(model.ParseFromIstream(&file));
  }
  std::remove(path.c_str());
  CHECK(model.opset_import(0).version() == 13);
  const onnx::GraphProto& graph = model.graph();
  REQUIRE(graph.input_size() == 1);
  REQUIRE(graph.output_size() == 1);
  CHECK(graph.input(0).name() == "images");
  CHECK(graph.output(0).name() == "probabilities");
  const auto& input_shape = graph.input(0).type().tensor_type().shape();
  REQUIRE(input_shape.dim_size() == 4);
  CHECK(input_shape.dim(0).dim_param() == "N");
  CHECK(input_shape.dim(1).dim_value() == 1);
  CHECK(input_shape.dim(2).dim_value() == loaded.config.input_size);

  // One ONNX node per network node, same names and kinds.
  std::map<std::string, std::string> op_of;
  for (const auto& node : graph.node()) op_of[node.name()] = node.op_type();
  REQUIRE(graph.node_size() == static_cast<int>(network->nodes().size()));
  const std::map<std::string, std::string> expected_op{
      {"Conv2d", "Conv"},         {"BatchNorm2d", "BatchNormalization"},
      {"LeakyReLU", "LeakyRelu"}, {"MaxPool2d", "MaxPool"},
      {"Sigmoid", "Sigmoid"},     {"Add", "Add"},
      {"Upsample", "Resize"}};
  for (const auto& node : network->nodes()) CHECK(op_of[node.name] == expected_op.at(node.layer->kind()));
  for (const auto& node : graph.node())
    if (node.op_type() == "BatchNormalization") {
      REQUIRE(node.attribute_size() == 1);
      CHECK(node.attribute(0).name() == "epsilon");
      CHECK(node.attribute(0).f() == doctest::Approx(1e-3));
    }

  // Every parameter is an initializer with the checkpoint's numbers; conv weights (K,R,S,C) ->
  // ONNX (K,C,R,S), checked element by element with a naive index map.
  std::map<std::string, const onnx::TensorProto*> initializers;
  for (const auto& initializer : graph.initializer()) initializers[initializer.name()] = &initializer;
  int checked = 0;
  for (const auto& entry : network->parameters().entries()) {
    REQUIRE(initializers.count(entry.spec.name));
    const onnx::TensorProto& initializer = *initializers[entry.spec.name];
    const std::vector<float> ours = entry.value.to_vector();
    REQUIRE(initializer.raw_data().size() == ours.size() * sizeof(float));
    std::vector<float> theirs(ours.size());
    std::memcpy(theirs.data(), initializer.raw_data().data(), initializer.raw_data().size());
    const Shape& shape = entry.spec.shape;
    if (shape.size() == 4) {
      CHECK(initializer.dims(0) == shape[0]);
      CHECK(initializer.dims(1) == shape[3]);
      CHECK(initializer.dims(2) == shape[1]);
      for (int64_t k = 0; k < shape[0]; ++k)
        for (int64_t r = 0; r < shape[1]; ++r)
          for (int64_t s = 0; s < shape[2]; ++s)
            for (int64_t c = 0; c < shape[3]; ++c)
              REQUIRE(theirs[((k * shape[3] + c) * shape[1] + r) * shape[2] + s] ==
                      ours[((k * shape[1] + r) * shape[2] + s) * shape[3] + c]);
    } else {
      CHECK(theirs == ours);
    }
    ++checked;
  }
  CHECK(checked == static_cast<int>(network->parameters().entries().size()));

  // pneumo now vs ONNX Runtime then, on the same images.
  const SafetensorsTensor* images = loaded.fixture.find("images");
  const SafetensorsTensor* expected = loaded.fixture.find("ort.probabilities");
  REQUIRE(images);
  REQUIRE(expected);
  Context context(Device::CPU);
  Tensor input(Device::CPU, images->shape);  // (N,S,S,1)
  input.set_values(images->floats());
  const std::vector<float> ours = network->forward(context, input, false).to_vector();
  const std::vector<float> ort = expected->floats();
  REQUIRE(ours.size() == ort.size());
  double worst = 0, low = 1, high = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    worst = std::max(worst, std::fabs(double(ours[i]) - ort[i]));
    low = std::min(low, double(ort[i]));
    high = std::max(high, double(ort[i]));
  }
  MESSAGE("pneumo vs ONNX Runtime (" << loaded.fixture.metadata.at("onnxruntime") << "): max |difference| " << worst
                                     << " over probabilities " << low << ".." << high);
  CHECK(high - low > 0.5);  // a trained model, not a constant
  CHECK(worst <= kProbabilityTolerance);
}

// Reads an exported model back (and removes the file).
onnx::ModelProto read_model(const std::string& path) {
  onnx::ModelProto model;
  std::ifstream file(path, std::ios::binary);
  REQUIRE(model.ParseFromIstream(&file));
  std::remove(path.c_str());
  return model;
}

TEST_CASE(
    "a --dropout network exports, each Dropout an Identity node, and computes what the same network without dropout "
    "does") {
  // The same parameters with and without dropout: the dropout network's graph, with each Identity
  // node bypassed, must be the plain network's graph, node for node (op, inputs, output).
  const NetworkConfig plain_config{32, 2, 1, 2, 0.0f, 0.0f};
  NetworkConfig dropout_config = plain_config;
  dropout_config.dropout = 0.25f;
  Network plain(Device::CPU, plain_config, 7);
  Network with_dropout(Device::CPU, dropout_config, 7);
  REQUIRE(with_dropout.nodes().size() == plain.nodes().size() + 2);  // one before each block's conv2
  for (const auto& entry : plain.parameters().entries()) {
    Tensor value = with_dropout.parameters().entry(entry.spec.name).value;
    value.set_values(entry.value.to_vector());
  }
  const std::string plain_path = temporary_path("plain.onnx"), dropout_path = temporary_path("dropout.onnx");
  cli::export_onnx(plain_config, plain.parameters(), plain_path);  // the checker runs inside
  cli::export_onnx(dropout_config, with_dropout.parameters(), dropout_path);
  const onnx::ModelProto plain_model = read_model(plain_path), dropout_model = read_model(dropout_path);

  std::map<std::string, std::string> source_of;  // an Identity's output -> its input
  int identities = 0;
  for (const auto& node : dropout_model.graph().node())
    if (node.op_type() == "Identity") {
      ++identities;
      REQUIRE(node.input_size() == 1);
      REQUIRE(node.output_size() == 1);
      CHECK(node.name().find(".dropout") != std::string::npos);
      CHECK(node.input(0).find(".relu2") != std::string::npos);  // relu2 -> dropout -> conv2
      source_of[node.output(0)] = node.input(0);
    }
  CHECK(identities == 2);
  std::vector<std::string> bypassed;
  for (const auto& node : dropout_model.graph().node()) {
    if (node.op_type() == "Identity") continue;
    std::string line = node.op_type() + " " + node.name() + " <-";
    for (const auto& input : node.input()) line += " " + (source_of.count(input) ? source_of.at(input) : input);
    bypassed.push_back(line + " -> " + node.output(0));
  }
  std::vector<std::string> expected;
  for (const auto& node : plain_model.graph().node()) {
    std::string line = node.op_type() + " " + node.name() + " <-";
    for (const auto& input : node.input()) line += " " + input;
    expected.push_back(line + " -> " + node.output(0));
  }
  CHECK(bypassed == expected);
  REQUIRE(dropout_model.graph().initializer_size() == plain_model.graph().initializer_size());
  for (int i = 0; i < plain_model.graph().initializer_size(); ++i)
    CHECK(dropout_model.graph().initializer(i).SerializeAsString() ==
          plain_model.graph().initializer(i).SerializeAsString());
}

TEST_CASE("export to an unwritable place is a one-line error naming the file") {
  Network network(Device::CPU, NetworkConfig{32, 2, 1, 2, 0.0f}, 1);
  const std::string path = "/nonexistent-folder/model.onnx";
  CHECK_THROWS_WITH_AS(cli::export_onnx(network.config(), network.parameters(), path),
                       doctest::Contains("/nonexistent-folder/model.onnx"), Error);
  // The message says why, not only "cannot write the ONNX model".
  CHECK_THROWS_WITH_AS(cli::export_onnx(network.config(), network.parameters(), path),
                       doctest::Contains("(No such file or directory: the folder does not exist)"), Error);
  const std::string folder = std::filesystem::temp_directory_path().string();
  CHECK_THROWS_WITH_AS(cli::export_onnx(network.config(), network.parameters(), folder),
                       (folder + ": is a folder; expected a file path to write").c_str(), Error);
}
