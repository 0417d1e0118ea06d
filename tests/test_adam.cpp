// Adam (layers/adam.h) against a naive scalar implementation of Keras's update written here,
// the cosine schedule's values, and CPU-vs-CUDA parity.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/parameters.h"
#include "layers/adam.h"
#include "tests/support/fixtures.h"

using namespace pneumo;

namespace {

// Keras's Adam for one scalar, in double, step numbers counted from 1.
struct NaiveAdamScalar {
  double value, m = 0, v = 0;
  void step(double gradient, double learning_rate, int64_t t) {
    const double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
    const double corrected = learning_rate * std::sqrt(1 - std::pow(beta2, t)) / (1 - std::pow(beta1, t));
    m = beta1 * m + (1 - beta1) * gradient;
    v = beta2 * v + (1 - beta2) * gradient * gradient;
    value -= corrected * m / (std::sqrt(v) + epsilon);
  }
};

std::vector<ParameterSpec> small_specs() {
  return {{"conv.weight", {2, 1, 1, 3}, Initializer::GlorotUniform, true, 3, 2},
          {"bn.gamma", {3}, Initializer::Ones, true},
          {"bn.running_mean", {3}, Initializer::Zeros, false}};
}

}  // namespace

TEST_CASE("Adam: three steps match a naive scalar implementation of Keras's update") {
  Context context(Device::CPU);
  ParameterStore store(Device::CPU, small_specs(), 9);
  const int64_t count = store.trainable_count();
  REQUIRE(count == 9);
  std::vector<NaiveAdamScalar> naive;
  for (float value : store.values().to_vector()) naive.push_back({value});
  const std::vector<float> state_before = store.state().to_vector();
  const float learning_rates[3] = {1e-3f, 5e-4f, 2e-3f};
  Adam adam;
  std::mt19937_64 generator(1);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  for (int step = 0; step < 3; ++step) {
    std::vector<float> gradients(static_cast<size_t>(count));
    for (float& gradient : gradients) gradient = uniform(generator);
    gradients[4] = 0.0f;  // a parameter with no gradient yet never moves
    store.gradients().set_values(gradients);
    adam.step(context, store, learning_rates[step]);
    for (int64_t i = 0; i < count; ++i)
      naive[static_cast<size_t>(i)].step(gradients[static_cast<size_t>(i)], learning_rates[step], step + 1);
  }
  CHECK(adam.step_count() == 3);
  const auto values = store.values().to_vector(), m = store.adam_m().to_vector(), v = store.adam_v().to_vector();
  for (int64_t i = 0; i < count; ++i) {
    INFO("parameter element " << i);
    const NaiveAdamScalar& expected = naive[static_cast<size_t>(i)];
    CHECK(std::fabs(values[static_cast<size_t>(i)] - expected.value) < 1e-6);
    CHECK(m[static_cast<size_t>(i)] == doctest::Approx(expected.m).epsilon(1e-5));
    CHECK(v[static_cast<size_t>(i)] == doctest::Approx(expected.v).epsilon(1e-5));
  }
  // Each step moves a parameter by about the learning rate (~1e-3), so 1e-6 is a tight check.
  CHECK(values[4] == static_cast<float>(naive[4].value));  // zero gradient: unchanged
  CHECK(store.state().to_vector() == state_before);        // non-trainable state untouched
}

TEST_CASE("Adam: set_step_count resumes the bias correction where it left off") {
  Context context(Device::CPU);
  ParameterStore store(Device::CPU, small_specs(), 9);
  std::vector<NaiveAdamScalar> naive;
  for (float value : store.values().to_vector()) naive.push_back({value});
  std::vector<float> gradients(static_cast<size_t>(store.trainable_count()), 0.25f);
  gradients[0] = -3.0f;
  store.gradients().set_values(gradients);
  Adam adam;
  adam.set_step_count(10);
  adam.step(context, store, 1e-3f);
  CHECK(adam.step_count() == 11);
  const auto values = store.values().to_vector();
  for (size_t i = 0; i < values.size(); ++i) {
    naive[i].step(gradients[i], 1e-3, 11);
    CHECK(std::fabs(values[i] - naive[i].value) < 1e-6);
  }
  // At t = 11 the first move is ~0.48 lr instead of lr at t = 1, so a counter that ignored
  // set_step_count would miss the checks above by ~5e-4.
  CHECK_THROWS_AS(adam.set_step_count(-1), Error);
  CHECK_THROWS_AS(adam.step(context, store, -1.0f), Error);
}

TEST_CASE("cosine annealing follows the notebook's schedule") {
  CHECK(cosine_annealing(0) == doctest::Approx(1e-3).epsilon(1e-15));
  CHECK(std::fabs(cosine_annealing(25)) < 1e-18);
  CHECK(cosine_annealing(12.5) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(cosine_annealing(1) == doctest::Approx(1e-3 * (std::cos(M_PI / 25) + 1) / 2).epsilon(1e-14));
  CHECK(cosine_annealing(1) == doctest::Approx(9.96057350657239e-4).epsilon(1e-12));
  CHECK(cosine_annealing(24) == doctest::Approx(3.942649342761e-6).epsilon(1e-9));
  CHECK(cosine_annealing(5, 2e-3, 10) == doctest::Approx(1e-3).epsilon(1e-12));
  CHECK_THROWS_AS(cosine_annealing(1, 1e-3, 0), Error);
}

PNEUMO_GPU_TEST_CASE("Adam on CUDA matches the CPU over three steps") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  bool wide_index = false;  // the per-element kernels' int32_t and int64_t index paths
  SUBCASE("32-bit index math") { wide_index = false; }
  SUBCASE("64-bit index math, forced") { wide_index = true; }
  pneumo::testing::ForceWideCudaIndex wide(wide_index);
  Context cpu(Device::CPU), cuda(Device::CUDA);
  std::vector<ParameterSpec> specs = {{"conv.weight", {32, 3, 3, 32}, Initializer::GlorotUniform, true, 288, 288},
                                      {"conv.bias", {32}, Initializer::Zeros, true},
                                      {"bn.running_var", {32}, Initializer::Ones, false}};
  ParameterStore cpu_store(Device::CPU, specs, 4), cuda_store(Device::CUDA, specs, 4);
  Adam cpu_adam, cuda_adam;
  std::mt19937_64 generator(2);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int step = 0; step < 3; ++step) {
    std::vector<float> gradients(static_cast<size_t>(cpu_store.trainable_count()));
    for (float& gradient : gradients) gradient = uniform(generator);
    cpu_store.gradients().set_values(gradients);
    cuda_store.gradients().set_values(gradients);  // host -> device
    const float learning_rate = static_cast<float>(cosine_annealing(step));
    cpu_adam.step(cpu, cpu_store, learning_rate);
    cuda_adam.step(cuda, cuda_store, learning_rate);
  }
  const auto cpu_values = cpu_store.values().to_vector(), cuda_values = cuda_store.values().to_vector();
  const auto cpu_m = cpu_store.adam_m().to_vector(), cuda_m = cuda_store.adam_m().to_vector();
  const auto cpu_v = cpu_store.adam_v().to_vector(), cuda_v = cuda_store.adam_v().to_vector();
  int64_t moved = 0;
  for (size_t i = 0; i < cpu_values.size(); ++i) {
    CHECK(std::fabs(cuda_values[i] - cpu_values[i]) < 1e-6);
    CHECK(cuda_m[i] == doctest::Approx(cpu_m[i]).epsilon(1e-5));
    CHECK(cuda_v[i] == doctest::Approx(cpu_v[i]).epsilon(1e-5));
    moved += cpu_m[i] != 0.0f;
  }
  CHECK(moved > 9000);
  CHECK(cuda_store.state().to_vector() == cpu_store.state().to_vector());
  ParameterStore other_cpu(Device::CPU, specs, 4);
  CHECK_THROWS_AS(cuda_adam.step(cuda, other_cpu, 1e-3f), Error);  // store on the wrong device
}
