// Conv2d: forward and backward against a naive direct convolution written here (double
// accumulation), gradients through the shared finite-difference checker, accumulate semantics,
// bad inputs, and CPU-vs-CUDA parity.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>
#include <random>
#include <sstream>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/parameters.h"
#include "layers/conv2d.h"
#include "layers/conv2d_algorithm.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using namespace pneumo;
using pneumo::testing::check_gradient;
using pneumo::testing::probe_objective;
using pneumo::testing::random_tensor;

namespace {

// A Conv2d bound to its own parameter store (names "conv.weight", "conv.bias"), with views of
// its parameters and their gradients.
struct BoundConv {
  Conv2d layer;
  ParameterStore store;
  Tensor weight, weight_gradient, bias, bias_gradient;  // (K,R,S,C), (K,R,S,C), (K), (K)
  BoundConv(Device device, const Conv2dGeometry& g, bool has_bias, uint64_t seed)
      : layer(g.C, g.K, g.kernel_size, has_bias),
        store(device, prefixed(layer.parameter_specs()), seed) {
    layer.bind_parameters(store, "conv");
    weight = store.entry("conv.weight").value;
    weight_gradient = store.entry("conv.weight").gradient;
    if (has_bias) {
      bias = store.entry("conv.bias").value;
      bias_gradient = store.entry("conv.bias").gradient;
    }
  }
  static std::vector<ParameterSpec> prefixed(std::vector<ParameterSpec> specs) {
    for (auto& spec : specs) spec.name = "conv." + spec.name;
    return specs;
  }
};

Shape input_shape(const Conv2dGeometry& g) { return {g.N, g.H, g.W, g.C}; }
Shape output_shape(const Conv2dGeometry& g) { return {g.N, g.H, g.W, g.K}; }

std::string describe(const Conv2dGeometry& g, bool bias) {
  std::ostringstream text;
  text << "N=" << g.N << " H=" << g.H << " W=" << g.W << " C=" << g.C << " K=" << g.K
       << " kernel=" << g.kernel_size << (bias ? " bias" : " no bias");
  return text.str();
}

// Naive direct convolution, stride 1, zero padding kernel_size/2, double accumulation.
// input (N,H,W,C), weight (K,R,S,C), bias (K) or empty -> output (N,H,W,K).
std::vector<double> naive_forward(const Conv2dGeometry& g, const std::vector<float>& input,
                                  const std::vector<float>& weight, const std::vector<float>& bias) {
  const int64_t R = g.kernel_size, pad = R / 2;
  std::vector<double> output(static_cast<size_t>(g.N * g.H * g.W * g.K), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t h = 0; h < g.H; ++h)
      for (int64_t w = 0; w < g.W; ++w)
        for (int64_t k = 0; k < g.K; ++k) {
          double sum = bias.empty() ? 0.0 : bias[k];
          for (int64_t i = 0; i < R; ++i)
            for (int64_t j = 0; j < R; ++j) {
              const int64_t y = h + i - pad, x = w + j - pad;
              if (y < 0 || y >= g.H || x < 0 || x >= g.W) continue;
              for (int64_t c = 0; c < g.C; ++c)
                sum += static_cast<double>(input[((n * g.H + y) * g.W + x) * g.C + c]) *
                       weight[((k * R + i) * R + j) * g.C + c];
            }
          output[((n * g.H + h) * g.W + w) * g.K + k] = sum;
        }
  return output;
}

// Naive gradients of the same convolution for output gradient dy (N,H,W,K): dx (N,H,W,C),
// dw (K,R,S,C), db (K).
void naive_backward(const Conv2dGeometry& g, const std::vector<float>& input,
                    const std::vector<float>& weight, const std::vector<float>& dy,
                    std::vector<double>& dx, std::vector<double>& dw, std::vector<double>& db) {
  const int64_t R = g.kernel_size, pad = R / 2;
  dx.assign(static_cast<size_t>(g.N * g.H * g.W * g.C), 0.0);
  dw.assign(static_cast<size_t>(g.K * R * R * g.C), 0.0);
  db.assign(static_cast<size_t>(g.K), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t h = 0; h < g.H; ++h)
      for (int64_t w = 0; w < g.W; ++w)
        for (int64_t k = 0; k < g.K; ++k) {
          const double d = dy[((n * g.H + h) * g.W + w) * g.K + k];
          db[k] += d;
          for (int64_t i = 0; i < R; ++i)
            for (int64_t j = 0; j < R; ++j) {
              const int64_t y = h + i - pad, x = w + j - pad;
              if (y < 0 || y >= g.H || x < 0 || x >= g.W) continue;
              for (int64_t c = 0; c < g.C; ++c) {
                const int64_t input_index = ((n * g.H + y) * g.W + x) * g.C + c;
                const int64_t weight_index = ((k * R + i) * R + j) * g.C + c;
                dx[input_index] += d * weight[weight_index];
                dw[weight_index] += d * input[input_index];
              }
            }
        }
}

// Every |actual - expected| <= absolute + relative * |expected|; reports the worst element.
template <typename Expected>
void check_close(const std::vector<float>& actual, const std::vector<Expected>& expected,
                 double absolute, double relative, const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  size_t failures = 0, worst = 0;
  double worst_excess = -1e300;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double excess = std::fabs(actual[i] - static_cast<double>(expected[i])) -
                          (absolute + relative * std::fabs(static_cast<double>(expected[i])));
    if (excess > 0) ++failures;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO(what << ": " << failures << " of " << actual.size() << " outside tolerance; worst at "
            << worst << ": " << actual[worst] << " vs " << static_cast<double>(expected[worst]));
  CHECK(failures == 0);
}

const std::vector<std::pair<Conv2dGeometry, bool>> kShapes = {
    {{1, 5, 5, 3, 4, 3}, true},    // 3x3, square, with bias
    {{2, 7, 4, 5, 3, 3}, false},   // 3x3, H != W, C > K, batch > 1
    {{3, 4, 9, 8, 6, 1}, true},    // 1x1, H != W, with bias
    {{2, 6, 5, 16, 1, 1}, false},  // 1x1 to one channel (the network's output head)
    {{2, 3, 11, 1, 12, 3}, false}, // one input channel (the network's first conv)
    {{1, 1, 1, 2, 3, 3}, true},    // a single pixel: every neighbour is padding
    {{2, 2, 3, 4, 5, 3}, true},    // smaller than the kernel in H
};

}  // namespace

TEST_CASE("Conv2d forward matches a naive direct convolution") {
  std::mt19937_64 generator(11);
  for (const auto& [g, has_bias] : kShapes) {
    CAPTURE(describe(g, has_bias));
    BoundConv conv(Device::CPU, g, has_bias, 5);
    if (has_bias) conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
    Tensor input = random_tensor(input_shape(g), generator);
    Tensor output = random_tensor(output_shape(g), generator);  // garbage: forward overwrites
    Context context(Device::CPU);
    conv.layer.forward(context, {&input}, output, true);
    const std::vector<float> bias = has_bias ? conv.bias.to_vector() : std::vector<float>{};
    check_close(output.to_vector(),
                naive_forward(g, input.to_vector(), conv.weight.to_vector(), bias), 1e-5, 1e-5,
                "output");
    CHECK(conv.layer.forward_flops({input_shape(g)}) ==
          2 * g.N * g.H * g.W * g.K * g.kernel_size * g.kernel_size * g.C +
              (has_bias ? g.N * g.H * g.W * g.K : 0));
  }
}

TEST_CASE("Conv2d backward passes the finite-difference gradient check") {
  std::mt19937_64 generator(12);
  for (const auto& [g, has_bias] : kShapes) {
    CAPTURE(describe(g, has_bias));
    BoundConv conv(Device::CPU, g, has_bias, 6);
    conv.weight.set_values(random_tensor(conv.weight.shape(), generator).to_vector());
    if (has_bias) conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
    Tensor input = random_tensor(input_shape(g), generator);
    Tensor probe = random_tensor(output_shape(g), generator);
    Tensor output(Device::CPU, output_shape(g));
    Tensor input_gradient(Device::CPU, input_shape(g));
    Context context(Device::CPU);
    conv.layer.forward(context, {&input}, output, true);
    conv.layer.backward(context, {&input}, output, probe, {&input_gradient});
    auto objective = [&] {
      conv.layer.forward(context, {&input}, output, true);
      return probe_objective(output, probe);
    };
    auto result = check_gradient(objective, input, input_gradient, "input");
    CHECK_MESSAGE(result.ok, result.message);
    result = check_gradient(objective, conv.weight, conv.weight_gradient, "weight");
    CHECK_MESSAGE(result.ok, result.message);
    if (has_bias) {
      result = check_gradient(objective, conv.bias, conv.bias_gradient, "bias");
      CHECK_MESSAGE(result.ok, result.message);
    }
  }
}

TEST_CASE("Conv2d on a batch larger than one im2col chunk matches the naive convolution") {
  // 3 images of 50x64x64: the 3x3 columns take several chunks and a chunk spans two images.
  const Conv2dGeometry g{3, 50, 64, 64, 64, 3};
  std::mt19937_64 generator(13);
  BoundConv conv(Device::CPU, g, true, 7);
  conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
  Tensor input = random_tensor(input_shape(g), generator);
  Tensor output_gradient = random_tensor(output_shape(g), generator);
  Tensor output(Device::CPU, output_shape(g));
  Tensor input_gradient(Device::CPU, input_shape(g));
  Context context(Device::CPU);
  conv.layer.forward(context, {&input}, output, true);
  conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
  const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
  check_close(output.to_vector(), naive_forward(g, x, w, conv.bias.to_vector()), 1e-4, 1e-5,
              "output");
  std::vector<double> dx, dw, db;
  naive_backward(g, x, w, output_gradient.to_vector(), dx, dw, db);
  check_close(input_gradient.to_vector(), dx, 1e-4, 1e-5, "input gradient");
  check_close(conv.weight_gradient.to_vector(), dw, 1e-3, 1e-5, "weight gradient");
  check_close(conv.bias_gradient.to_vector(), db, 1e-3, 1e-5, "bias gradient");
}

TEST_CASE("Conv2d direct 3x3 paths (32k channels, one input channel) match naive and accumulate") {
  // Channel counts that are multiples of 32 (<= 256) take the direct AVX-512 kernels on CPUs
  // that have AVX-512 (3x3 and 1x1), one input channel with K = 16 or 32 the single-channel
  // kernels (im2col + GEMM otherwise; all must match). Widths 13 and 30 give uneven
  // pixel tiles, K = 32 a single filter block, K = 96 an odd number of blocks, 64 output
  // channels uneven weight-gradient tiles; 3x20 rows of 30 pixels span several row groups.
  const std::vector<std::pair<Conv2dGeometry, bool>> shapes = {
      {{2, 5, 13, 32, 64, 3}, true},
      {{3, 20, 30, 64, 32, 3}, false},
      {{1, 4, 7, 96, 96, 3}, true},
      // One input channel (the image), K = 32 and 16: the single-channel kernels.
      {{2, 9, 17, 1, 32, 3}, true},
      {{3, 4, 5, 1, 16, 3}, false},
      // 1x1 with channels multiple of 32: direct forward and input gradient.
      {{2, 5, 13, 64, 96, 1}, true},
      {{1, 3, 7, 32, 64, 1}, false},
  };
  std::mt19937_64 generator(15);
  for (const auto& [g, has_bias] : shapes) {
    CAPTURE(describe(g, has_bias));
    BoundConv conv(Device::CPU, g, has_bias, 9);
    if (has_bias) conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
    Tensor input = random_tensor(input_shape(g), generator);
    Tensor output_gradient = random_tensor(output_shape(g), generator);
    Tensor output = random_tensor(output_shape(g), generator);  // garbage: forward overwrites
    Context context(Device::CPU);
    conv.layer.forward(context, {&input}, output, true);
    const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
    const std::vector<float> bias = has_bias ? conv.bias.to_vector() : std::vector<float>{};
    check_close(output.to_vector(), naive_forward(g, x, w, bias), 1e-4, 1e-5, "output");
    // Gradients start from random values: backward must add to them.
    Tensor input_gradient = random_tensor(input_shape(g), generator);
    conv.weight_gradient.set_values(random_tensor(conv.weight.shape(), generator).to_vector());
    if (has_bias) conv.bias_gradient.set_values(random_tensor({g.K}, generator).to_vector());
    const std::vector<float> start_input = input_gradient.to_vector();
    const std::vector<float> start_weight = conv.weight_gradient.to_vector();
    const std::vector<float> start_bias =
        has_bias ? conv.bias_gradient.to_vector() : std::vector<float>{};
    conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
    std::vector<double> dx, dw, db;
    naive_backward(g, x, w, output_gradient.to_vector(), dx, dw, db);
    for (size_t i = 0; i < dx.size(); ++i) dx[i] += start_input[i];
    for (size_t i = 0; i < dw.size(); ++i) dw[i] += start_weight[i];
    check_close(input_gradient.to_vector(), dx, 1e-4, 1e-5, "input gradient");
    check_close(conv.weight_gradient.to_vector(), dw, 1e-3, 1e-5, "weight gradient");
    if (has_bias) {
      for (size_t i = 0; i < db.size(); ++i) db[i] += start_bias[i];
      check_close(conv.bias_gradient.to_vector(), db, 1e-3, 1e-5, "bias gradient");
    }
  }
}

TEST_CASE("Conv2d backward accumulates into every gradient") {
  std::mt19937_64 generator(14);
  for (const auto& [g, has_bias] : kShapes) {
    CAPTURE(describe(g, has_bias));
    BoundConv conv(Device::CPU, g, has_bias, 8);
    Tensor input = random_tensor(input_shape(g), generator);
    Tensor output_gradient = random_tensor(output_shape(g), generator);
    Tensor output(Device::CPU, output_shape(g));
    Tensor input_gradient(Device::CPU, input_shape(g));
    Context context(Device::CPU);
    conv.layer.forward(context, {&input}, output, true);
    conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
    const std::vector<float> once_input = input_gradient.to_vector();
    const std::vector<float> once_weight = conv.weight_gradient.to_vector();
    const std::vector<float> once_bias =
        has_bias ? conv.bias_gradient.to_vector() : std::vector<float>{};
    conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
    auto doubled = [](std::vector<float> values) {
      for (float& value : values) value *= 2.0f;
      return values;
    };
    check_close(input_gradient.to_vector(), doubled(once_input), 1e-6, 1e-5, "input gradient x2");
    check_close(conv.weight_gradient.to_vector(), doubled(once_weight), 1e-6, 1e-5,
                "weight gradient x2");
    if (has_bias)
      check_close(conv.bias_gradient.to_vector(), doubled(once_bias), 1e-6, 1e-5,
                  "bias gradient x2");
    // A null input gradient skips d input but still accumulates the parameter gradients.
    conv.layer.backward(context, {&input}, output, output_gradient, {nullptr});
    std::vector<float> tripled = once_weight;
    for (float& value : tripled) value *= 3.0f;
    check_close(conv.weight_gradient.to_vector(), tripled, 1e-6, 1e-5, "weight gradient x3");
  }
}

TEST_CASE("Conv2d rejects bad configurations and inputs") {
  CHECK_THROWS_WITH_AS(Conv2d(3, 4, 5, false), "Conv2d: kernel_size must be 1 or 3, got 5", Error);
  CHECK_THROWS_AS(Conv2d(3, 4, 2, true), Error);
  CHECK_THROWS_AS(Conv2d(0, 4, 3, true), Error);
  const Conv2dGeometry g{2, 6, 6, 3, 4, 3};
  BoundConv conv(Device::CPU, g, true, 9);
  CHECK(conv.layer.output_shape({{2, 6, 6, 3}}) == Shape{2, 6, 6, 4});
  CHECK_THROWS_WITH_AS(conv.layer.output_shape({{2, 6, 6, 5}}),
                       "Conv2d: input (2,6,6,5) has 5 channels, expected 3", Error);
  CHECK_THROWS_AS(conv.layer.output_shape({{2, 6, 6}}), Error);
  CHECK_THROWS_AS(conv.layer.output_shape({{2, 6, 6, 3}, {2, 6, 6, 3}}), Error);
  Context context(Device::CPU);
  Tensor wrong_channels(Device::CPU, {2, 6, 6, 5});
  Tensor output(Device::CPU, {2, 6, 6, 4});
  CHECK_THROWS_AS(conv.layer.forward(context, {&wrong_channels}, output, true), Error);
  Tensor input(Device::CPU, {2, 6, 6, 3});
  Tensor wrong_output(Device::CPU, {2, 6, 6, 3});
  CHECK_THROWS_AS(conv.layer.forward(context, {&input}, wrong_output, true), Error);
  Tensor wrong_gradient(Device::CPU, {2, 6, 5, 3});
  CHECK_THROWS_AS(conv.layer.backward(context, {&input}, output, output, {&wrong_gradient}), Error);
  CHECK_THROWS_AS(conv.layer.backward(context, {&input}, output, wrong_output, {nullptr}), Error);
  Conv2d unbound(3, 4, 3, false);
  CHECK_THROWS_AS(unbound.forward(context, {&input}, output, true), Error);
  // A store whose weight has the wrong shape is refused at bind time.
  ParameterStore wrong_store(Device::CPU, {{"conv.weight", {4, 1, 1, 3}, Initializer::Zeros}}, 1);
  CHECK_THROWS_AS(unbound.bind_parameters(wrong_store, "conv"), Error);
  // Parameters: Keras glorot_uniform fans, zero bias.
  const auto specs = conv.layer.parameter_specs();
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].shape == Shape{4, 3, 3, 3});
  CHECK(specs[0].fan_in == 27);
  CHECK(specs[0].fan_out == 36);
  CHECK(specs[1].shape == Shape{4});
  CHECK(specs[1].initializer == Initializer::Zeros);
  CHECK(Conv2d(3, 4, 1, false).parameter_specs().size() == 1);
}

namespace {

// Runs forward and backward of the same layer on the CPU and on the GPU and compares outputs and
// every gradient: |gpu - cpu| <= tolerance * max(1, max |cpu|) per tensor.
void check_cuda_matches_cpu(const Conv2dGeometry& g, bool has_bias, bool allow_tf32,
                            double tolerance) {
  CAPTURE(describe(g, has_bias));
  CAPTURE(allow_tf32);
  std::mt19937_64 generator(15);
  BoundConv cpu(Device::CPU, g, has_bias, 10);
  BoundConv gpu(Device::CUDA, g, has_bias, 10);
  if (has_bias) {
    const Tensor bias = random_tensor({g.K}, generator);
    cpu.bias.copy_from(bias);
    gpu.bias.copy_from(bias);
  }
  gpu.layer.set_allow_tf32(allow_tf32);
  const Tensor input = random_tensor(input_shape(g), generator);
  const Tensor output_gradient = random_tensor(output_shape(g), generator);
  const Tensor start_gradient = random_tensor(input_shape(g), generator);  // accumulated onto
  // The parameter gradients start non-zero too, so an overwrite (beta = 0) instead of an
  // accumulation in cuDNN's backward filter or the bias GEMV fails the comparison.
  const Tensor start_weight_gradient =
      random_tensor({g.K, g.kernel_size, g.kernel_size, g.C}, generator);
  cpu.weight_gradient.copy_from(start_weight_gradient);
  gpu.weight_gradient.copy_from(start_weight_gradient);
  if (has_bias) {
    const Tensor start_bias_gradient = random_tensor({g.K}, generator);
    cpu.bias_gradient.copy_from(start_bias_gradient);
    gpu.bias_gradient.copy_from(start_bias_gradient);
  }

  Context cpu_context(Device::CPU), gpu_context(Device::CUDA);
  Tensor cpu_output(Device::CPU, output_shape(g));
  Tensor cpu_input_gradient = start_gradient.to(Device::CPU);
  cpu.layer.forward(cpu_context, {&input}, cpu_output, true);
  cpu.layer.backward(cpu_context, {&input}, cpu_output, output_gradient, {&cpu_input_gradient});

  const Tensor gpu_input = input.to(Device::CUDA);
  const Tensor gpu_output_gradient = output_gradient.to(Device::CUDA);
  Tensor gpu_output(Device::CUDA, output_shape(g));
  Tensor gpu_input_gradient = start_gradient.to(Device::CUDA);
  gpu.layer.forward(gpu_context, {&gpu_input}, gpu_output, true);
  gpu.layer.backward(gpu_context, {&gpu_input}, gpu_output, gpu_output_gradient,
                     {&gpu_input_gradient});
  gpu_context.synchronize();

  auto compare = [&](const Tensor& on_gpu, const Tensor& on_cpu, const char* what) {
    const std::vector<float> reference = on_cpu.to_vector();
    double scale = 1.0;
    for (float value : reference) scale = std::max(scale, std::fabs(static_cast<double>(value)));
    check_close(on_gpu.to_vector(), reference, tolerance * scale, 0.0, what);
  };
  compare(gpu_output, cpu_output, "output");
  compare(gpu_input_gradient, cpu_input_gradient, "input gradient");
  compare(gpu.weight_gradient, cpu.weight_gradient, "weight gradient");
  if (has_bias) compare(gpu.bias_gradient, cpu.bias_gradient, "bias gradient");
}

}  // namespace

PNEUMO_GPU_TEST_CASE("Conv2d CUDA matches CPU, full fp32 (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  // Tolerance 1e-5 of the tensor's largest magnitude: both sides are fp32 with different
  // summation orders (cuDNN FMA kernels vs OpenBLAS).
  for (const auto& [g, has_bias] : kShapes) check_cuda_matches_cpu(g, has_bias, false, 1e-5);
  check_cuda_matches_cpu({2, 32, 24, 64, 64, 3}, false, false, 1e-5);
  check_cuda_matches_cpu({2, 16, 16, 512, 1, 1}, true, false, 1e-5);
}

PNEUMO_GPU_TEST_CASE("Conv2d CUDA with TF32 stays close to CPU (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  // TF32 keeps 10 mantissa bits: 1e-2 of the largest magnitude.
  check_cuda_matches_cpu({2, 32, 24, 64, 64, 3}, true, true, 1e-2);
  check_cuda_matches_cpu({2, 16, 16, 64, 32, 1}, false, true, 1e-2);
}

// ---- cuDNN algorithm choice (pure logic, runs on the CPU) -----------------------------------

namespace {

ConvAlgorithmCandidate candidate(int algorithm, const char* name, bool ok = true,
                                 ConvAlgorithmMath math = ConvAlgorithmMath::Fma) {
  ConvAlgorithmCandidate c;
  c.algorithm = algorithm;
  c.algorithm_name = name;
  c.heuristic_ok = ok;
  c.heuristic_status = ok ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_NOT_SUPPORTED";
  c.math = math;
  return c;
}

// A fabricated "cuDNN": per algorithm, the workspace bytes or the failure it reports; records
// the order in which it was asked.
struct FakeWorkspaceQuery {
  std::map<int, size_t> bytes;
  std::map<int, std::string> failures;
  std::vector<int> asked;
  ConvWorkspaceQuery callback() {
    return [this](const ConvAlgorithmCandidate& c, size_t* out) {
      asked.push_back(c.algorithm);
      auto failure = failures.find(c.algorithm);
      if (failure != failures.end()) return failure->second;
      *out = bytes.count(c.algorithm) ? bytes.at(c.algorithm) : 0;
      return std::string();
    };
  }
};

}  // namespace

TEST_CASE("cuDNN algorithm choice walks the heuristic's order past every unusable candidate") {
  const std::vector<ConvAlgorithmCandidate> candidates = {
      candidate(1, "IMPLICIT_PRECOMP_GEMM", false),                    // heuristic: not supported
      candidate(6, "WINOGRAD"),                                        // workspace query fails
      candidate(7, "WINOGRAD_NONFUSED", true, ConvAlgorithmMath::TensorOp),  // TF32 while off
      candidate(4, "FFT"),                                             // workspace over the limit
      candidate(2, "GEMM", true, ConvAlgorithmMath::TensorOpConversion),  // fp16: never
      candidate(0, "IMPLICIT_GEMM"),                                   // usable
      candidate(3, "DIRECT"),                                          // never reached
  };
  FakeWorkspaceQuery fake;
  fake.failures[6] = "CUDNN_STATUS_NOT_SUPPORTED";
  fake.bytes[4] = 4096;
  fake.bytes[0] = 512;
  const ConvAlgorithmChoice choice = choose_conv_algorithm(candidates, false, 1024, fake.callback());
  CHECK(choice.index == 5);
  CHECK(choice.workspace_bytes == 512);
  // Only candidates that pass the heuristic status and math are asked, in ranked order.
  CHECK(fake.asked == std::vector<int>{6, 4, 0});
  REQUIRE(choice.tried.size() == 6);
  CHECK(choice.tried[0] == "IMPLICIT_PRECOMP_GEMM (1): heuristic status CUDNN_STATUS_NOT_SUPPORTED");
  CHECK(choice.tried[1] == "WINOGRAD (6): workspace query failed with CUDNN_STATUS_NOT_SUPPORTED");
  CHECK(choice.tried[2] == "WINOGRAD_NONFUSED (7): skipped, tensor-op (TF32) math while TF32 is off");
  CHECK(choice.tried[3] == "FFT (4): needs 4096 bytes of workspace, over the 1024 bytes limit");
  CHECK(choice.tried[4] == "GEMM (2): skipped, fp16 down-conversion math");
  CHECK(choice.tried[5] == "IMPLICIT_GEMM (0): chosen, workspace 512 bytes");
}

TEST_CASE("cuDNN algorithm choice: TF32 allowed takes tensor-op math; the first usable wins") {
  const std::vector<ConvAlgorithmCandidate> candidates = {
      candidate(7, "WINOGRAD_NONFUSED", true, ConvAlgorithmMath::TensorOp),
      candidate(0, "IMPLICIT_GEMM", true, ConvAlgorithmMath::Default),
  };
  FakeWorkspaceQuery fake;
  fake.bytes[7] = 100;
  const ConvAlgorithmChoice with_tf32 = choose_conv_algorithm(candidates, true, 1000, fake.callback());
  CHECK(with_tf32.index == 0);
  CHECK(with_tf32.workspace_bytes == 100);
  CHECK(fake.asked == std::vector<int>{7});
  const ConvAlgorithmChoice without = choose_conv_algorithm(candidates, false, 1000, fake.callback());
  CHECK(without.index == 1);
  CHECK(without.workspace_bytes == 0);
}

TEST_CASE("cuDNN algorithm choice: when nothing is usable the error names layer, shape and tries") {
  const std::vector<ConvAlgorithmCandidate> candidates = {candidate(1, "ALGO_1", false),
                                                          candidate(0, "ALGO_0")};
  FakeWorkspaceQuery fake;
  fake.failures[0] = "CUDNN_STATUS_BAD_PARAM";
  const ConvAlgorithmChoice choice = choose_conv_algorithm(candidates, false, 1 << 30, fake.callback());
  CHECK(choice.index == -1);
  CHECK(no_conv_algorithm_message("block1_1.conv1", "backward-data", "input (2,3,3,1) K=32 kernel=3",
                                  choice) ==
        "cuDNN has no usable backward-data convolution algorithm for Conv2d block1_1.conv1 "
        "input (2,3,3,1) K=32 kernel=3; tried ALGO_1 (1): heuristic status "
        "CUDNN_STATUS_NOT_SUPPORTED; ALGO_0 (0): workspace query failed with CUDNN_STATUS_BAD_PARAM");
  const ConvAlgorithmChoice none = choose_conv_algorithm({}, false, 1 << 30, fake.callback());
  CHECK(none.index == -1);
  CHECK(no_conv_algorithm_message("", "forward", "input (1,1,1,1) K=1 kernel=1", none) ==
        "cuDNN has no usable forward convolution algorithm for Conv2d (unnamed) input (1,1,1,1) "
        "K=1 kernel=1; tried nothing (the heuristic returned no candidates)");
}
