// LeakyReLU, Sigmoid, Add, MaxPool2d, Upsample: forward against naive loops written here,
// backward through the shared gradient checker, accumulate semantics, shape errors, and
// CPU-vs-CUDA parity (skipped without a GPU).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/check.h"
#include "engine/context.h"
#include "layers/add.h"
#include "layers/leaky_relu.h"
#include "layers/max_pool.h"
#include "layers/sigmoid.h"
#include "layers/upsample.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using pneumo::testing::check_close;

using namespace pneumo;
using namespace pneumo::testing;

namespace {

std::vector<Shape> shapes_of(const std::vector<Tensor>& tensors) {
  std::vector<Shape> shapes;
  for (const Tensor& tensor : tensors) shapes.push_back(tensor.shape());
  return shapes;
}

std::vector<const Tensor*> pointers_to(const std::vector<Tensor>& tensors) {
  std::vector<const Tensor*> pointers;
  for (const Tensor& tensor : tensors) pointers.push_back(&tensor);
  return pointers;
}

Tensor run_forward(Layer& layer, Context& context, const std::vector<Tensor>& inputs) {
  Tensor output(context.device(), layer.output_shape(shapes_of(inputs)));
  layer.forward(context, pointers_to(inputs), output, true);
  return output;
}

struct ForwardBackward {
  Tensor output;
  std::vector<Tensor> input_gradients;
};

// Forward, then `passes` backward passes with output_gradient = probe into zeroed gradients.
ForwardBackward run_forward_backward(Layer& layer, Context& context, const std::vector<Tensor>& inputs,
                                     const Tensor& probe, int passes = 1) {
  ForwardBackward result;
  result.output = run_forward(layer, context, inputs);
  std::vector<Tensor*> gradient_pointers;
  for (const Tensor& input : inputs) result.input_gradients.emplace_back(context.device(), input.shape());
  for (Tensor& gradient : result.input_gradients) gradient_pointers.push_back(&gradient);
  for (int pass = 0; pass < passes; ++pass)
    layer.backward(context, pointers_to(inputs), result.output, probe, gradient_pointers);
  return result;
}

// Finite-difference check of d sum(output * probe) / d input for every input (CPU).
void check_input_gradients(Layer& layer, std::vector<Tensor> inputs, std::mt19937_64& generator,
                           const GradientCheckOptions& options = {}) {
  Context context(Device::CPU);
  Tensor probe = random_tensor(layer.output_shape(shapes_of(inputs)), generator);
  ForwardBackward analytic = run_forward_backward(layer, context, inputs, probe);
  auto objective = [&] { return probe_objective(run_forward(layer, context, inputs), probe); };
  for (size_t i = 0; i < inputs.size(); ++i) {
    GradientCheckResult result = check_gradient(objective, inputs[i], analytic.input_gradients[i],
                                                layer.kind() + " input " + std::to_string(i), options);
    CHECK_MESSAGE(result.ok, result.message);
  }
}

// Backward twice into the same gradients must give exactly twice one backward.
void check_backward_accumulates(Layer& layer, const std::vector<Tensor>& inputs, std::mt19937_64& generator) {
  Context context(Device::CPU);
  Tensor probe = random_tensor(layer.output_shape(shapes_of(inputs)), generator);
  ForwardBackward once = run_forward_backward(layer, context, inputs, probe, 1);
  ForwardBackward twice = run_forward_backward(layer, context, inputs, probe, 2);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<float> single = once.input_gradients[i].to_vector();
    std::vector<float> doubled = twice.input_gradients[i].to_vector();
    bool any_nonzero = false;
    for (size_t k = 0; k < single.size(); ++k) {
      REQUIRE(doubled[k] == 2.0f * single[k]);
      any_nonzero = any_nonzero || single[k] != 0.0f;
    }
    CHECK(any_nonzero);
  }
}

// Runs forward and backward on both back ends with the same inputs and probe and compares.
void check_cpu_cuda_parity(Layer& cpu_layer, Layer& cuda_layer, const std::vector<Tensor>& inputs,
                           std::mt19937_64& generator, double absolute, double relative) {
  Context cpu(Device::CPU);
  Context cuda(Device::CUDA);
  Tensor probe = random_tensor(cpu_layer.output_shape(shapes_of(inputs)), generator);
  std::vector<Tensor> cuda_inputs;
  for (const Tensor& input : inputs) cuda_inputs.push_back(input.to(Device::CUDA));
  ForwardBackward expected = run_forward_backward(cpu_layer, cpu, inputs, probe, 2);
  ForwardBackward actual = run_forward_backward(cuda_layer, cuda, cuda_inputs, probe.to(Device::CUDA), 2);
  cuda.synchronize();
  check_close(actual.output.to_vector(), expected.output.to_vector(), absolute, relative, "forward output");
  for (size_t i = 0; i < inputs.size(); ++i)
    check_close(actual.input_gradients[i].to_vector(), expected.input_gradients[i].to_vector(), absolute, relative,
                "input gradient");
}

// Values of magnitude in [0.1, 1] with random signs: at least 10 steps of 1e-2 from the kink.
Tensor away_from_zero(const Shape& shape, std::mt19937_64& generator) {
  Tensor tensor = random_tensor(shape, generator, 0.1f, 1.0f);
  std::bernoulli_distribution negative(0.5);
  for (int64_t i = 0; i < tensor.count(); ++i)
    if (negative(generator)) tensor.data()[i] = -tensor.data()[i];
  return tensor;
}

// A shuffled set of distinct values k * 0.05: no two values in a pooling window are within the
// gradient checker's step (1e-2) of each other, so no argmax changes under perturbation.
Tensor distinct_values(const Shape& shape, std::mt19937_64& generator) {
  Tensor tensor(Device::CPU, shape);
  std::vector<int64_t> order(static_cast<size_t>(tensor.count()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), generator);
  for (int64_t i = 0; i < tensor.count(); ++i)
    tensor.data()[i] = 0.05f * static_cast<float>(order[i] - tensor.count() / 2);
  return tensor;
}

}  // namespace

// ---- LeakyReLU ------------------------------------------------------------------------------

TEST_CASE("LeakyReLU forward matches a naive loop, slope 0 and 0.2") {
  std::mt19937_64 generator(1);
  Context context(Device::CPU);
  Tensor input = random_tensor({2, 3, 4, 5}, generator);
  for (float slope : {0.0f, 0.2f}) {
    LeakyReLU layer(slope);
    std::vector<float> output = run_forward(layer, context, {input}).to_vector();
    for (int64_t i = 0; i < input.count(); ++i) {
      const float x = input.data()[i];
      CHECK(output[i] == (x > 0 ? x : slope * x));
    }
  }
}

TEST_CASE("LeakyReLU backward: gradient check away from 0, exact gradient at 0, accumulates") {
  std::mt19937_64 generator(2);
  for (float slope : {0.0f, 0.2f}) {
    LeakyReLU layer(slope);
    check_input_gradients(layer, {away_from_zero({2, 3, 4, 5}, generator)}, generator);
    check_backward_accumulates(layer, {away_from_zero({2, 3, 4, 5}, generator)}, generator);
    // At exactly x == 0 the gradient is slope * dy (0 for ReLU, like TensorFlow).
    Context context(Device::CPU);
    Tensor input(Device::CPU, {1, 1, 1, 3});
    input.set_values({0.0f, -0.0f, 1.0f});
    Tensor probe(Device::CPU, {1, 1, 1, 3});
    probe.set_values({2.0f, 3.0f, 4.0f});
    ForwardBackward run = run_forward_backward(layer, context, {input}, probe);
    CHECK(run.input_gradients[0].to_vector() == std::vector<float>{slope * 2.0f, slope * 3.0f, 4.0f});
  }
}

TEST_CASE("LeakyReLU rejects bad shapes and input counts") {
  LeakyReLU layer(0.0f);
  CHECK_THROWS_AS(layer.output_shape({{2, 3, 4}}), Error);
  CHECK_THROWS_AS(layer.output_shape({{2, 0, 4, 1}}), Error);
  CHECK_THROWS_AS(layer.output_shape({{1, 2, 2, 1}, {1, 2, 2, 1}}), Error);
  CHECK(layer.forward_flops({{2, 3, 4, 5}}) == 120);
  Context context(Device::CPU);
  Tensor input(Device::CPU, {1, 2, 2, 1});
  Tensor wrong_output(Device::CPU, {1, 2, 2, 2});
  CHECK_THROWS_AS(layer.forward(context, {&input}, wrong_output, true), Error);
}

PNEUMO_GPU_TEST_CASE("LeakyReLU CPU vs CUDA parity (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(3);
  LeakyReLU cpu_layer(0.0f), cuda_layer(0.0f);
  Tensor input = random_tensor({3, 33, 17, 32}, generator);
  input.data()[5] = 0.0f;  // the kink itself must agree too
  // ReLU: selects and adds only, exact.
  check_cpu_cuda_parity(cpu_layer, cuda_layer, {input}, generator, 0.0, 0.0);
  // slope * dy + gradient may be fused into an FMA on one back end only: 1 ulp.
  LeakyReLU cpu_leaky(0.1f), cuda_leaky(0.1f);
  check_cpu_cuda_parity(cpu_leaky, cuda_leaky, {input}, generator, 1e-7, 1e-6);
}

// ---- Sigmoid --------------------------------------------------------------------------------

TEST_CASE("Sigmoid forward matches 1/(1+exp(-x)) in double and is stable for large |x|") {
  std::mt19937_64 generator(4);
  Context context(Device::CPU);
  Sigmoid layer;
  Tensor input = random_tensor({2, 3, 4, 5}, generator, -8.0f, 8.0f);
  std::vector<float> output = run_forward(layer, context, {input}).to_vector();
  for (int64_t i = 0; i < input.count(); ++i)
    CHECK(output[i] == doctest::Approx(1.0 / (1.0 + std::exp(-double(input.data()[i])))).epsilon(1e-6));
  Tensor extreme(Device::CPU, {1, 1, 1, 6});
  extreme.set_values({-1000.0f, -100.0f, -30.0f, 30.0f, 100.0f, 1000.0f});
  std::vector<float> y = run_forward(layer, context, {extreme}).to_vector();
  for (float value : y) CHECK(std::isfinite(value));
  CHECK(y[0] == 0.0f);
  CHECK(y[1] >= 0.0f);
  CHECK(y[1] < 1e-40f);
  CHECK(y[2] == doctest::Approx(std::exp(-30.0)).epsilon(1e-5));  // no 1 - (1 - e) cancellation
  CHECK(y[3] == 1.0f);
  CHECK(y[4] == 1.0f);
  CHECK(y[5] == 1.0f);
}

TEST_CASE("Sigmoid backward: gradient check, saved-output formula, accumulates") {
  std::mt19937_64 generator(5);
  Sigmoid layer;
  check_input_gradients(layer, {random_tensor({2, 3, 4, 5}, generator, -4.0f, 4.0f)}, generator);
  check_backward_accumulates(layer, {random_tensor({2, 3, 4, 5}, generator, -4.0f, 4.0f)}, generator);
  // Backward reads only the saved output: dy * y * (1 - y); the input (NaN here) is not read.
  Context context(Device::CPU);
  Tensor unread_input(Device::CPU, {1, 1, 1, 2});
  unread_input.set_values({std::nanf(""), std::nanf("")});
  Tensor output(Device::CPU, {1, 1, 1, 2});
  output.set_values({0.25f, 0.5f});
  Tensor probe(Device::CPU, {1, 1, 1, 2});
  probe.set_values({2.0f, 1.0f});
  Tensor gradient(Device::CPU, {1, 1, 1, 2});
  gradient.set_values({1.0f, 0.0f});
  layer.backward(context, {&unread_input}, output, probe, {&gradient});
  CHECK(gradient.to_vector() == std::vector<float>{1.0f + 2.0f * 0.25f * 0.75f, 0.25f});
}

TEST_CASE("Sigmoid rejects bad shapes") {
  Sigmoid layer;
  CHECK_THROWS_AS(layer.output_shape({{4}}), Error);
  CHECK_THROWS_AS(layer.output_shape({}), Error);
  CHECK(layer.forward_flops({{1, 2, 2, 1}}) == 16);
}

PNEUMO_GPU_TEST_CASE("Sigmoid CPU vs CUDA parity (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(6);
  Sigmoid cpu_layer, cuda_layer;
  Tensor input = random_tensor({8, 16, 16, 1}, generator, -12.0f, 12.0f);
  input.data()[0] = -1000.0f;
  input.data()[1] = 1000.0f;
  // expf differs between libm and CUDA by up to ~2 ulp.
  check_cpu_cuda_parity(cpu_layer, cuda_layer, {input}, generator, 1e-7, 1e-6);
}

// ---- Add ------------------------------------------------------------------------------------

TEST_CASE("Add forward sums, backward accumulates into both (either may be null)") {
  std::mt19937_64 generator(7);
  Context context(Device::CPU);
  Add layer;
  CHECK(layer.input_count() == 2);
  Tensor first = random_tensor({2, 3, 4, 5}, generator);
  Tensor second = random_tensor({2, 3, 4, 5}, generator);
  std::vector<float> output = run_forward(layer, context, {first, second}).to_vector();
  for (int64_t i = 0; i < first.count(); ++i) CHECK(output[i] == first.data()[i] + second.data()[i]);
  check_input_gradients(layer, {first, second}, generator);
  check_backward_accumulates(layer, {first, second}, generator);

  Tensor probe = random_tensor({2, 3, 4, 5}, generator);
  Tensor out(Device::CPU, {2, 3, 4, 5});
  Tensor second_gradient = random_tensor({2, 3, 4, 5}, generator);
  const std::vector<float> before = second_gradient.to_vector();
  layer.backward(context, {&first, &second}, out, probe, {nullptr, &second_gradient});
  std::vector<float> after = second_gradient.to_vector();
  for (int64_t i = 0; i < probe.count(); ++i) CHECK(after[i] == before[i] + probe.data()[i]);
}

TEST_CASE("Add backward into both gradients in one pass, also when they are one buffer") {
  std::mt19937_64 generator(8);
  Context context(Device::CPU);
  Add layer;
  const Shape shape = {2, 64, 64, 24};  // several parallel_for chunks
  Tensor input = random_tensor(shape, generator);
  Tensor out(Device::CPU, shape);
  Tensor probe = random_tensor(shape, generator);
  Tensor first_gradient = random_tensor(shape, generator);
  Tensor second_gradient = random_tensor(shape, generator);
  const std::vector<float> first_before = first_gradient.to_vector();
  const std::vector<float> second_before = second_gradient.to_vector();
  layer.backward(context, {&input, &input}, out, probe, {&first_gradient, &second_gradient});
  std::vector<float> first_after = first_gradient.to_vector();
  std::vector<float> second_after = second_gradient.to_vector();
  for (int64_t i = 0; i < probe.count(); ++i) {
    CHECK(first_after[i] == first_before[i] + probe.data()[i]);
    CHECK(second_after[i] == second_before[i] + probe.data()[i]);
  }
  // x + x: the same tensor in both slots receives the gradient twice.
  layer.backward(context, {&input, &input}, out, probe, {&first_gradient, &first_gradient});
  std::vector<float> twice = first_gradient.to_vector();
  for (int64_t i = 0; i < probe.count(); ++i)
    CHECK(twice[i] == doctest::Approx(first_after[i] + 2.0f * probe.data()[i]).epsilon(1e-6));
}

TEST_CASE("Add rejects different shapes and wrong input counts") {
  Add layer;
  CHECK_THROWS_WITH_AS(layer.output_shape({{1, 4, 4, 2}, {1, 4, 4, 3}}),
                       "Add: the two inputs must have the same shape, got (1,4,4,2) and (1,4,4,3)", Error);
  CHECK_THROWS_AS(layer.output_shape({{1, 4, 4, 2}}), Error);
  CHECK_THROWS_AS(layer.output_shape({{1, 4, 2}, {1, 4, 2}}), Error);
  CHECK(layer.forward_flops({{1, 4, 4, 2}, {1, 4, 4, 2}}) == 32);
}

PNEUMO_GPU_TEST_CASE("Add CPU vs CUDA parity (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(8);
  Add cpu_layer, cuda_layer;
  // One float add per element on both back ends: exact.
  check_cpu_cuda_parity(cpu_layer, cuda_layer,
                        {random_tensor({4, 32, 32, 64}, generator), random_tensor({4, 32, 32, 64}, generator)},
                        generator, 0.0, 0.0);
}

// ---- MaxPool2d ------------------------------------------------------------------------------

TEST_CASE("MaxPool2d forward matches a naive loop and floors odd sizes") {
  std::mt19937_64 generator(9);
  Context context(Device::CPU);
  MaxPool2d layer;
  Tensor input = random_tensor({2, 5, 7, 3}, generator);
  CHECK(layer.output_shape({input.shape()}) == Shape{2, 2, 3, 3});
  std::vector<float> output = run_forward(layer, context, {input}).to_vector();
  auto at = [&](int64_t n, int64_t h, int64_t w, int64_t c) { return input.data()[((n * 5 + h) * 7 + w) * 3 + c]; };
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t oh = 0; oh < 2; ++oh)
      for (int64_t ow = 0; ow < 3; ++ow)
        for (int64_t c = 0; c < 3; ++c) {
          float expected = at(n, 2 * oh, 2 * ow, c);
          for (int64_t dh = 0; dh < 2; ++dh)
            for (int64_t dw = 0; dw < 2; ++dw) expected = std::max(expected, at(n, 2 * oh + dh, 2 * ow + dw, c));
          CHECK(output[((n * 2 + oh) * 3 + ow) * 3 + c] == expected);
        }
}

TEST_CASE("MaxPool2d backward: gradient check on distinct values, first-max tie rule, floored edges") {
  std::mt19937_64 generator(10);
  MaxPool2d layer;
  // Distinct values 0.05 apart: perturbations of 1e-2 never change a window's argmax.
  check_input_gradients(layer, {distinct_values({2, 6, 4, 3}, generator)}, generator);
  check_backward_accumulates(layer, {distinct_values({2, 6, 4, 3}, generator)}, generator);

  Context context(Device::CPU);
  // (1,3,5,1): one row and one column are floored away. Windows: all equal (tie -> top-left),
  // right pair tied (-> top-right), bottom pair tied at the max (-> bottom-left).
  Tensor input(Device::CPU, {1, 3, 5, 1});
  input.set_values({1, 1, 0, 2, 9, 1, 1, 2, 0, 9, 9, 9, 9, 9, 9});
  Tensor probe(Device::CPU, {1, 1, 2, 1});
  probe.set_values({10.0f, 20.0f});
  ForwardBackward run = run_forward_backward(layer, context, {input}, probe);
  CHECK(run.output.to_vector() == std::vector<float>{1, 2});
  CHECK(run.input_gradients[0].to_vector() == std::vector<float>{10, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  Tensor bottom(Device::CPU, {1, 2, 2, 1});
  bottom.set_values({0, 1, 3, 3});
  Tensor one(Device::CPU, {1, 1, 1, 1});
  one.set_values({1.0f});
  CHECK(run_forward_backward(layer, context, {bottom}, one).input_gradients[0].to_vector() ==
        std::vector<float>{0, 0, 1, 0});
}

TEST_CASE("MaxPool2d rejects inputs smaller than the window") {
  MaxPool2d layer;
  CHECK_THROWS_AS(layer.output_shape({{1, 1, 4, 2}}), Error);
  CHECK_THROWS_AS(layer.output_shape({{1, 4, 1, 2}}), Error);
  CHECK_THROWS_AS(layer.output_shape({{4, 4, 2}}), Error);
  CHECK(layer.forward_flops({{1, 4, 4, 2}}) == 3 * 8);
}

PNEUMO_GPU_TEST_CASE("MaxPool2d CPU vs CUDA parity, including ties (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(11);
  MaxPool2d cpu_layer, cuda_layer;
  // Comparisons and routed adds only: exact.
  check_cpu_cuda_parity(cpu_layer, cuda_layer, {random_tensor({4, 64, 63, 64}, generator)}, generator, 0.0, 0.0);
  // Small integers: many tied windows, which must route to the same position on both.
  Tensor ties = random_tensor({2, 17, 16, 5}, generator, 0.0f, 3.0f);
  for (int64_t i = 0; i < ties.count(); ++i) ties.data()[i] = std::floor(ties.data()[i]);
  check_cpu_cuda_parity(cpu_layer, cuda_layer, {ties}, generator, 0.0, 0.0);
}

// ---- Upsample -------------------------------------------------------------------------------

TEST_CASE("Upsample forward copies nearest neighbours; backward sums the blocks") {
  std::mt19937_64 generator(12);
  Context context(Device::CPU);
  Upsample layer(3);
  Tensor input = random_tensor({2, 3, 4, 5}, generator);
  CHECK(layer.output_shape({input.shape()}) == Shape{2, 9, 12, 5});
  Tensor probe = random_tensor({2, 9, 12, 5}, generator);
  ForwardBackward run = run_forward_backward(layer, context, {input}, probe);
  std::vector<float> output = run.output.to_vector();
  std::vector<float> gradient = run.input_gradients[0].to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t y = 0; y < 9; ++y)
      for (int64_t x = 0; x < 12; ++x)
        for (int64_t c = 0; c < 5; ++c)
          CHECK(output[((n * 9 + y) * 12 + x) * 5 + c] == input.data()[((n * 3 + y / 3) * 4 + x / 3) * 5 + c]);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t w = 0; w < 4; ++w)
        for (int64_t c = 0; c < 5; ++c) {
          double expected = 0;
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 3; ++j) expected += probe.data()[((n * 9 + 3 * h + i) * 12 + 3 * w + j) * 5 + c];
          CHECK(gradient[((n * 3 + h) * 4 + w) * 5 + c] == doctest::Approx(expected).epsilon(1e-6));
        }
  check_input_gradients(layer, {random_tensor({1, 2, 3, 2}, generator)}, generator);
  check_backward_accumulates(layer, {random_tensor({1, 2, 3, 2}, generator)}, generator);
}

TEST_CASE("Upsample rejects a bad factor and bad shapes") {
  CHECK_THROWS_WITH_AS(Upsample(0), "Upsample: factor must be at least 1, got 0", Error);
  Upsample layer(16);
  CHECK(layer.output_shape({{8, 16, 16, 1}}) == Shape{8, 256, 256, 1});
  CHECK_THROWS_AS(layer.output_shape({{16, 16, 1}}), Error);
  CHECK(layer.forward_flops({{8, 16, 16, 1}}) == 0);
}

PNEUMO_GPU_TEST_CASE("Upsample CPU vs CUDA parity (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  std::mt19937_64 generator(13);
  Upsample cpu_notebook(16), cuda_notebook(16);  // the notebook's output layer
  // Block sums are added in the same order on both back ends, but nvcc may contract into FMA.
  check_cpu_cuda_parity(cpu_notebook, cuda_notebook, {random_tensor({4, 16, 16, 1}, generator)}, generator, 1e-5, 1e-5);
  Upsample cpu_two(2), cuda_two(2);
  check_cpu_cuda_parity(cpu_two, cuda_two, {random_tensor({2, 9, 7, 7}, generator)}, generator, 1e-5, 1e-5);
}

PNEUMO_GPU_TEST_CASE("Pointwise, pool and upsample kernels: the 64-bit index path matches the CPU (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  pneumo::testing::ForceWideCudaIndex wide;  // small tensors, but the int64_t instantiations
  std::mt19937_64 generator(14);
  Tensor input = random_tensor({2, 9, 7, 5}, generator);
  LeakyReLU cpu_leaky(0.1f), cuda_leaky(0.1f);
  check_cpu_cuda_parity(cpu_leaky, cuda_leaky, {input}, generator, 1e-7, 1e-6);
  Sigmoid cpu_sigmoid, cuda_sigmoid;
  check_cpu_cuda_parity(cpu_sigmoid, cuda_sigmoid, {input}, generator, 1e-6, 1e-6);
  Add cpu_add, cuda_add;
  check_cpu_cuda_parity(cpu_add, cuda_add, {input, random_tensor({2, 9, 7, 5}, generator)}, generator, 0.0, 0.0);
  MaxPool2d cpu_pool, cuda_pool;
  check_cpu_cuda_parity(cpu_pool, cuda_pool, {input}, generator, 0.0, 0.0);
  Upsample cpu_upsample(3), cuda_upsample(3);
  check_cpu_cuda_parity(cpu_upsample, cuda_upsample, {input}, generator, 1e-5, 1e-5);
}

TEST_CASE("Layer contract: the base validates count, nulls, shapes and gradient slots once") {
  // These checks live in Layer::forward / Layer::backward, not in each layer.
  Context context(Device::CPU);
  Add add;
  Tensor a(Device::CPU, {1, 2, 2, 3}), b(Device::CPU, {1, 2, 2, 3}), out(Device::CPU, {1, 2, 2, 3});
  Tensor wrong(Device::CPU, {1, 2, 2, 4});
  CHECK_THROWS_WITH_AS(add.forward(context, {&a}, out, true), "Add::forward: expected 2 input(s), got 1", Error);
  CHECK_THROWS_WITH_AS(add.forward(context, {&a, nullptr}, out, true), "Add::forward: input 1 is null", Error);
  CHECK_THROWS_AS(add.forward(context, {&a, &b}, wrong, true), Error);
  add.forward(context, {&a, &b}, out, true);
  Tensor gradient(Device::CPU, {1, 2, 2, 3});
  CHECK_THROWS_AS(add.backward(context, {&a, &b}, out, wrong, {&gradient, nullptr}), Error);
  CHECK_THROWS_AS(add.backward(context, {&a, &b}, out, out, {&gradient}), Error);
  CHECK_THROWS_AS(add.backward(context, {&a, &b}, out, out, {&wrong, nullptr}), Error);
  add.backward(context, {&a, &b}, out, out, {&gradient, nullptr});
}
