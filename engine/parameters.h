// ParameterStore: every trainable parameter of a model lives in ONE flat buffer per device, and
// so do its gradients and the two Adam moments; non-trainable state (batch-norm running
// statistics) lives in one more. Layers see per-parameter Tensor views into those buffers, so
// zeroing all gradients is one memset, Adam is one kernel over the flat buffers, and a
// checkpoint is a handful of writes.
//
//   values    (P)  trainable parameters, in registration order
//   gradients (P)  d loss / d values; layers' backward ACCUMULATES into them
//   adam_m    (P)  Adam first moment
//   adam_v    (P)  Adam second moment
//   state     (S)  non-trainable state (e.g. "bn3.running_mean")
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace pneumo {

enum class Initializer { Zeros, Ones, GlorotUniform };

struct ParameterSpec {
  std::string name;  // unique in the store, e.g. "block1.conv1.weight"
  Shape shape;
  Initializer initializer = Initializer::Zeros;
  bool trainable = true;  // false: lives in `state`, has no gradient or Adam moments
  int64_t fan_in = 0;     // for GlorotUniform: limit = sqrt(6 / (fan_in + fan_out))
  int64_t fan_out = 0;
};

struct ParameterEntry {
  ParameterSpec spec;
  int64_t offset = 0;  // into values/gradients/adam (trainable) or state (non-trainable)
  Tensor value;        // view
  Tensor gradient;     // view; empty for non-trainable
  Tensor adam_m;       // view; empty for non-trainable
  Tensor adam_v;       // view; empty for non-trainable
};

class ParameterStore {
 public:
  ParameterStore() = default;
  // Allocates the flat buffers on `device` and initializes values on the host with a generator
  // seeded from (seed, name), so a parameter's initial value does not depend on the device or
  // on the other parameters. Names must be unique.
  ParameterStore(Device device, const std::vector<ParameterSpec>& specs, uint64_t seed);

  Device device() const { return device_; }
  const std::vector<ParameterEntry>& entries() const { return entries_; }
  const ParameterEntry& entry(const std::string& name) const;  // throws if unknown
  bool contains(const std::string& name) const;

  Tensor& values() { return values_; }
  Tensor& gradients() { return gradients_; }
  Tensor& adam_m() { return adam_m_; }
  Tensor& adam_v() { return adam_v_; }
  Tensor& state() { return state_; }
  const Tensor& values() const { return values_; }
  const Tensor& gradients() const { return gradients_; }
  const Tensor& adam_m() const { return adam_m_; }
  const Tensor& adam_v() const { return adam_v_; }
  const Tensor& state() const { return state_; }

  int64_t trainable_count() const { return values_.count(); }
  int64_t state_count() const { return state_.count(); }
  void zero_gradients() { gradients_.zero(); }
  // Constant weights (inference; Network::set_constant_weights): layers may keep what they
  // derive from the values (a convolution's transformed filter) between forwards. While set,
  // whatever would change the values (Adam::step, copy_from, a checkpoint load) throws.
  void set_constant(bool constant) { constant_ = constant; }
  bool constant() const { return constant_; }
  // Throws pneumo::Error "`what`: the weights are declared constant ..." while constant().
  void require_mutable(const char* what) const;
  // Copies values, state and Adam moments (not gradients) from a store with the same specs,
  // possibly on another device.
  void copy_from(const ParameterStore& other);

 private:
  Device device_ = Device::CPU;
  std::vector<ParameterEntry> entries_;
  Tensor values_, gradients_, adam_m_, adam_v_, state_;
  bool constant_ = false;
};

}  // namespace pneumo
