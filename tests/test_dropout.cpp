// Dropout: the mask's statistics and determinism, the inverted scaling, inference and rate 0 as
// the identity, backward through the shared gradient checker, accumulation, bad rates, and
// CPU-vs-CUDA parity of the mask bit for bit (skipped without a GPU).
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/context.h"
#include "layers/dropout.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using namespace pneumo;
using namespace pneumo::testing;

namespace {

Tensor forward(Dropout& layer, Context& context, const Tensor& input, bool training) {
  Tensor output(context.device(), input.shape());
  layer.forward(context, {&input}, output, training);
  return output;
}

// Backward with output_gradient = probe into a zeroed input gradient (`passes` times).
Tensor backward(Dropout& layer, Context& context, const Tensor& input, const Tensor& output, const Tensor& probe,
                int passes = 1) {
  Tensor input_gradient(context.device(), input.shape());
  for (int pass = 0; pass < passes; ++pass) layer.backward(context, {&input}, output, probe, {&input_gradient});
  return input_gradient;
}

}  // namespace

TEST_CASE("Dropout drops a rate share of elements and scales the rest by 1/(1-rate)") {
  std::mt19937_64 generator(1);
  Context context(Device::CPU);
  Tensor input = random_tensor({4, 32, 32, 25}, generator, 0.5f, 1.0f);  // never 0
  for (float rate : {0.1f, 0.3f, 0.5f}) {
    Dropout layer(rate, 7);
    std::vector<float> x = input.to_vector(), y = forward(layer, context, input, true).to_vector();
    const float scale = 1.0f / (1.0f - rate);
    int64_t dropped = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      if (y[i] == 0.0f)
        ++dropped;
      else
        REQUIRE(y[i] == x[i] * scale);
    }
    // Binomial(n, rate): the share lies within 5 standard deviations.
    const double n = static_cast<double>(x.size());
    const double sigma = std::sqrt(rate * (1.0 - rate) / n);
    CHECK(std::fabs(static_cast<double>(dropped) / n - rate) < 5.0 * sigma);
  }
}

TEST_CASE("Dropout mask equals the independent Python implementation of layers/check_dropout.py") {
  // mask(seed, step, 32, rate) printed by the SplitMix64 reimplementation in
  // layers/check_dropout.py (Python integers, no shared code): 1 = kept.
  struct Case {
    uint64_t seed, step;
    float rate;
    const char* kept;
  };
  const Case cases[] = {{7, 3, 0.3f, "11101100101111011111011001110011"},
                        {21, 0, 0.5f, "11111011100001101011101100001101"}};
  Context context(Device::CPU);
  Tensor input(Device::CPU, {1, 1, 1, 32});
  input.set_values(std::vector<float>(32, 1.0f));
  for (const Case& c : cases) {
    Dropout layer(c.rate, c.seed);
    layer.set_step(c.step);
    const std::vector<float> y = forward(layer, context, input, true).to_vector();
    std::string kept;
    for (float value : y) kept += value != 0.0f ? '1' : '0';
    CHECK(kept == c.kept);
  }
}

TEST_CASE("Dropout masks are fixed by (seed, step): same again, new for another step or seed") {
  std::mt19937_64 generator(2);
  Context context(Device::CPU);
  Tensor input = random_tensor({2, 8, 8, 16}, generator, 0.5f, 1.0f);
  Dropout a(0.5f, 11), b(0.5f, 11), other_seed(0.5f, 12);
  a.set_step(3);
  b.set_step(3);
  other_seed.set_step(3);
  const std::vector<float> first = forward(a, context, input, true).to_vector();
  CHECK(forward(b, context, input, true).to_vector() == first);
  CHECK(forward(other_seed, context, input, true).to_vector() != first);
  b.set_step(4);
  CHECK(forward(b, context, input, true).to_vector() != first);
}

TEST_CASE("Dropout is the identity at inference and at rate 0, forward and backward") {
  std::mt19937_64 generator(3);
  Context context(Device::CPU);
  Tensor input = random_tensor({2, 5, 5, 3}, generator);
  Tensor probe = random_tensor({2, 5, 5, 3}, generator);
  Dropout inference(0.5f, 1), zero_rate(0.0f, 1);
  Tensor output = forward(inference, context, input, false);
  CHECK(output.to_vector() == input.to_vector());
  CHECK(backward(inference, context, input, output, probe).to_vector() == probe.to_vector());
  output = forward(zero_rate, context, input, true);
  CHECK(output.to_vector() == input.to_vector());
  CHECK(backward(zero_rate, context, input, output, probe).to_vector() == probe.to_vector());
}

TEST_CASE("Dropout backward: the gradient checker, the forward's mask, accumulation") {
  std::mt19937_64 generator(4);
  Context context(Device::CPU);
  Dropout layer(0.4f, 5);
  layer.set_step(9);
  Tensor input = random_tensor({2, 6, 6, 4}, generator);
  Tensor probe = random_tensor({2, 6, 6, 4}, generator);
  Tensor output = forward(layer, context, input, true);
  Tensor analytic = backward(layer, context, input, output, probe);
  auto objective = [&] { return probe_objective(forward(layer, context, input, true), probe); };
  GradientCheckResult result = check_gradient(objective, input, analytic, "Dropout input");
  CHECK_MESSAGE(result.ok, result.message);
  // dx is zero exactly where y is (inputs are never 0), and probe / (1 - rate) elsewhere.
  const std::vector<float> y = output.to_vector(), dx = analytic.to_vector(), dy = probe.to_vector();
  int64_t kept = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0.0f)
      REQUIRE(dx[i] == 0.0f);
    else {
      REQUIRE(dx[i] == dy[i] * (1.0f / 0.6f));
      ++kept;
    }
  }
  CHECK(kept > 0);
  CHECK(kept < static_cast<int64_t>(y.size()));
  const std::vector<float> twice = backward(layer, context, input, output, probe, 2).to_vector();
  for (size_t i = 0; i < dx.size(); ++i) REQUIRE(twice[i] == 2.0f * dx[i]);
}

TEST_CASE("Dropout rejects rates outside [0, 1) and bad shapes") {
  CHECK_THROWS_AS(Dropout(1.0f, 1), Error);
  CHECK_THROWS_AS(Dropout(-0.1f, 1), Error);
  CHECK_THROWS_AS(Dropout(std::nanf(""), 1), Error);
  Dropout layer(0.5f, 1);
  CHECK_THROWS_AS(layer.output_shape({{2, 3, 4}}), Error);
  CHECK(layer.forward_flops({{2, 3, 4, 5}}) == 120);
}

PNEUMO_GPU_TEST_CASE("Dropout CPU vs CUDA parity: the same mask bit for bit (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(6);
  Context cpu(Device::CPU), cuda(Device::CUDA);
  Dropout cpu_layer(0.3f, 21), cuda_layer(0.3f, 21);
  cpu_layer.set_step(5);
  cuda_layer.set_step(5);
  Tensor input = random_tensor({3, 33, 17, 32}, generator);
  Tensor probe = random_tensor({3, 33, 17, 32}, generator);
  Tensor cuda_input = input.to(Device::CUDA), cuda_probe = probe.to(Device::CUDA);
  Tensor expected_output = forward(cpu_layer, cpu, input, true);
  Tensor actual_output = forward(cuda_layer, cuda, cuda_input, true);
  Tensor expected_gradient = backward(cpu_layer, cpu, input, expected_output, probe, 2);
  Tensor actual_gradient = backward(cuda_layer, cuda, cuda_input, actual_output, cuda_probe, 2);
  cuda.synchronize();
  CHECK(actual_output.to_vector() == expected_output.to_vector());
  CHECK(actual_gradient.to_vector() == expected_gradient.to_vector());
}
