// Checkpoints as safetensors files (layers/checkpoint.h, layers/checkpoint.md).
#include "layers/checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

#include "engine/check.h"
#include "engine/safetensors.h"

namespace pneumo {

namespace {

const char* const kFormat = "pneumo-checkpoint";
const char* const kFormatVersion = "1";
const char* const kReservedKeys[] = {"format", "format_version", "step", "epoch"};

int64_t parse_metadata_integer(const std::string& path, const std::map<std::string, std::string>& metadata,
                               const std::string& key) {
  auto found = metadata.find(key);
  if (found == metadata.end()) throw Error(path + ": checkpoint metadata lacks '" + key + "'");
  const std::string& text = found->second;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0' || value < 0 || value > kMaxCheckpointCounter)
    throw Error(path + ": checkpoint metadata '" + key + "' should be an integer in 0.." +
                std::to_string(kMaxCheckpointCounter) + ", got " + quoted(text));
  return value;
}

}  // namespace

int64_t checkpoint_counter(const std::map<std::string, std::string>& metadata, const std::string& key,
                           const std::string& path) {
  return parse_metadata_integer(path, metadata, key);
}

void check_checkpoint_size(const std::string& path, const CheckpointInfo& info, int64_t trainable, int64_t state) {
  int64_t values = 0, moments = 0;  // elements of weights and state, of adam_m/ and adam_v/
  for (const auto& [name, shape] : info.tensor_shapes) {
    int64_t count = 1;
    for (int64_t dimension : shape)
      if (dimension < 0 || (dimension != 0 && count > kMaxCheckpointCounter / dimension))
        throw Error(path + ": tensor " + quoted(name, 80) + " has an impossible shape " + shape_string(shape));
      else
        count *= dimension;
    (name.compare(0, 7, "adam_m/") == 0 || name.compare(0, 7, "adam_v/") == 0 ? moments : values) += count;
  }
  if (values != trainable + state || moments != 2 * trainable)
    throw Error(path + ": the checkpoint holds " + std::to_string(values) + " weight and state values and " +
                std::to_string(moments) + " Adam moments, but the network its metadata describes needs " +
                std::to_string(trainable + state) + " and " + std::to_string(2 * trainable));
}

void save_checkpoint(const std::string& path, const ParameterStore& store, const CheckpointInfo& info) {
  PNEUMO_REQUIRE(info.step >= 0 && info.epoch >= 0, path + ": checkpoint step and epoch must be >= 0");
  SafetensorsContents contents;
  for (const std::string key : kReservedKeys)
    if (info.metadata.count(key)) throw Error(path + ": checkpoint metadata key '" + key + "' is reserved");
  contents.metadata = info.metadata;
  contents.metadata["format"] = kFormat;
  contents.metadata["format_version"] = kFormatVersion;
  contents.metadata["step"] = std::to_string(info.step);
  contents.metadata["epoch"] = std::to_string(info.epoch);

  // Device -> host, one copy per flat buffer.
  const std::vector<float> values = store.values().to_vector();  // (P)
  const std::vector<float> adam_m = store.adam_m().to_vector();  // (P)
  const std::vector<float> adam_v = store.adam_v().to_vector();  // (P)
  const std::vector<float> state = store.state().to_vector();    // (S)
  for (const ParameterEntry& entry : store.entries()) {
    const ParameterSpec& spec = entry.spec;
    const std::vector<float>& source = spec.trainable ? values : state;
    contents.tensors.push_back(SafetensorsTensor::from_floats(spec.name, spec.shape, source.data() + entry.offset));
  }
  for (const char* prefix : {"adam_m/", "adam_v/"}) {
    const std::vector<float>& moments = prefix[5] == 'm' ? adam_m : adam_v;
    for (const ParameterEntry& entry : store.entries())
      if (entry.spec.trainable)
        contents.tensors.push_back(
            SafetensorsTensor::from_floats(prefix + entry.spec.name, entry.spec.shape, moments.data() + entry.offset));
  }
  write_safetensors(path, contents);
}

namespace {
CheckpointInfo checkpoint_info(const std::string& path, const SafetensorsContents& contents) {
  auto format = contents.metadata.find("format");
  if (format == contents.metadata.end() || format->second != kFormat)
    throw Error(path + ": not a pneumo checkpoint (metadata 'format' is not '" + kFormat + "')");
  auto version = contents.metadata.find("format_version");
  if (version == contents.metadata.end() || version->second != kFormatVersion)
    throw Error(path + ": checkpoint format_version " +
                (version == contents.metadata.end() ? std::string("missing") : quoted(version->second)) +
                " is not supported (expected " + kFormatVersion + ")");
  CheckpointInfo info;
  info.step = parse_metadata_integer(path, contents.metadata, "step");
  info.epoch = parse_metadata_integer(path, contents.metadata, "epoch");
  info.metadata = contents.metadata;
  for (const std::string key : kReservedKeys) info.metadata.erase(key);
  for (const SafetensorsTensor& tensor : contents.tensors) info.tensor_shapes[tensor.name] = tensor.shape;
  return info;
}
}  // namespace

CheckpointInfo read_checkpoint_info(const std::string& path) { return checkpoint_info(path, read_safetensors(path)); }

CheckpointInfo load_checkpoint(const std::string& path, ParameterStore& store) {
  store.require_mutable(("load_checkpoint " + path).c_str());
  const SafetensorsContents contents = read_safetensors(path);
  CheckpointInfo info = checkpoint_info(path, contents);

  // Fill host copies of the flat buffers; the store is touched only after every check passed.
  std::vector<float> values(static_cast<size_t>(store.trainable_count()));  // (P)
  std::vector<float> adam_m(values.size()), adam_v(values.size());          // (P)
  std::vector<float> state(static_cast<size_t>(store.state_count()));       // (S)
  std::set<std::string> expected;
  auto take = [&](const std::string& name, const Shape& shape, std::vector<float>& destination, int64_t offset) {
    expected.insert(name);
    const SafetensorsTensor* tensor = contents.find(name);
    if (!tensor) throw Error(path + ": checkpoint lacks tensor '" + name + "' that the model needs");
    if (tensor->dtype != SafetensorsDtype::F32)
      throw Error(path + ": tensor '" + name + "' has dtype " + safetensors_dtype_name(tensor->dtype) +
                  ", expected F32");
    if (tensor->shape != shape)
      throw Error(path + ": tensor '" + name + "' has shape " + shape_string(tensor->shape) +
                  " but the model expects " + shape_string(shape));
    float* values_of_tensor = destination.data() + offset;
    std::copy(tensor->bytes.begin(), tensor->bytes.end(), reinterpret_cast<unsigned char*>(values_of_tensor));
    const int64_t count = static_cast<int64_t>(tensor->bytes.size() / sizeof(float));
    for (int64_t i = 0; i < count; ++i)
      if (!std::isfinite(values_of_tensor[i]))
        throw Error(path + ": tensor '" + name + "' holds " + std::to_string(values_of_tensor[i]) + " at flat index " +
                    std::to_string(i) + "; a checkpoint must hold finite values only");
  };
  for (const ParameterEntry& entry : store.entries()) {
    const ParameterSpec& spec = entry.spec;
    take(spec.name, spec.shape, spec.trainable ? values : state, entry.offset);
    if (spec.trainable) {
      take("adam_m/" + spec.name, spec.shape, adam_m, entry.offset);
      take("adam_v/" + spec.name, spec.shape, adam_v, entry.offset);
    }
  }
  for (const SafetensorsTensor& tensor : contents.tensors)
    if (!expected.count(tensor.name))
      throw Error(path + ": checkpoint has tensor " + quoted(tensor.name, 80) + " that the model does not have");

  // Host -> device (or host), one copy per flat buffer.
  store.values().set_values(values);
  store.adam_m().set_values(adam_m);
  store.adam_v().set_values(adam_v);
  store.state().set_values(state);
  return info;
}

}  // namespace pneumo
