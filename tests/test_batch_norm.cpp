// BatchNorm2d: forward against mean/variance computed by hand in double, running statistics
// after two training steps, inference mode, robustness to large means, backward through the
// shared gradient checker (input, gamma, beta; training and inference), accumulate semantics,
// determinism, shape errors, and CPU-vs-CUDA parity (skipped without a GPU).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <random>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "engine/distributed.h"
#include "engine/parameters.h"
#include "layers/batch_norm.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using pneumo::testing::check_close;

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
                                     const std::vector<double>& variance, const std::vector<float>& gamma,
                                     const std::vector<float>& beta, double epsilon) {
  const int64_t C = input.C();
  std::vector<double> output(static_cast<size_t>(input.count()));
  for (int64_t i = 0; i < input.count(); ++i) {
    const int64_t c = i % C;
    output[i] = gamma[c] * (input.data()[i] - mean[c]) / std::sqrt(variance[c] + epsilon) + beta[c];
  }
  return output;
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
              reference_output(first, first_statistics.mean, first_statistics.biased_variance, gamma, beta, 1e-3), 2e-6,
              0.0, "training output, step 1");
  check_close(forward(layer, context, second, true).to_vector(),
              reference_output(second, second_statistics.mean, second_statistics.biased_variance, gamma, beta, 1e-3),
              2e-6, 0.0, "training output, step 2");

  // Running statistics: momentum 0.9, unbiased variance, from zeros / ones.
  std::vector<double> running_mean(C), running_var(C);
  for (int64_t c = 0; c < C; ++c) {
    running_mean[c] = 0.9 * (0.9 * 0.0 + 0.1 * first_statistics.mean[c]) + 0.1 * second_statistics.mean[c];
    running_var[c] =
        0.9 * (0.9 * 1.0 + 0.1 * first_statistics.unbiased_variance[c]) + 0.1 * second_statistics.unbiased_variance[c];
  }
  check_close(store.entry("bn.running_mean").value.to_vector(), running_mean, 1e-6, 0.0, "running_mean");
  check_close(store.entry("bn.running_var").value.to_vector(), running_var, 1e-6, 0.0, "running_var");

  // Inference uses the running statistics and leaves them unchanged.
  Tensor third = channel_varied_input({1, 2, 2, C}, generator);
  check_close(forward(layer, context, third, false).to_vector(),
              reference_output(third, running_mean, running_var, gamma, beta, 1e-3), 2e-6, 0.0, "inference output");
  check_close(store.entry("bn.running_mean").value.to_vector(), running_mean, 1e-6, 0.0,
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
              reference_output(input, statistics.mean, statistics.biased_variance, std::vector<float>(C, 1.0f),
                               std::vector<float>(C, 0.0f), 1e-3),
              2e-3, 0.0, "normalized output");
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
              reference_output(input, statistics.mean, statistics.biased_variance, std::vector<float>(C, 1.0f),
                               std::vector<float>(C, 0.0f), 1e-3),
              1e-4, 0.0, "normalized output");
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
    for (auto [values, analytic, name] : {std::tuple<Tensor*, Tensor*, const char*>{&input, &input_gradient, "input"},
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
  CHECK_THROWS_WITH_AS(layer.output_shape({{2, 3, 3, 5}}), "BatchNorm2d: expected 4 channels, got input (2,3,3,5)",
                       Error);
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
  layer.forward(context, {&input}, output, false);                         // fine in inference
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
       {ParityCase{{2, 3, 5, 7}, false}, ParityCase{{4, 64, 64, 37}, false}, ParityCase{{8, 16, 16, 512}, false},
        ParityCase{{2, 128, 160, 3}, false}, ParityCase{{2, 3, 5, 7}, true}}) {
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
      check_close(cuda_output.to_vector(), as_double(cpu_output.to_vector()), 1e-4, 1e-4, "output");
      check_close(cuda_store.state().to_vector(), as_double(cpu_store.state().to_vector()), 1e-5, 1e-5,
                  "running statistics");
      check_close(cuda_gradient.to_vector(), as_double(cpu_gradient.to_vector()), 1e-4, 1e-4, "input gradient");
      check_close(cuda_store.gradients().to_vector(), as_double(cpu_store.gradients().to_vector()), 1e-2, 1e-4,
                  "gamma and beta gradients");

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

namespace {

// Two ranks as two threads of this process: allreduce_sum deposits each rank's values, waits for
// the other, and both add the two in rank order (so both get the same bits), as MPI would.
struct RankPair {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<double> values[2];
  int arrived = 0, left = 0;
  int64_t round = 0;
};

class ThreadRank final : public Communicator {
 public:
  ThreadRank(RankPair& pair, int rank) : pair_(pair), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  int local_rank() const override { return rank_; }
  int local_size() const override { return 2; }
  std::string name() const override { return "two threads (test)"; }
  void allreduce_sum(double* values, int64_t count) override {
    std::unique_lock<std::mutex> lock(pair_.mutex);
    const int64_t round = pair_.round;
    pair_.values[rank_].assign(values, values + count);
    if (++pair_.arrived == 2) {
      pair_.arrived = 0;
      ++pair_.round;
      pair_.changed.notify_all();
    } else {
      pair_.changed.wait(lock, [&] { return pair_.round != round; });
    }
    for (int64_t i = 0; i < count; ++i) values[i] = pair_.values[0][i] + pair_.values[1][i];
    // Neither rank may deposit again before both have read.
    if (++pair_.left == 2) {
      pair_.left = 0;
      ++pair_.round;
      pair_.changed.notify_all();
    } else {
      pair_.changed.wait(lock, [&] { return pair_.round != round + 1; });
    }
    ++calls;
  }
  void allreduce_sum(float* values, int64_t count) override {
    std::vector<double> wide(values, values + count);
    allreduce_sum(wide.data(), count);
    for (int64_t i = 0; i < count; ++i) values[i] = static_cast<float>(wide[i]);
  }
  void allreduce_sum(Tensor&) override { throw Error("not used by batch norm"); }
  int64_t allreduce_max(int64_t value) override { return value; }
  void broadcast(void*, int64_t, int) override {}
  void barrier(bool) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine}; }
  int calls = 0;

 private:
  RankPair& pair_;
  int rank_;
};

// first (N,H,W,C) and second stacked along N.
Tensor stacked(const Tensor& first, const Tensor& second) {
  Shape shape = first.shape();
  shape[0] += second.shape()[0];
  std::vector<float> values = first.to_vector(), more = second.to_vector();
  values.insert(values.end(), more.begin(), more.end());
  Tensor both(first.device(), shape);
  both.set_values(values);
  return both;
}

// max |a - b| / (1e-3 + |b|) <= tolerance: a relative check with a floor for values near 0.
void check_relative_close(const std::vector<float>& a, const std::vector<float>& b, double tolerance,
                          const char* what) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])) / (1e-3 + std::abs(double(b[i]))));
  INFO(std::string(what) << ": worst relative difference " << worst);
  CHECK(worst <= tolerance);
}

// Two ranks, each with its own slice (different distributions), synchronized: each slice's
// outputs, input gradients and the running statistics equal one process's on the stacked batch,
// and the two ranks' gamma/beta gradients add up to its. Without the communicator they differ.
void check_synchronized_equals_stacked_batch(Device device) {
  std::mt19937_64 generator(41);
  const Shape shape = {2, 5, 3, 7};
  const Tensor slices[2] = {random_tensor(shape, generator, -1.0f, 3.0f).to(device),
                            random_tensor(shape, generator, 2.0f, 9.0f).to(device)};
  const Tensor probes[2] = {random_tensor(shape, generator, -1.0f, 1.0f).to(device),
                            random_tensor(shape, generator, -1.0f, 1.0f).to(device)};
  const int saved_threads = cpu_thread_count();
  set_cpu_thread_count(1);  // two "ranks" share this process's CPU thread pool
  RankPair pair;
  BatchNorm2d layers[2] = {BatchNorm2d(7), BatchNorm2d(7)};
  std::unique_ptr<ParameterStore> stores[2];
  Tensor outputs[2], gradients[2];
  std::unique_ptr<ThreadRank> ranks[2];
  for (int r = 0; r < 2; ++r) {
    stores[r] = std::make_unique<ParameterStore>(make_store(layers[r], device));
    ranks[r] = std::make_unique<ThreadRank>(pair, r);
    layers[r].set_communicator(ranks[r].get());
  }
  std::string failure[2];
  auto run_rank = [&](int r) {
    try {
      Context context(device);
      outputs[r] = forward(layers[r], context, slices[r], true);
      gradients[r] = Tensor(device, shape);
      layers[r].backward(context, {&slices[r]}, outputs[r], probes[r], {&gradients[r]});
      context.synchronize();
    } catch (const std::exception& error) {
      failure[r] = error.what();
    }
  };
  std::thread other(run_rank, 1);
  run_rank(0);
  other.join();
  set_cpu_thread_count(saved_threads);
  REQUIRE(failure[0].empty());
  REQUIRE(failure[1].empty());
  CHECK(ranks[0]->calls > 0);

  Context context(device);
  BatchNorm2d single(7);
  ParameterStore single_store = make_store(single, device);
  const Tensor batch = stacked(slices[0], slices[1]), batch_probe = stacked(probes[0], probes[1]);
  const Tensor single_output = forward(single, context, batch, true);
  Tensor single_gradient(device, batch.shape());
  single.backward(context, {&batch}, single_output, batch_probe, {&single_gradient});

  check_relative_close(stacked(outputs[0], outputs[1]).to_vector(), single_output.to_vector(), 1e-5, "outputs");
  check_relative_close(stacked(gradients[0], gradients[1]).to_vector(), single_gradient.to_vector(), 1e-4,
                       "input gradients");
  for (const char* name : {"bn.running_mean", "bn.running_var"})
    for (int r = 0; r < 2; ++r)
      check_relative_close(stores[r]->entry(name).value.to_vector(), single_store.entry(name).value.to_vector(), 1e-6,
                           name);
  for (const char* name : {"bn.gamma", "bn.beta"}) {
    std::vector<float> sum = stores[0]->entry(name).gradient.to_vector();
    const std::vector<float> other_rank = stores[1]->entry(name).gradient.to_vector();
    for (size_t c = 0; c < sum.size(); ++c) sum[c] += other_rank[c];
    check_relative_close(sum, single_store.entry(name).gradient.to_vector(), 1e-4, name);
  }
  // Per-rank statistics (no communicator): rank 0's outputs are not the stacked batch's.
  BatchNorm2d per_rank(7);
  ParameterStore per_rank_store = make_store(per_rank, device);
  const std::vector<float> own = forward(per_rank, context, slices[0], true).to_vector();
  const std::vector<float> global = single_output.to_vector();
  double largest = 0;
  for (size_t i = 0; i < own.size(); ++i) largest = std::max(largest, double(std::abs(own[i] - global[i])));
  CHECK(largest > 0.1);
}

}  // namespace

TEST_CASE("synchronized BatchNorm2d over two ranks equals one process on the stacked batch (CPU)") {
  check_synchronized_equals_stacked_batch(Device::CPU);
}

PNEUMO_GPU_TEST_CASE("synchronized BatchNorm2d over two ranks equals one process on the stacked batch (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  check_synchronized_equals_stacked_batch(Device::CUDA);
}
