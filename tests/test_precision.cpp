// bf16 (layers/precision.md): the rounding against torch's (tests/make_bf16_reference.py), the
// portable bf16 convolution of every algorithm against a naive double-precision convolution of
// the rounded operands, a training step in bf16 beside fp32, and the GPU's bf16 against the CPU's.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/context.h"
#include "kernels/bf16_math.h"
#include "kernels/cpu/bf16_round.h"
#include "layers/adam.h"
#include "layers/conv2d.h"
#include "layers/network.h"
#include "layers/training_step.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using namespace pneumo;
using namespace pneumo::testing;

namespace {

std::vector<float> rounded(const std::vector<float>& values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = round_to_bf16(values[i]);
  return out;
}

std::vector<float> random_values(int64_t count, std::mt19937_64& generator) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = uniform(generator);
  return values;
}

// The three directions of a 'same' stride-1 convolution in double, straight from the definition
// (independent of every kernel): x (N,H,W,C), w (K,R,R,C), y and dy (N,H,W,K).
struct NaiveConv {
  Conv2dGeometry g;
  int64_t at_x(int64_t n, int64_t h, int64_t w, int64_t c) const { return ((n * g.H + h) * g.W + w) * g.C + c; }
  int64_t at_y(int64_t n, int64_t h, int64_t w, int64_t k) const { return ((n * g.H + h) * g.W + w) * g.K + k; }
  int64_t at_w(int64_t k, int64_t i, int64_t j, int64_t c) const {
    return ((k * g.kernel_size + i) * g.kernel_size + j) * g.C + c;
  }
  // Calls visit(y index, x index, w index) for every product of the convolution.
  template <typename Visit>
  void each_product(Visit&& visit) const {
    const int64_t R = g.kernel_size, pad = g.padding();
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t h = 0; h < g.H; ++h)
        for (int64_t w = 0; w < g.W; ++w)
          for (int64_t k = 0; k < g.K; ++k)
            for (int64_t i = 0; i < R; ++i)
              for (int64_t j = 0; j < R; ++j) {
                const int64_t hh = h + i - pad, ww = w + j - pad;
                if (hh < 0 || hh >= g.H || ww < 0 || ww >= g.W) continue;
                for (int64_t c = 0; c < g.C; ++c) visit(at_y(n, h, w, k), at_x(n, hh, ww, c), at_w(k, i, j, c));
              }
  }
  std::vector<double> forward(const std::vector<float>& x, const std::vector<float>& w) const {
    std::vector<double> y(static_cast<size_t>(g.pixels() * g.K), 0.0);
    each_product([&](int64_t yi, int64_t xi, int64_t wi) { y[yi] += double(x[xi]) * w[wi]; });
    return y;
  }
  std::vector<double> input_gradient(const std::vector<float>& dy, const std::vector<float>& w) const {
    std::vector<double> dx(static_cast<size_t>(g.pixels() * g.C), 0.0);
    each_product([&](int64_t yi, int64_t xi, int64_t wi) { dx[xi] += double(dy[yi]) * w[wi]; });
    return dx;
  }
  std::vector<double> weight_gradient(const std::vector<float>& dy, const std::vector<float>& x) const {
    std::vector<double> dw(static_cast<size_t>(g.K * g.kernel_size * g.kernel_size * g.C), 0.0);
    each_product([&](int64_t yi, int64_t xi, int64_t wi) { dw[wi] += double(dy[yi]) * x[xi]; });
    return dw;
  }
};

}  // namespace

TEST_CASE("bf16 rounding is torch's, bit for bit (round to nearest even, overflow to infinity)") {
  std::ifstream file(fixture_path("bf16_rounding.txt"));
  REQUIRE(file.good());
  std::string line;
  int cases = 0;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    uint32_t input = 0, expected = 0;
    fields >> std::hex >> input >> expected;
    const uint16_t actual = bf16_bits_from_float(float_from_bits(input));
    CAPTURE(line);
    CHECK(actual == expected);
    ++cases;
  }
  CHECK(cases > 600);
  // NaN stays NaN (quiet), whatever its payload.
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffffffffu, 0x7f80ffffu})
    CHECK(std::isnan(round_to_bf16(float_from_bits(nan))));
  // The threaded buffer version is the per-element function, in place too.
  std::mt19937_64 generator(3);
  std::vector<float> values = random_values(300000, generator);
  std::vector<float> out(values.size());
  round_to_bf16_cpu(out.data(), values.data(), static_cast<int64_t>(values.size()));
  CHECK(out == rounded(values));
  round_to_bf16_cpu(values.data(), values.data(), static_cast<int64_t>(values.size()));
  CHECK(values == out);
}

TEST_CASE("bf16 convolution, every algorithm: the exact convolution of the rounded operands, within fp32 summation") {
  const Conv2dGeometry shapes[] = {{2, 9, 7, 32, 32, 3}, {2, 8, 8, 64, 32, 1}, {1, 12, 10, 1, 32, 3}};
  for (const Conv2dGeometry& g : shapes) {
    std::mt19937_64 generator(21);
    const std::vector<float> x = random_values(g.pixels() * g.C, generator);
    const std::vector<float> w = random_values(g.K * g.kernel_size * g.kernel_size * g.C, generator);
    const std::vector<float> dy = random_values(g.pixels() * g.K, generator);
    const NaiveConv naive{g};
    const std::vector<double> y = naive.forward(rounded(x), rounded(w));
    const std::vector<double> dx = naive.input_gradient(rounded(dy), rounded(w));
    const std::vector<double> dw = naive.weight_gradient(rounded(dy), rounded(x));
    // fp32's convolution of the unrounded operands differs from it by about 2^-8 relative per
    // product (two operands rounded, 2^-9 each), which the bf16 run must show.
    const std::vector<double> y32 = naive.forward(x, w);
    // An output sums n exact products (|x|, |w| <= 1) in fp32: |error| <= n * 2^-24 * sum |products|
    // <= n^2 * 2^-24. Winograd adds its own transform error (layers/conv2d.md), bounded here by
    // 1e-4 * n. n = R*R*C (forward), R*R*K (input gradient), N*H*W (weight gradient).
    const auto bound = [](double n) { return n * n * std::ldexp(1.0, -24) + 1e-4 * n; };
    const double taps = g.kernel_size * g.kernel_size;
    for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
      const std::string name = std::string(conv_algorithm_name(algorithm)) + " on " + describe_geometry(g);
      CAPTURE(name);
      std::vector<float> scratch;
      for (ConvDirection direction : kConvDirections) {
        if (!conv_algorithm_unsupported_reason(algorithm, direction, g).empty()) {
          std::printf("SKIPPED %s %s: %s\n", name.c_str(), conv_direction_name(direction),
                      conv_algorithm_unsupported_reason(algorithm, direction, g).c_str());
          continue;
        }
        if (direction == ConvDirection::Forward) {
          std::vector<float> out(y.size(), 7.0f);  // overwritten
          conv2d_forward_cpu(out.data(), x.data(), w.data(), nullptr, g, algorithm, scratch, nullptr, Precision::Bf16);
          check_close(out, y, bound(taps * g.C), 0.0, "bf16 forward");
          // It is the rounded operands' convolution, not fp32's: far closer to the first.
          const std::vector<float> y_rounded(y.begin(), y.end()), y_fp32(y32.begin(), y32.end());
          CHECK(max_abs_difference(out, y_fp32) > 4 * max_abs_difference(out, y_rounded));
          // The prepared-filter path (constant weights) rounds the same way.
          const int64_t prepared_floats = conv2d_prepared_filter_floats(g, algorithm);
          if (prepared_floats > 0) {
            std::vector<float> prepared(static_cast<size_t>(prepared_floats)), again(y.size());
            conv2d_prepare_filter_cpu(prepared.data(), w.data(), g, algorithm, Precision::Bf16);
            conv2d_forward_cpu(again.data(), x.data(), w.data(), nullptr, g, algorithm, scratch, prepared.data(),
                               Precision::Bf16);
            CHECK(again == out);
          }
        } else if (direction == ConvDirection::InputGradient) {
          std::vector<float> out(dx.size(), 0.5f);  // accumulated onto
          conv2d_input_gradient_cpu(out.data(), dy.data(), w.data(), g, algorithm, scratch, Precision::Bf16);
          std::vector<double> expected = dx;
          for (double& value : expected) value += 0.5;
          check_close(out, expected, bound(taps * g.K), 0.0, "bf16 input gradient");
        } else {
          std::vector<float> out(dw.size(), 0.0f);
          conv2d_weight_gradient_cpu(out.data(), nullptr, dy.data(), x.data(), g, algorithm, scratch, Precision::Bf16);
          check_close(out, dw, bound(static_cast<double>(g.pixels())), 0.0, "bf16 weight gradient");
        }
      }
    }
  }
}

TEST_CASE("a layer with constant weights switched to bf16 drops its fp32-prepared filter") {
  const Conv2dGeometry g{2, 10, 9, 32, 32, 3};
  std::mt19937_64 generator(8);
  const Tensor input = random_tensor({g.N, g.H, g.W, g.C}, generator);
  Context context(Device::CPU);
  for (ConvAlgorithm algorithm : {ConvAlgorithm::Direct, ConvAlgorithm::Winograd4}) {
    if (!conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, g).empty()) continue;
    const std::string name = conv_algorithm_name(algorithm);
    CAPTURE(name);
    Tensor outputs[2] = {Tensor(Device::CPU, {g.N, g.H, g.W, g.K}), Tensor(Device::CPU, {g.N, g.H, g.W, g.K})};
    for (int constant = 0; constant < 2; ++constant) {
      Conv2d layer(g.C, g.K, 3, false);
      std::vector<ParameterSpec> specs = layer.parameter_specs();
      for (auto& spec : specs) spec.name = "conv." + spec.name;
      ParameterStore store(Device::CPU, specs, 2);
      layer.bind_parameters(store, "conv");
      layer.set_conv_algorithm(algorithm);
      layer.set_constant_weights(constant == 1);
      layer.forward(context, {&input}, outputs[constant], false);  // fp32 (prepares the filter when constant)
      layer.set_precision(Precision::Bf16);
      layer.forward(context, {&input}, outputs[constant], false);
    }
    CHECK(outputs[1].to_vector() == outputs[0].to_vector());
  }
}

TEST_CASE("a training step in bf16 follows fp32 within bf16's rounding, and the weights and Adam stay fp32") {
  const NetworkConfig config{64, 8, 1, 2, 0.0f};
  const int64_t batch = 2;
  std::mt19937_64 generator(5);
  const Tensor images = random_tensor({batch, 64, 64, 1}, generator, 0.0f, 1.0f);
  Tensor masks(Device::CPU, {batch, 64, 64, 1});
  for (int64_t i = 0; i < masks.count(); i += 5) masks.data()[i] = 1.0f;
  std::vector<double> losses[2];
  std::vector<float> weights[2];
  for (Precision precision : {Precision::Fp32, Precision::Bf16}) {
    Context context(Device::CPU);
    Network network(Device::CPU, config, 3);
    network.set_precision(precision);
    Adam adam;
    for (int step = 0; step < 3; ++step)
      losses[static_cast<int>(precision)].push_back(train_step(context, network, adam, images, masks, 1e-3f).loss.loss);
    weights[static_cast<int>(precision)] = network.parameters().entry("conv0.weight").value.to_vector();
  }
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    // 2^-8 relative per operand through ~10 layers: the loss moves by well under 2%.
    CHECK(losses[1][step] == doctest::Approx(losses[0][step]).epsilon(0.02));
  }
  CHECK(losses[1][0] != losses[0][0]);  // the bf16 path really rounds
  // Master weights are fp32: after Adam steps of ~1e-3 they are not bfloat16 values.
  int not_bf16 = 0;
  for (float value : weights[1]) not_bf16 += round_to_bf16(value) != value;
  CHECK(not_bf16 > static_cast<int>(weights[1].size()) / 2);
}

PNEUMO_GPU_TEST_CASE("Conv2d CUDA bf16 stays within bf16 rounding of the CPU's bf16 (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  const Conv2dGeometry shapes[] = {{2, 32, 24, 64, 64, 3}, {2, 16, 16, 64, 32, 1}, {2, 20, 20, 1, 32, 3}};
  for (const Conv2dGeometry& g : shapes) {
    const std::string name = describe_geometry(g);
    CAPTURE(name);
    std::mt19937_64 generator(9);
    const Tensor x = random_tensor({g.N, g.H, g.W, g.C}, generator);
    const Tensor dy = random_tensor({g.N, g.H, g.W, g.K}, generator);
    Tensor outputs[2], input_gradients[2], weight_gradients[2];
    for (Device device : {Device::CPU, Device::CUDA}) {
      const int side = device == Device::CUDA;
      Conv2d layer(g.C, g.K, g.kernel_size, true);
      std::vector<ParameterSpec> specs = layer.parameter_specs();
      for (auto& spec : specs) spec.name = "conv." + spec.name;
      ParameterStore store(device, specs, 4);
      layer.bind_parameters(store, "conv");
      layer.set_precision(Precision::Bf16);
      Context context(device);
      const Tensor input = x.to(device), output_gradient = dy.to(device);
      Tensor output(device, {g.N, g.H, g.W, g.K}), input_gradient(device, {g.N, g.H, g.W, g.C});
      layer.forward(context, {&input}, output, true);
      layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
      context.synchronize();
      outputs[side] = output.to(Device::CPU);
      input_gradients[side] = input_gradient.to(Device::CPU);
      weight_gradients[side] = store.entry("conv.weight").gradient.to(Device::CPU);
    }
    // cuDNN writes its results in bf16 (2^-9 relative rounding of each value) where the CPU keeps
    // fp32; both sum exact products of the same rounded operands in fp32, in different orders.
    const auto compare = [](const Tensor& gpu, const Tensor& cpu, const char* what) {
      const std::vector<float> reference = cpu.to_vector();
      check_close(gpu.to_vector(), reference, 1e-4 * std::max(1.0, max_abs(reference)), std::ldexp(1.0, -8), what);
    };
    compare(outputs[1], outputs[0], "output");
    compare(input_gradients[1], input_gradients[0], "input gradient");
    compare(weight_gradients[1], weight_gradients[0], "weight gradient");
  }
}
