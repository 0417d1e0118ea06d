// Safetensors I/O (engine/safetensors.h) and checkpoints (layers/checkpoint.h): round trips bit
// for bit, files exchanged with plain numpy + json in /usr/bin/python3, damaged files that must
// each give a clear error, atomic writes, and checkpoint name/shape checks.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/parameters.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_process.h"

using namespace pneumo;
using pneumo::testing::error_of;
using pneumo::testing::run_process;
namespace fs = std::filesystem;

namespace {

// A fresh scratch folder under the test's working directory (the build folder).
std::string scratch_folder(const std::string& name) {
  const fs::path folder = fs::current_path() / "test_safetensors_scratch" / name;
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder.string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string length_prefix(uint64_t length) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xFF);
  return bytes;
}

// A hand-made file: 8-byte length, header text, data.
std::string raw_file(const std::string& header, const std::string& data) {
  return length_prefix(header.size()) + header + data;
}

std::string float_bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(&bytes[0], values.data(), bytes.size());
  return bytes;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool python_with_numpy() { return run_process({"/usr/bin/python3", "-c", "import numpy"}, "", true) == 0; }

SafetensorsContents sample_contents() {
  SafetensorsContents contents;
  const float specials[6] = {
      1.5f, -0.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(), -3.25e-20f, 7.0f};
  contents.tensors.push_back(SafetensorsTensor::from_floats("block1.conv1.weight", {2, 1, 1, 3}, specials));
  float nan_payload;
  const uint32_t nan_bits = 0x7fc01234u;  // a NaN with a payload must survive bit for bit
  std::memcpy(&nan_payload, &nan_bits, sizeof(float));
  contents.tensors.push_back(SafetensorsTensor::from_floats("scalar", {}, &nan_payload));
  const int64_t integers[3] = {-1, 0, 1LL << 40};
  contents.tensors.push_back(SafetensorsTensor::from_int64s("counts", {3}, integers));
  contents.tensors.push_back(SafetensorsTensor::from_floats("empty", {0, 4}, nullptr));
  contents.metadata["step"] = "1234";
  contents.metadata["note \"quoted\""] = "back\\slash, new\nline, tab\t, \x01, caf\xc3\xa9";
  return contents;
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, shapes, bytes and metadata") {
  const std::string path = scratch_folder("round_trip") + "/sample.safetensors";
  const SafetensorsContents written = sample_contents();
  write_safetensors(path, written);
  const std::string bytes = read_bytes(path);
  uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i)
    header_length |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[static_cast<size_t>(i)])) << (8 * i);
  CHECK((8 + header_length) % 8 == 0);  // data is 8-byte aligned
  CHECK(bytes.size() == 8 + header_length + 24 + 4 + 24);
  const SafetensorsContents read = read_safetensors(path);
  CHECK(read.metadata == written.metadata);
  REQUIRE(read.tensors.size() == written.tensors.size());
  for (const SafetensorsTensor& expected : written.tensors) {
    const SafetensorsTensor* tensor = read.find(expected.name);
    REQUIRE_MESSAGE(tensor, expected.name);
    CHECK(tensor->dtype == expected.dtype);
    CHECK(tensor->shape == expected.shape);
    CHECK(tensor->bytes == expected.bytes);
  }
  CHECK(read.find("counts")->int64s() == std::vector<int64_t>{-1, 0, 1LL << 40});
  CHECK(read.find("block1.conv1.weight")->floats()[0] == 1.5f);
  CHECK(std::signbit(read.find("block1.conv1.weight")->floats()[1]));
  CHECK_THROWS_AS(read.find("counts")->floats(), Error);
  CHECK(read.find("missing") == nullptr);
}

TEST_CASE("safetensors files are exchanged with plain numpy + json") {
  if (!python_with_numpy()) {
    std::printf("SKIPPED %s: /usr/bin/python3 with numpy is not available\n", __FILE__);
    return;
  }
  const std::string folder = scratch_folder("numpy");
  const std::string ours = folder + "/ours.safetensors", listing = folder + "/listing.txt",
                    theirs = folder + "/theirs.safetensors", script = folder + "/exchange.py";
  write_safetensors(ours, sample_contents());
  // numpy reads our file and lists it, then writes its own file (no padding, reversed order).
  std::ofstream(script) << R"PY(
import json, struct, sys
import numpy as np
ours, listing, theirs = sys.argv[1:4]
with open(ours, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
types = {"F32": "<f4", "I64": "<i8"}
with open(listing, "w") as out:
    out.write("metadata_step %s\n" % header["__metadata__"]["step"])
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=types[info["dtype"]]).reshape(info["shape"])
        out.write("%s %s %s %s\n" % (name, info["dtype"], array.shape,
                  " ".join(repr(float(v)) for v in array.reshape(-1))))
weight = np.arange(12, dtype="<f4").reshape(3, 4) / 8
bias = np.array([-1.0, 2.5], dtype="<f4")
blob = bias.tobytes() + weight.tobytes()
header = {"fc.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [8, 56]},
          "fc.bias": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "__metadata__": {"from": "numpy \u00e9"}}
text = json.dumps(header).encode()
with open(theirs, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + blob)
)PY";
  REQUIRE(run_process({"/usr/bin/python3", script, ours, listing, theirs}) == 0);
  std::ifstream lines(listing);
  std::string line, all;
  while (std::getline(lines, line)) all += line + "\n";
  CHECK(contains(all, "metadata_step 1234\n"));
  CHECK(contains(
      all, "block1.conv1.weight F32 (2, 1, 1, 3) 1.5 -0.0 inf 1.401298464324817e-45 -3.2500000584216616e-20 7.0\n"));
  CHECK(contains(all, "scalar F32 () nan\n"));
  CHECK(contains(all, "counts I64 (3,) -1.0 0.0 1099511627776.0\n"));
  CHECK(contains(all, "empty F32 (0, 4) \n"));
  const SafetensorsContents read = read_safetensors(theirs);
  CHECK(read.metadata.at("from") == "numpy \xc3\xa9");
  REQUIRE(read.tensors.size() == 2);
  CHECK(read.tensors[0].name == "fc.bias");  // file (offset) order
  CHECK(read.find("fc.bias")->floats() == std::vector<float>{-1.0f, 2.5f});
  CHECK(read.find("fc.weight")->shape == Shape{3, 4});
  CHECK(read.find("fc.weight")->floats()[11] == 1.375f);
}

TEST_CASE("damaged safetensors files each give a clear error naming the file") {
  const std::string folder = scratch_folder("damaged");
  const std::string data = float_bytes({1, 2, 3, 4});
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string good = folder + "/good.safetensors";
  write_bytes(good, raw_file(good_header, data));
  CHECK(read_safetensors(good).find("a")->floats() == std::vector<float>{1, 2, 3, 4});

  struct Damage {
    const char* name;
    std::string bytes;
    const char* expected;  // part of the message
  };
  const std::string full = raw_file(good_header, data);
  std::string huge_length = full;
  huge_length.replace(0, 8, length_prefix(1ULL << 40));
  std::string past_end = full;
  past_end.replace(0, 8, length_prefix(full.size()));
  auto header_with = [&](const std::string& header) { return raw_file(header, data); };
  const std::vector<Damage> damages = {
      {"short", std::string("\x05\0\0", 3), "too short for a safetensors file"},
      {"truncated", full.substr(0, full.size() - 4), "data holds only 12 bytes (truncated?)"},
      {"huge_header_length", huge_length, "exceeds the limit"},
      {"header_past_end", past_end, "runs past the end"},
      {"bad_json", header_with(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})"),
       "bad safetensors header JSON"},
      {"bad_json_escape", header_with(R"({"a\q":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})"),
       "unknown escape"},
      {"float_in_shape", header_with(R"({"a":{"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]}})"),
       "non-integer number"},
      {"not_json", header_with("not json at all"), "does not start with a JSON object"},
      {"duplicate",
       header_with(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})"),
       "duplicate key \"a\""},
      {"wrong_dtype", header_with(R"({"a":{"dtype":"F16","shape":[2,4],"data_offsets":[0,16]}})"),
       "tensor 'a' has dtype 'F16'; only F32 and I64 are supported"},
      {"wrong_shape", header_with(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})"),
       "tensor 'a' of shape (2,3) and dtype F32 does not match its 16 data bytes"},
      {"trailing", full + "xxxx", "4 trailing bytes after the last tensor's data"},
      {"gap",
       header_with(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})"),
       "tensor 'b' data starts at byte 12, expected 8"},
      {"overlap",
       header_with(
           R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})"),
       "must be contiguous"},
      {"reversed_offsets", header_with(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})"),
       "end before they begin"},
      {"missing_field", header_with(R"({"a":{"dtype":"F32","shape":[4]}})"), "needs dtype, shape and data_offsets"},
      {"metadata_number",
       header_with(R"({"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})"),
       "__metadata__ value for 'step' must be a string"},
      {"shape_overflow",
       header_with(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})"),
       "does not match its 16 data bytes"},
  };
  for (const Damage& damage : damages) {
    INFO("damage " << damage.name);
    const std::string path = folder + "/" + damage.name + ".safetensors";
    write_bytes(path, damage.bytes);
    const std::string message = error_of([&] { read_safetensors(path); });
    INFO("message: " << message);
    CHECK(contains(message, path + ": "));
    CHECK(contains(message, damage.expected));
    CHECK(message.find('\n') == std::string::npos);  // a one-liner
  }
  const std::string missing = folder + "/missing.safetensors";
  CHECK(contains(error_of([&] { read_safetensors(missing); }), missing + ": cannot open for reading"));
}

TEST_CASE("safetensors writes are atomic and validate their input") {
  const std::string folder = scratch_folder("atomic");
  const std::string path = folder + "/model.safetensors";
  SafetensorsContents first;
  const float one[2] = {1, 2};
  first.tensors.push_back(SafetensorsTensor::from_floats("x", {2}, one));
  write_safetensors(path, first);
  const std::string before = read_bytes(path);

  SafetensorsContents bad = first;
  bad.tensors[0].shape = {3};  // 8 bytes for 3 floats
  CHECK(
      contains(error_of([&] { write_safetensors(path, bad); }), "tensor 'x' of shape (3) holds 8 bytes, expected 12"));
  SafetensorsContents duplicate = first;
  duplicate.tensors.push_back(first.tensors[0]);
  CHECK(contains(error_of([&] { write_safetensors(path, duplicate); }), "two tensors named 'x'"));
  CHECK(read_bytes(path) == before);

  // The target is a folder: refused naming it, no temporary file is left.
  const std::string folder_target = folder + "/a_folder";
  fs::create_directories(folder_target);
  fs::create_directories(folder_target + "/keep");
  CHECK(contains(error_of([&] { write_safetensors(folder_target, first); }), "a_folder: is a folder"));
  int files = 0;
  for (const auto& item : fs::directory_iterator(folder)) {
    (void)item;
    ++files;
  }
  CHECK(files == 2);  // model.safetensors and a_folder, no leftover temporary
  CHECK(read_bytes(path) == before);
  // Overwriting replaces the old contents.
  const float two[2] = {3, 4};
  first.tensors[0] = SafetensorsTensor::from_floats("x", {2}, two);
  write_safetensors(path, first);
  CHECK(read_safetensors(path).find("x")->floats() == std::vector<float>{3, 4});
  CHECK(contains(error_of([&] { write_safetensors(folder + "/no/such/folder/m.safetensors", first); }),
                 "cannot create the temporary file"));
}

namespace {

std::vector<ParameterSpec> checkpoint_specs() {
  return {{"block1.conv1.weight", {4, 3, 3, 2}, Initializer::GlorotUniform, true, 18, 36},
          {"block1.bn1.gamma", {4}, Initializer::Ones, true},
          {"block1.bn1.running_mean", {4}, Initializer::Zeros, false},
          {"block1.bn1.running_var", {4}, Initializer::Ones, false}};
}

void fill_random(Tensor& tensor, std::mt19937_64& generator) {
  std::vector<float> values(static_cast<size_t>(tensor.count()));
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (float& value : values) value = uniform(generator);
  tensor.set_values(values);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("checkpoint round trip restores every buffer bit for bit") {
  const std::string path = scratch_folder("checkpoint") + "/epoch4.safetensors";
  ParameterStore saved(Device::CPU, checkpoint_specs(), 1);
  std::mt19937_64 generator(8);
  fill_random(saved.values(), generator);
  fill_random(saved.adam_m(), generator);
  fill_random(saved.adam_v(), generator);
  fill_random(saved.state(), generator);
  CheckpointInfo info;
  info.step = 123456789012LL;
  info.epoch = 4;
  info.metadata["network"] = "channels=32 blocks=2 depth=4";
  save_checkpoint(path, saved, info);

  ParameterStore loaded(Device::CPU, checkpoint_specs(), 2);
  fill_random(loaded.gradients(), generator);
  const std::vector<float> gradients_before = loaded.gradients().to_vector();
  CHECK(!same_bits(loaded.values(), saved.values()));
  const CheckpointInfo read = load_checkpoint(path, loaded);
  CHECK(read.step == info.step);
  CHECK(read.epoch == 4);
  CHECK(read.metadata == info.metadata);
  CHECK(same_bits(loaded.values(), saved.values()));
  CHECK(same_bits(loaded.adam_m(), saved.adam_m()));
  CHECK(same_bits(loaded.adam_v(), saved.adam_v()));
  CHECK(same_bits(loaded.state(), saved.state()));
  CHECK(loaded.gradients().to_vector() == gradients_before);  // gradients are not checkpointed

  // The documented names and layout.
  const SafetensorsContents file = read_safetensors(path);
  CHECK(file.tensors.size() == 8);  // 4 values + 2 x 2 moments
  CHECK(file.find("block1.conv1.weight")->shape == Shape{4, 3, 3, 2});
  CHECK(file.find("adam_m/block1.bn1.gamma") != nullptr);
  CHECK(file.find("adam_v/block1.conv1.weight") != nullptr);
  CHECK(file.find("block1.bn1.running_var")->floats() == saved.entry("block1.bn1.running_var").value.to_vector());
  CHECK(file.find("adam_m/block1.bn1.running_var") == nullptr);  // no moments for state
  CHECK(file.metadata.at("format") == "pneumo-checkpoint");
  CHECK(file.metadata.at("step") == "123456789012");
}

TEST_CASE("checkpoint loading fails clearly on a different model and leaves the store unchanged") {
  const std::string folder = scratch_folder("checkpoint_mismatch");
  const std::string path = folder + "/model.safetensors";
  ParameterStore saved(Device::CPU, checkpoint_specs(), 1);
  save_checkpoint(path, saved, {});

  auto specs = checkpoint_specs();
  specs[0].shape = {4, 3, 3, 3};
  ParameterStore reshaped(Device::CPU, specs, 5);
  const std::vector<float> before = reshaped.values().to_vector();
  CHECK(contains(error_of([&] { load_checkpoint(path, reshaped); }),
                 path + ": tensor 'block1.conv1.weight' has shape (4,3,3,2) but the model expects (4,3,3,3)"));
  CHECK(reshaped.values().to_vector() == before);

  specs = checkpoint_specs();
  specs.push_back({"block2.conv1.bias", {4}, Initializer::Zeros, true});
  ParameterStore bigger(Device::CPU, specs, 5);
  CHECK(contains(error_of([&] { load_checkpoint(path, bigger); }),
                 "checkpoint lacks tensor 'block2.conv1.bias' that the model needs"));

  specs = checkpoint_specs();
  specs.pop_back();
  ParameterStore smaller(Device::CPU, specs, 5);
  CHECK(contains(error_of([&] { load_checkpoint(path, smaller); }),
                 "checkpoint has tensor 'block1.bn1.running_var' that the model does not have"));

  CheckpointInfo reserved;
  reserved.metadata["step"] = "3";
  CHECK(contains(error_of([&] { save_checkpoint(path, saved, reserved); }), "'step' is reserved"));

  const std::string plain = folder + "/plain.safetensors";
  write_safetensors(plain, {});
  CHECK(contains(error_of([&] { load_checkpoint(plain, saved); }), "not a pneumo checkpoint"));
}

TEST_CASE("checkpoints are readable with plain numpy + json, as layers/checkpoint.md shows") {
  if (!python_with_numpy()) {
    std::printf("SKIPPED %s: /usr/bin/python3 with numpy is not available\n", __FILE__);
    return;
  }
  const std::string folder = scratch_folder("checkpoint_numpy");
  const std::string path = folder + "/model.safetensors", script = folder + "/read.py",
                    listing = folder + "/listing.txt";
  ParameterStore store(Device::CPU, checkpoint_specs(), 3);
  CheckpointInfo info;
  info.step = 42;
  info.epoch = 2;
  save_checkpoint(path, store, info);
  // The snippet of layers/checkpoint.md, then a listing for the test.
  std::ofstream(script) << R"PY(
import json, sys, numpy as np
raw = open(sys.argv[1], "rb").read()
n = int.from_bytes(raw[:8], "little"); header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
meta = header.pop("__metadata__", {})
tensors = {name: np.frombuffer(data[b:e], {"F32": "<f4", "I64": "<i8"}[t["dtype"]]).reshape(t["shape"])
           for name, t in header.items() for b, e in [t["data_offsets"]]}
w = tensors["block1.conv1.weight"]
with open(sys.argv[2], "w") as out:
    out.write("%s %s %s %r\n" % (meta["step"], meta["epoch"], w.shape, float(w[3, 2, 1, 0])))
)PY";
  REQUIRE(run_process({"/usr/bin/python3", script, path, listing}) == 0);
  std::ifstream lines(listing);
  std::string step, epoch, shape, value;
  std::getline(lines, step, ' ');
  std::getline(lines, epoch, ' ');
  std::getline(lines, shape, ')');
  lines >> value;
  CHECK(step == "42");
  CHECK(epoch == "2");
  CHECK(shape == "(4, 3, 3, 2");
  // (K,R,S,C) row-major: element [3,2,1,0] is at ((3*3 + 2)*3 + 1)*2 + 0 = 68.
  CHECK(std::stod(value) == static_cast<double>(store.entry("block1.conv1.weight").value.to_vector()[68]));
}

PNEUMO_GPU_TEST_CASE("checkpoint of a CUDA store round-trips through the host") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  const std::string path = scratch_folder("checkpoint_cuda") + "/model.safetensors";
  ParameterStore cpu_store(Device::CPU, checkpoint_specs(), 1);
  std::mt19937_64 generator(4);
  fill_random(cpu_store.values(), generator);
  fill_random(cpu_store.adam_m(), generator);
  fill_random(cpu_store.adam_v(), generator);
  fill_random(cpu_store.state(), generator);
  ParameterStore cuda_store(Device::CUDA, checkpoint_specs(), 2);
  cuda_store.copy_from(cpu_store);  // host -> device
  CheckpointInfo info;
  info.step = 7;
  save_checkpoint(path, cuda_store, info);
  ParameterStore reloaded(Device::CUDA, checkpoint_specs(), 3);
  CHECK(load_checkpoint(path, reloaded).step == 7);
  CHECK(same_bits(reloaded.values(), cpu_store.values()));
  CHECK(same_bits(reloaded.adam_m(), cpu_store.adam_m()));
  CHECK(same_bits(reloaded.adam_v(), cpu_store.adam_v()));
  CHECK(same_bits(reloaded.state(), cpu_store.state()));
}
