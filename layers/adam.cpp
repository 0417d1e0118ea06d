// CPU side and dispatch of layers/adam.h.
#include "layers/adam.h"

#include <cmath>
#include <string>

#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "layers/layer.h"

namespace pneumo {

Adam::Adam(AdamConfig config) : config_(config) {
  PNEUMO_REQUIRE(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
                 "Adam: beta1 and beta2 must lie in [0, 1)");
  PNEUMO_REQUIRE(config.epsilon > 0, "Adam: epsilon must be positive");
}

void Adam::set_step_count(int64_t step_count) {
  PNEUMO_REQUIRE(step_count >= 0, "Adam: step count must be >= 0, got " + std::to_string(step_count));
  step_count_ = step_count;
}

AdamStepScalars Adam::scalars_for_step(int64_t t, float learning_rate) const {
  const double time = static_cast<double>(t);
  AdamStepScalars scalars;
  scalars.beta1 = static_cast<float>(config_.beta1);
  scalars.beta2 = static_cast<float>(config_.beta2);
  scalars.epsilon = static_cast<float>(config_.epsilon);
  scalars.corrected_learning_rate = static_cast<float>(learning_rate * std::sqrt(1.0 - std::pow(config_.beta2, time)) /
                                                       (1.0 - std::pow(config_.beta1, time)));
  return scalars;
}

void adam_step_cpu(float* values, const float* gradients, float* adam_m, float* adam_v, int64_t count,
                   AdamStepScalars scalars) {
  parallel_for(count, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) adam_update(values[i], adam_m[i], adam_v[i], gradients[i], scalars);
  });
}

void Adam::step(Context& context, ParameterStore& store, float learning_rate) {
  PNEUMO_REQUIRE(std::isfinite(learning_rate) && learning_rate >= 0,
                 "Adam: learning rate must be finite and >= 0, got " + std::to_string(learning_rate));
  PNEUMO_REQUIRE(store.device() == context.device(), std::string("Adam: parameter store on ") +
                                                         device_name(store.device()) + " but context on " +
                                                         device_name(context.device()));
  store.require_mutable("Adam::step");
  const AdamStepScalars scalars = scalars_for_step(step_count_ + 1, learning_rate);
  const int64_t count = store.trainable_count();
  if (count > 0) {
    if (context.device() == Device::CPU) {
      adam_step_cpu(store.values().data(), store.gradients().data(), store.adam_m().data(), store.adam_v().data(),
                    count, scalars);
    } else {
#ifdef PNEUMO_HAVE_CUDA
      adam_step_cuda(store.values().data(), store.gradients().data(), store.adam_m().data(), store.adam_v().data(),
                     count, scalars);
#else
      throw_no_cuda_backend("Adam");
#endif
    }
  }
  ++step_count_;
}

double cosine_annealing(double epoch, double base_learning_rate, int epochs) {
  PNEUMO_REQUIRE(epochs > 0, "cosine_annealing: epochs must be positive, got " + std::to_string(epochs));
  const double pi = 3.14159265358979323846;
  return base_learning_rate * (std::cos(pi * epoch / epochs) + 1.0) / 2.0;
}

}  // namespace pneumo
