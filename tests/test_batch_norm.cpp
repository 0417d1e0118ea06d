// BatchNorm2d: forward against mean/variance computed by hand in double, running statistics
// after two training steps, inference mode, robustness to large means, backward through the
// shared gradient checker (input, gamma, beta; training and inference), accumulate semantics,
// determinism, shape errors, and CPU-vs-CUDA parity (skipped without a GPU).
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/parameters.h"
#include "layers/batch_norm.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using namespace pneumo;
using namespace pneumo::testing;

namespace {

// A ParameterStore holding one layer's parameters under `prefix`, bound to the layer.
ParameterStore make_store(BatchNorm2d& layer, Device device, const std::string& prefix = "bn") {
  std::vector<ParameterSpec> specs = layer.parameter_specs();
  for (ParameterSpec& spec : specs) spec.name = prefix + "." + spec.name;
  ParameterStore store(device, specs, 1);
  layer.bind_parameters(store, prefix);
  return store;
}

Tensor forward(BatchNorm2d& layer, Context& context, const Tensor& input, bool training) {
  Tensor output(context.device(), input.shape());
  layer.forward(context, {&input}, output, training);
  return output;
}

struct ChannelStatistics {
  std::vector<double> mean, biased_variance, unbiased_variance;
};

// Naive reference in double: per-channel mean and variance over (N,H,W).
ChannelStatistics reference_statistics(const Tensor& input) {
  const int64_t C = input.C(), rows = input.count() / C;
  ChannelStatistics statistics;
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) sum += input.data()[r * C + c];
    const double mean = sum / rows;
    double squares = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double d = input.data()[r * C + c] - mean;
      squares += d * d;
    }
    statistics.mean.push_back(mean);
    statistics.biased_variance.push_back(squares / rows);
    statistics.unbiased_variance.push_back(squares / (rows - 1));
  }
  return statistics;
}

// y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, in double.
std::vector<double> reference_output(const Tensor& input, const std::vector<double>& mean,
                                     const std::vector<double>& variance,
                                     const std::vector<float>& gamma,
                                     const std::vector<float>& beta, double epsilon) {
  const int64_t C = input.C();
  std::vector<double> output(static_cast<size_t>(input.count()));
  for (int64_t i = 0; i < input.count(); ++i) {
    const int64_t c = i % C;
    output[i] = gamma[c] * (input.data()[i] - mean[c]) / std::sqrt(variance[c] + epsilon) + beta[c];
  }
  return output;
}

// |actual - expected| <= absolute + relative * |expected| for every element.
void check_close(const std::vector<float>& actual, const std::vector<double>& expected,
                 double absolute, const char* what, double relative = 0.0) {
  REQUIRE(actual.size() == expected.size());
  int64_t failures = 0;
  double worst = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double difference = std::fabs(actual[i] - expected[i]);
    if (!(difference <= absolute + relative * std::fabs(expected[i]))) ++failures;
    worst = std::max(worst, difference);
  }
  CHECK_MESSAGE(failures == 0, what << ": " << failures << " of " << actual.size()
                                    << " outside " << absolute << " + " << relative
                                    << " * |expected|; worst |difference| " << worst);
}

std::vector<double> as_double(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

// Per-channel offsets and scales so channels differ.
Tensor channel_varied_input(const Shape& shape, std::mt19937_64& generator) {
  Tensor input = random_tensor(shape, generator);
  const int64_t C = shape[3];
  for (int64_t i = 0; i < input.count(); ++i) {
    const int64_t c = i % C;
    input.data()[i] = input.data()[i] * (0.5f + 0.3f * c) + 0.7f * c - 1.0f;
  }
  return input;
}

// Overwrites one parameter's values (entries are const; the view handle is copied).
void set_parameter(ParameterStore& store, const std::string& name, const Tensor& values) {
  Tensor view = store.entry(name).value;
  view.copy_from(values);
}

void set_random_affine(ParameterStore& store, int64_t C, std::mt19937_64& generator) {
  set_parameter(store, "bn.gamma", random_tensor({C}, generator, 0.5f, 1.5f));
  set_parameter(store, "bn.beta", random_tensor({C}, generator, -0.5f, 0.5f));
}

}  // namespace

TEST_CASE("BatchNorm2d parameters: gamma/beta trainable, running statistics in state") {
  BatchNorm2d layer(5);
  CHECK(layer.kind() == "BatchNorm2d");
  CHECK(layer.momentum() == 0.9f);
  CHECK(layer.epsilon() == 1e-3f);
  ParameterStore store = make_store(layer, Device::CPU, "block.bn");
  CHECK(store.trainable_count() == 10);
  CHECK(store.state_count() == 10);
  CHECK(store.entry("block.bn.gamma").value.to_vector() == std::vector<float>(5, 1.0f));
  CHECK(store.entry("block.bn.beta").value.to_vector() == std::vector<float>(5, 0.0f));
  CHECK(store.entry("block.bn.running_mean").value.to_vector() == std::vector<float>(5, 0.0f));
  CHECK(store.entry("block.bn.running_var").value.to_vector() == std::vector<float>(5, 1.0f));
  CHECK(store.entry("block.bn.running_var").gradient.empty());
}

TEST_CASE("BatchNorm2d training forward matches hand-computed statistics; running stats after two steps; inference") {
  std::mt19937_64 generator(21);
  Context context(Device::CPU);
  const int64_t C = 4;
  BatchNorm2d layer(C);
  ParameterStore store = make_store(layer, Device::CPU);
  set_random_affine(store, C, generator);
  const std::vector<float> gamma = store.entry("bn.gamma").value.to_vector();
  const std::vector<float> beta = store.entry("bn.beta").value.to_vector();

  Tensor first = channel_varied_input({2, 3, 5, C}, generator);
  Tensor second = channel_varied_input({2, 3, 5, C}, generator);
  ChannelStatistics first_statistics = reference_statistics(first);
  ChannelStatistics second_statistics = reference_statistics(second);

  // Training normalizes with the batch mean and the BIASED variance.
  check_close(forward(layer, context, first, true).to_vector(),
              reference_output(first, first_statistics.mean, first_statistics.biased_variance,
                               gamma, beta, 1e-3),
              2e-6, "training output, step 1");
  check_close(forward(layer, context, second, true).to_vector(),
              reference_output(second, second_statistics.mean, second_statistics.biased_variance,
                               gamma, beta, 1e-3),
              2e-6, "training output, step 2");

  // Running statistics: momentum 0.9, unbiased variance, from zeros / ones.
  std::vector<double> running_mean(C), running_var(C);
  for (int64_t c = 0; c < C; ++c) {
    running_mean[c] = 0.9 * (0.9 * 0.0 + 0.1 * first_statistics.mean[c]) + 0.1 * second_statistics.mean[c];
    running_var[c] = 0.9 * (0.9 * 1.0 + 0.1 * first_statistics.unbiased_variance[c]) +
                     0.1 * second_statistics.unbiased_variance[c];
  }
  check_close(store.entry("bn.running_mean").value.to_vector(), running_mean, 1e-6, "running_mean");
  check_close(store.entry("bn.running_var").value.to_vector(), running_var, 1e-6, "running_var");

  // Inference uses the running statistics and leaves them unchanged.
  Tensor third = channel_varied_input({1, 2, 2, C}, generator);
  check_close(forward(layer, context, third, false).to_vector(),
              reference_output(third, running_mean, running_var, gamma, beta, 1e-3), 2e-6,
              "inference output");
  check_close(store.entry("bn.running_mean").value.to_vector(), running_mean, 1e-6,
              "running_mean after inference");
}

TEST_CASE("BatchNorm2d statistics stay accurate for activations with a large mean") {
  std::mt19937_64 generator(22);
  Context context(Device::CPU);
  const int64_t C = 3;
  BatchNorm2d layer(C, 0.0f);  // momentum 0: running statistics = this batch's
  ParameterStore store = make_store(layer, Device::CPU);
  Tensor input = random_tensor({4, 16, 16, C}, generator, -1.0f, 1.0f);
  for (int64_t i = 0; i < input.count(); ++i) input.data()[i] += 1.0e4f;
  ChannelStatistics statistics = reference_statistics(input);
  // The float input itself is quantized to ~1e-3 near 1e4, and x - mean loses at most that: a
  // one-pass E[x^2] - E[x]^2 in float would be off by O(10) in the variance.
  check_close(forward(layer, context, input, true).to_vector(),
              reference_output(input, statistics.mean, statistics.biased_variance,
                               std::vector<float>(C, 1.0f), std::vector<float>(C, 0.0f), 1e-3),
              2e-3, "normalized output");
  std::vector<float> running_var = store.entry("bn.running_var").value.to_vector();
  for (int64_t c = 0; c < C; ++c)
    CHECK(running_var[c] == doctest::Approx(statistics.unbiased_variance[c]).epsilon(1e-4));
}

TEST_CASE("BatchNorm2d statistics: a drifting large mean, channel tiles with a tail, odd row count") {
  // C = 70 spans two 64-channel tiles; rows = 105 is not a multiple of the 16-row float runs;
  // the mean drifts along the rows, so the CPU's pilot-mean shift differs from the batch mean.
  std::mt19937_64 generator(23);
  Context context(Device::CPU);
  const int64_t C = 70;
  BatchNorm2d layer(C, 0.0f);
  ParameterStore store = make_store(layer, Device::CPU);
  Tensor input = random_tensor({3, 7, 5, C}, generator, -1.0f, 1.0f);
  for (int64_t i = 0; i < input.count(); ++i)
    input.data()[i] += 1.0e3f + 5.0f * static_cast<float>(i / C) + static_cast<float>(i % C);
  ChannelStatistics statistics = reference_statistics(input);
  check_close(forward(layer, context, input, true).to_vector(),
              reference_output(input, statistics.mean, statistics.biased_variance,
                               std::vector<float>(C, 1.0f), std::vector<float>(C, 0.0f), 1e-3),
              1e-4, "normalized output");
  std::vector<float> running_mean = store.entry("bn.running_mean").value.to_vector();
  std::vector<float> running_var = store.entry("bn.running_var").value.to_vector();
  for (int64_t c = 0; c < C; ++c) {
    CHECK(running_mean[c] == doctest::Approx(statistics.mean[c]).epsilon(1e-6));
    CHECK(running_var[c] == doctest::Approx(statistics.unbiased_variance[c]).epsilon(1e-5));
  }
}

TEST_CASE("BatchNorm2d backward passes the gradient checker (input, gamma, beta; training and inference)") {
  std::mt19937_64 generator(23);
  Context context(Device::CPU);
  const int64_t C = 3;
  for (bool training : {true, false}) {
    CAPTURE(training);
    BatchNorm2d layer(C);
    ParameterStore store = make_store(layer, Device::CPU);
    set_random_affine(store, C, generator);
    set_parameter(store, "bn.running_mean", random_tensor({C}, generator, -0.5f, 0.5f));
    set_parameter(store, "bn.running_var", random_tensor({C}, generator, 0.5f, 2.0f));
    Tensor input = channel_varied_input({2, 3, 4, C}, generator);
    Tensor probe = random_tensor(input.shape(), generator);

    Tensor output = forward(layer, context, input, training);
    Tensor input_gradient(Device::CPU, input.shape());
    store.zero_gradients();
    layer.backward(context, {&input}, output, probe, {&input_gradient});
    Tensor gamma_gradient = store.entry("bn.gamma").gradient.to(Device::CPU);
    Tensor beta_gradient = store.entry("bn.beta").gradient.to(Device::CPU);

    auto objective = [&] { return probe_objective(forward(layer, context, input, training), probe); };
    Tensor gamma = store.entry("bn.gamma").value;
    Tensor beta = store.entry("bn.beta").value;
    for (auto [values, analytic, name] :
         {std::tuple<Tensor*, Tensor*, const char*>{&input, &input_gradient, "input"},
          {&gamma, &gamma_gradient, "gamma"},
          {&beta, &beta_gradient, "beta"}}) {
      GradientCheckResult result = check_gradient(objective, *values, *analytic, name);
      CHECK_MESSAGE(result.ok, result.message);
    }
  }
}

TEST_CASE("BatchNorm2d backward accumulates into input, gamma and beta gradients; null input gradient") {
  std::mt19937_64 generator(24);
  Context context(Device::CPU);
  const int64_t C = 6;
  BatchNorm2d layer(C);
  ParameterStore store = make_store(layer, Device::CPU);
  set_random_affine(store, C, generator);
  Tensor input = channel_varied_input({2, 4, 3, C}, generator);
  Tensor probe = random_tensor(input.shape(), generator);
  Tensor output = forward(layer, context, input, true);

  Tensor once(Device::CPU, input.shape());
  layer.backward(context, {&input}, output, probe, {&once});
  const std::vector<float> gamma_once = store.entry("bn.gamma").gradient.to_vector();
  const std::vector<float> beta_once = store.entry("bn.beta").gradient.to_vector();
  layer.backward(context, {&input}, output, probe, {nullptr});  // parameters only
  const std::vector<float> gamma_twice = store.entry("bn.gamma").gradient.to_vector();
  const std::vector<float> beta_twice = store.entry("bn.beta").gradient.to_vector();
  for (int64_t c = 0; c < C; ++c) {
    CHECK(gamma_once[c] != 0.0f);
    CHECK(gamma_twice[c] == 2.0f * gamma_once[c]);
    CHECK(beta_twice[c] == 2.0f * beta_once[c]);
  }
  Tensor twice(Device::CPU, input.shape());
  layer.backward(context, {&input}, output, probe, {&twice});
  layer.backward(context, {&input}, output, probe, {&twice});
  std::vector<float> single = once.to_vector(), doubled = twice.to_vector();
  for (size_t i = 0; i < single.size(); ++i) REQUIRE(doubled[i] == 2.0f * single[i]);
}

TEST_CASE("BatchNorm2d CPU results do not depend on the thread count") {
  std::mt19937_64 generator(25);
  Context context(Device::CPU);
  const int64_t C = 32;
  Tensor input = channel_varied_input({2, 64, 64, C}, generator);  // several reduction blocks
  Tensor probe = random_tensor(input.shape(), generator);
  std::vector<std::vector<float>> results;
  const int original_threads = cpu_thread_count();
  for (int threads : {1, 2, 3}) {
    set_cpu_thread_count(threads);
    BatchNorm2d layer(C);
    ParameterStore store = make_store(layer, Device::CPU);
    Tensor output = forward(layer, context, input, true);
    Tensor input_gradient(Device::CPU, input.shape());
    layer.backward(context, {&input}, output, probe, {&input_gradient});
    std::vector<float> result = output.to_vector();
    for (float value : input_gradient.to_vector()) result.push_back(value);
    for (float value : store.gradients().to_vector()) result.push_back(value);
    for (float value : store.state().to_vector()) result.push_back(value);
    results.push_back(result);
  }
  set_cpu_thread_count(original_threads);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("BatchNorm2d rejects bad shapes, a one-value batch in training, and unbound use") {
  BatchNorm2d layer(4);
  CHECK_THROWS_WITH_AS(layer.output_shape({{2, 3, 3, 5}}),
                       "BatchNorm2d: expected 4 channels, got input (2,3,3,5)", Error);
  CHECK_THROWS_AS(layer.output_shape({{2, 3, 4}}), Error);
  CHECK_THROWS_AS(layer.output_shape({{2, 3, 3, 4}, {2, 3, 3, 4}}), Error);
  CHECK(layer.forward_flops({{2, 3, 3, 4}}) == 4 * 72);
  CHECK_THROWS_AS(BatchNorm2d(0), Error);
  CHECK_THROWS_AS(BatchNorm2d(4, 1.5f), Error);
  CHECK_THROWS_AS(BatchNorm2d(4, 0.9f, 0.0f), Error);

  Context context(Device::CPU);
  Tensor input(Device::CPU, {1, 1, 1, 4});
  Tensor output(Device::CPU, {1, 1, 1, 4});
  CHECK_THROWS_AS(layer.forward(context, {&input}, output, true), Error);  // not bound
  ParameterStore store = make_store(layer, Device::CPU);
  CHECK_THROWS_AS(layer.forward(context, {&input}, output, true), Error);  // one value per channel
  layer.forward(context, {&input}, output, false);                          // fine in inference
}

PNEUMO_GPU_TEST_CASE("BatchNorm2d CPU vs CUDA parity: training, running stats, backward, inference (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(26);
  Context cpu(Device::CPU);
  Context cuda(Device::CUDA);
  // Shapes: a partial channel tile, 512 reduction blocks (two partials per finishing thread),
  // the notebook's widest layer, the full 1024 blocks; the last again on the 64-bit index path.
  struct ParityCase {
    Shape shape;
    bool wide_index;
  };
  for (const ParityCase& parity_case :
       {ParityCase{{2, 3, 5, 7}, false}, ParityCase{{4, 64, 64, 37}, false},
        ParityCase{{8, 16, 16, 512}, false}, ParityCase{{2, 128, 160, 3}, false},
        ParityCase{{2, 3, 5, 7}, true}}) {
    const Shape shape = parity_case.shape;
    pneumo::testing::ForceWideCudaIndex wide(parity_case.wide_index);
    CAPTURE(shape_string(shape));
    CAPTURE(parity_case.wide_index);
    const int64_t C = shape[3];
    BatchNorm2d cpu_layer(C), cuda_layer(C);
    ParameterStore cpu_store = make_store(cpu_layer, Device::CPU);
    set_random_affine(cpu_store, C, generator);
    ParameterStore cuda_store = make_store(cuda_layer, Device::CUDA);
    cuda_store.copy_from(cpu_store);
    Tensor input = channel_varied_input(shape, generator);
    for (int64_t i = 0; i < input.count(); ++i) input.data()[i] += 50.0f;  // a sizeable mean
    Tensor probe = random_tensor(shape, generator);
    Tensor cuda_input = input.to(Device::CUDA);
    Tensor cuda_probe = probe.to(Device::CUDA);

    for (bool training : {true, false}) {
      CAPTURE(training);
      cuda_store.copy_from(cpu_store);  // the determinism rerun below moved the GPU running stats
      // dgamma and dbeta start non-zero, so an overwrite instead of an accumulation fails.
      const Tensor start_gradients = random_tensor({cpu_store.trainable_count()}, generator);
      cpu_store.gradients().copy_from(start_gradients);
      cuda_store.gradients().copy_from(start_gradients);  // host -> device
      Tensor cpu_output = forward(cpu_layer, cpu, input, training);
      Tensor cuda_output = forward(cuda_layer, cuda, cuda_input, training);
      Tensor cpu_gradient(Device::CPU, shape), cuda_gradient(Device::CUDA, shape);
      cpu_layer.backward(cpu, {&input}, cpu_output, probe, {&cpu_gradient});
      cuda_layer.backward(cuda, {&cuda_input}, cuda_output, cuda_probe, {&cuda_gradient});
      cuda.synchronize();
      // Sums are in double on both back ends in different orders, so the float statistics may
      // differ by an ulp; outputs and input gradients are O(1), running variances up to ~1e3,
      // dgamma and dbeta are sums over up to 131072 values of size O(1).
      check_close(cuda_output.to_vector(), as_double(cpu_output.to_vector()), 1e-4, "output", 1e-4);
      check_close(cuda_store.state().to_vector(), as_double(cpu_store.state().to_vector()), 1e-5,
                  "running statistics", 1e-5);
      check_close(cuda_gradient.to_vector(), as_double(cpu_gradient.to_vector()), 1e-4,
                  "input gradient", 1e-4);
      check_close(cuda_store.gradients().to_vector(), as_double(cpu_store.gradients().to_vector()),
                  1e-2, "gamma and beta gradients", 1e-4);

      // Deterministic: the same call again gives bit-identical results on the GPU.
      Tensor again = forward(cuda_layer, cuda, cuda_input, training);
      Tensor again_gradient(Device::CUDA, shape);
      cuda_layer.backward(cuda, {&cuda_input}, again, cuda_probe, {&again_gradient});
      cuda.synchronize();
      CHECK(again.to_vector() == cuda_output.to_vector());
      CHECK(again_gradient.to_vector() == cuda_gradient.to_vector());
    }
  }
}
