#include "engine/parameters.h"

#include <cmath>
#include <functional>
#include <random>
#include <set>

#include "engine/check.h"

namespace pneumo {

namespace {
uint64_t mix(uint64_t seed, const std::string& name) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a over the name, then mixed with the seed
  for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ULL;
  return hash ^ (seed + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2));
}

std::vector<float> initial_values(const ParameterSpec& spec, uint64_t seed) {
  std::vector<float> values(static_cast<size_t>(shape_count(spec.shape)), 0.0f);
  switch (spec.initializer) {
    case Initializer::Zeros: break;
    case Initializer::Ones: std::fill(values.begin(), values.end(), 1.0f); break;
    case Initializer::GlorotUniform: {
      PNEUMO_REQUIRE(spec.fan_in + spec.fan_out > 0, "GlorotUniform needs fan_in and fan_out for " + spec.name);
      double limit = std::sqrt(6.0 / static_cast<double>(spec.fan_in + spec.fan_out));
      std::mt19937_64 generator(mix(seed, spec.name));
      std::uniform_real_distribution<double> uniform(-limit, limit);
      for (float& value : values) value = static_cast<float>(uniform(generator));
      break;
    }
  }
  return values;
}
}  // namespace

ParameterStore::ParameterStore(Device device, const std::vector<ParameterSpec>& specs, uint64_t seed)
    : device_(device) {
  std::set<std::string> names;
  int64_t trainable = 0, state = 0;
  for (const auto& spec : specs) {
    if (!names.insert(spec.name).second) throw Error("duplicate parameter name " + spec.name);
    ParameterEntry entry;
    entry.spec = spec;
    int64_t& cursor = spec.trainable ? trainable : state;
    entry.offset = cursor;
    cursor += shape_count(spec.shape);
    entries_.push_back(std::move(entry));
  }
  values_ = Tensor(device, {trainable});
  gradients_ = Tensor(device, {trainable});
  adam_m_ = Tensor(device, {trainable});
  adam_v_ = Tensor(device, {trainable});
  state_ = Tensor(device, {state});
  std::vector<float> host_values(static_cast<size_t>(trainable)), host_state(static_cast<size_t>(state));
  for (auto& entry : entries_) {
    const ParameterSpec& spec = entry.spec;
    std::vector<float> initial = initial_values(spec, seed);
    auto& host = spec.trainable ? host_values : host_state;
    std::copy(initial.begin(), initial.end(), host.begin() + entry.offset);
    if (spec.trainable) {
      entry.value = Tensor::view(values_.data() + entry.offset, device, spec.shape);
      entry.gradient = Tensor::view(gradients_.data() + entry.offset, device, spec.shape);
      entry.adam_m = Tensor::view(adam_m_.data() + entry.offset, device, spec.shape);
      entry.adam_v = Tensor::view(adam_v_.data() + entry.offset, device, spec.shape);
    } else {
      entry.value = Tensor::view(state_.data() + entry.offset, device, spec.shape);
    }
  }
  values_.set_values(host_values);
  state_.set_values(host_state);
}

const ParameterEntry& ParameterStore::entry(const std::string& name) const {
  for (const auto& entry : entries_)
    if (entry.spec.name == name) return entry;
  throw Error("unknown parameter " + name);
}

bool ParameterStore::contains(const std::string& name) const {
  for (const auto& entry : entries_)
    if (entry.spec.name == name) return true;
  return false;
}

void ParameterStore::require_mutable(const char* what) const {
  if (constant_)
    throw Error(std::string(what) +
                ": the weights are declared constant (Network::set_constant_weights(true), for "
                "inference); turn that off before changing them");
}

void ParameterStore::copy_from(const ParameterStore& other) {
  require_mutable("ParameterStore::copy_from");
  PNEUMO_REQUIRE(other.entries_.size() == entries_.size() && other.values_.count() == values_.count() &&
                     other.state_.count() == state_.count(),
                 "copy_from between parameter stores of different models");
  for (size_t i = 0; i < entries_.size(); ++i)
    PNEUMO_REQUIRE(
        entries_[i].spec.name == other.entries_[i].spec.name && entries_[i].spec.shape == other.entries_[i].spec.shape,
        "copy_from: parameter " + entries_[i].spec.name + " differs");
  values_.copy_from(other.values_);
  adam_m_.copy_from(other.adam_m_);
  adam_v_.copy_from(other.adam_v_);
  state_.copy_from(other.state_);
}

}  // namespace pneumo
