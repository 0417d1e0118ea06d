// Conv2d: forward and backward against a naive direct convolution written here (double
// accumulation), gradients through the shared finite-difference checker, accumulate semantics,
// bad inputs, and CPU-vs-CUDA parity. Every numerical test runs once per CPU algorithm
// (reference, gemm, direct, winograd2, winograd4): each direction a shape allows runs with the
// algorithm, the others with reference, and what was not run is printed as SKIPPED.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>
#include <random>
#include <set>
#include <sstream>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/parameters.h"
#include "layers/conv2d.h"
#include "layers/conv2d_cudnn_algorithm.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using pneumo::testing::check_close;
using pneumo::testing::check_gradient;
using pneumo::testing::probe_objective;
using pneumo::testing::random_tensor;

using namespace pneumo;

namespace {

// A Conv2d bound to its own parameter store (names "conv.weight", "conv.bias"), with views of
// its parameters and their gradients.
struct BoundConv {
  Conv2d layer;
  ParameterStore store;
  Tensor weight, weight_gradient, bias, bias_gradient;  // (K,R,S,C), (K,R,S,C), (K), (K)
  BoundConv(Device device, const Conv2dGeometry& g, bool has_bias, uint64_t seed)
      : layer(g.C, g.K, g.kernel_size, has_bias), store(device, prefixed(layer.parameter_specs()), seed) {
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
  text << "N=" << g.N << " H=" << g.H << " W=" << g.W << " C=" << g.C << " K=" << g.K << " kernel=" << g.kernel_size
       << (bias ? " bias" : " no bias");
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
void naive_backward(const Conv2dGeometry& g, const std::vector<float>& input, const std::vector<float>& weight,
                    const std::vector<float>& dy, std::vector<double>& dx, std::vector<double>& dw,
                    std::vector<double>& db) {
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

// ---- the algorithms under test -----------------------------------------------------------------

const ConvDirection kDirections[] = {ConvDirection::Forward, ConvDirection::InputGradient,
                                     ConvDirection::WeightGradient};

// Sets each direction of `layer` to `algorithm` where it can run shape g, to reference
// elsewhere; returns why each direction that fell to reference could not run.
std::vector<std::string> use_algorithm(Conv2d& layer, ConvAlgorithm algorithm, const Conv2dGeometry& g) {
  std::vector<std::string> reasons;
  for (ConvDirection direction : kDirections) {
    const std::string reason = conv_algorithm_unsupported_reason(algorithm, direction, g);
    layer.set_conv_algorithm(direction, reason.empty() ? algorithm : ConvAlgorithm::Reference);
    if (!reason.empty()) reasons.push_back(reason);
  }
  return reasons;
}

// Collects what a test case could not run (algorithm and reason -> shapes) and prints it once,
// as the GPU tests print theirs.
struct SkipList {
  std::string test;
  std::map<std::string, std::set<std::string>> shapes;  // "algorithm: reason" -> shapes
  std::set<std::string> all_shapes;
  void add(ConvAlgorithm algorithm, const std::string& shape, const std::vector<std::string>& reasons) {
    all_shapes.insert(shape);
    for (std::string reason : reasons) {
      reason = reason.substr(0, reason.find(", got"));  // the rule, not this shape's numbers
      shapes[std::string(conv_algorithm_name(algorithm)) + ": " + reason].insert(shape);
    }
  }
  ~SkipList() {
    for (const auto& [line, skipped_shapes] : shapes) {
      std::printf("SKIPPED (%s, %zu of %zu shapes ran reference there) %s\n", test.c_str(), skipped_shapes.size(),
                  all_shapes.size(), line.c_str());
      MESSAGE("SKIPPED " << line);
    }
  }
};

// The Winograd tolerance (derivation in layers/conv2d.md, "Algorithms"): one output is
// A^T[(G g G^T) (.) (B^T d B)]A summed over `channels` input channels. With |matrices| taken
// element-wise, every channel's contribution is at most beta^2 max|d| max|g|, beta =
// max over output rows u of sum over a of |A^T[u,a]| * ||G[a,:]||_1 * ||B^T[a,:]||_1 (8 for
// F(2,3), 48 for F(4,3)). Each contribution carries the rounding of the two transforms (2 x 2
// alpha operations) and the channel sum adds sqrt(channels) more in the random-walk model of
// rounding (Higham & Mary 2019), the channels' bounds adding in root-sum-square:
//   |error| <= u * beta^2 * max|d| * max|g| * sqrt(channels) * (4 alpha + sqrt(channels)).
double winograd_beta(int m) {
  if (m == 2) {
    const double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
    const double G_norm[4] = {1, 1.5, 1.5, 1}, BT_norm[4] = {2, 2, 2, 2};
    double beta = 0;
    for (const auto& row : AT) {
      double sum = 0;
      for (int a = 0; a < 4; ++a) sum += std::fabs(row[a]) * G_norm[a] * BT_norm[a];
      beta = std::max(beta, sum);
    }
    return beta;
  }
  const double AT[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  const double G_norm[6] = {0.25, 0.5, 0.5, 7.0 / 24, 7.0 / 24, 1};  // rows of G, L1 norms
  const double BT_norm[6] = {10, 10, 10, 6, 6, 10};                  // rows of B^T, L1 norms
  double beta = 0;
  for (const auto& row : AT) {
    double sum = 0;
    for (int a = 0; a < 6; ++a) sum += std::fabs(row[a]) * G_norm[a] * BT_norm[a];
    beta = std::max(beta, sum);
  }
  return beta;
}

double max_abs(const std::vector<float>& values) {
  double largest = 0;
  for (float value : values) largest = std::max(largest, std::fabs(static_cast<double>(value)));
  return largest;
}

double winograd_tolerance(int m, int64_t channels, double max_input, double max_filter) {
  const double u = 0x1p-24, beta = winograd_beta(m), root = std::sqrt(double(channels));
  return u * beta * beta * max_input * max_filter * root * (4 * (m + 2) + root);
}

// The Winograd weight gradient is the transpose of the same bilinear map,
//   dg = G^T [ sum over tiles (A dY A^T) (.) (B^T d B) ] G,
// so the same argument bounds it with the roles swapped: every tile's contribution to one
// weight is at most beta_w^2 max|d| max|dy|, beta_w = max over filter taps r of
// sum over a of |G[a,r]| * ||A[a,:]||_1 * ||B^T[a,:]||_1 (6 for F(2,3), 160/3 = 53.3 for F(4,3)), and
// the sum runs over the tiles of the batch instead of the channels:
//   |error| <= u * beta_w^2 * max|d| * max|dy| * sqrt(tiles) * (4 alpha + sqrt(tiles)).
double winograd_weight_beta(int m) {
  const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const double A2_norm[4] = {1, 2, 2, 1}, BT2_norm[4] = {2, 2, 2, 2};
  const double G4[6][3] = {{0.25, 0, 0},
                           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                           {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                           {1.0 / 24, 1.0 / 12, 1.0 / 6},
                           {1.0 / 24, -1.0 / 12, 1.0 / 6},
                           {0, 0, 1}};
  const double A4_norm[6] = {1, 4, 4, 15, 15, 1}, BT4_norm[6] = {10, 10, 10, 6, 6, 10};
  double beta = 0;
  for (int r = 0; r < 3; ++r) {
    double sum = 0;
    for (int a = 0; a < m + 2; ++a)
      sum += m == 2 ? std::fabs(G2[a][r]) * A2_norm[a] * BT2_norm[a] : std::fabs(G4[a][r]) * A4_norm[a] * BT4_norm[a];
    beta = std::max(beta, sum);
  }
  return beta;
}

double winograd_weight_tolerance(int m, const Conv2dGeometry& g, double max_input, double max_output_gradient) {
  const double tiles = double(g.N) * ((g.H + m - 1) / m) * ((g.W + m - 1) / m);
  const double u = 0x1p-24, beta = winograd_weight_beta(m), root = std::sqrt(tiles);
  return u * beta * beta * max_input * max_output_gradient * root * (4 * (m + 2) + root);
}

// The weight gradient's absolute tolerance: `plain`, or the Winograd bound above.
double weight_tolerance_for(ConvAlgorithm algorithm, double plain, const Conv2dGeometry& g, double max_input,
                            double max_output_gradient) {
  if (algorithm == ConvAlgorithm::Winograd2)
    return std::max(plain, winograd_weight_tolerance(2, g, max_input, max_output_gradient));
  if (algorithm == ConvAlgorithm::Winograd4)
    return std::max(plain, winograd_weight_tolerance(4, g, max_input, max_output_gradient));
  return plain;
}

// Absolute tolerance of `algorithm` for one direction: the fixed fp32 tolerance `plain` of the
// summing algorithms, or the Winograd bound for `channels` summed channels.
double tolerance_for(ConvAlgorithm algorithm, double plain, int64_t channels, double max_input, double max_filter) {
  if (algorithm == ConvAlgorithm::Winograd2)
    return std::max(plain, winograd_tolerance(2, channels, max_input, max_filter));
  if (algorithm == ConvAlgorithm::Winograd4)
    return std::max(plain, winograd_tolerance(4, channels, max_input, max_filter));
  return plain;
}

const std::vector<std::pair<Conv2dGeometry, bool>> kShapes = {
    {{1, 5, 5, 3, 4, 3}, true},     // 3x3, square, with bias
    {{2, 7, 4, 5, 3, 3}, false},    // 3x3, H != W, C > K, batch > 1
    {{3, 4, 9, 8, 6, 1}, true},     // 1x1, H != W, with bias
    {{2, 6, 5, 16, 1, 1}, false},   // 1x1 to one channel (the network's output head)
    {{2, 3, 11, 1, 12, 3}, false},  // one input channel (the network's first conv)
    {{1, 1, 1, 2, 3, 3}, true},     // a single pixel: every neighbour is padding
    {{2, 2, 3, 4, 5, 3}, true},     // smaller than the kernel in H
};

}  // namespace

TEST_CASE("Conv2d forward matches a naive direct convolution, every algorithm") {
  SkipList skipped{"forward", {}, {}};
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    std::mt19937_64 generator(11);
    for (const auto& [g, has_bias] : kShapes) {
      const std::string shape_name = describe(g, has_bias);  // (CAPTURE keeps a reference)
      CAPTURE(shape_name);
      BoundConv conv(Device::CPU, g, has_bias, 5);
      skipped.add(algorithm, describe(g, has_bias), use_algorithm(conv.layer, algorithm, g));
      if (has_bias) conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
      Tensor input = random_tensor(input_shape(g), generator);
      Tensor output = random_tensor(output_shape(g), generator);  // garbage: forward overwrites
      Context context(Device::CPU);
      conv.layer.forward(context, {&input}, output, true);
      const std::vector<float> bias = has_bias ? conv.bias.to_vector() : std::vector<float>{};
      const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
      check_close(output.to_vector(), naive_forward(g, x, w, bias),
                  tolerance_for(algorithm, 1e-5, g.C, max_abs(x), max_abs(w)), 1e-5, "output");
      CHECK(conv.layer.forward_flops({input_shape(g)}) ==
            2 * g.N * g.H * g.W * g.K * g.kernel_size * g.kernel_size * g.C + (has_bias ? g.N * g.H * g.W * g.K : 0));
    }
  }
}

TEST_CASE("Conv2d backward passes the finite-difference gradient check, every algorithm") {
  SkipList skipped{"gradient check", {}, {}};
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    std::mt19937_64 generator(12);
    for (const auto& [g, has_bias] : kShapes) {
      const std::string shape_name = describe(g, has_bias);  // (CAPTURE keeps a reference)
      CAPTURE(shape_name);
      BoundConv conv(Device::CPU, g, has_bias, 6);
      skipped.add(algorithm, describe(g, has_bias), use_algorithm(conv.layer, algorithm, g));
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
}

TEST_CASE("Conv2d on a batch larger than one im2col chunk matches the naive convolution") {
  // 3 images of 50x64x64: the 3x3 columns take several chunks and a chunk spans two images;
  // Winograd's tiles take several chunks too.
  const Conv2dGeometry g{3, 50, 64, 64, 64, 3};
  std::mt19937_64 generator(13);
  BoundConv conv(Device::CPU, g, true, 7);
  conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
  Tensor input = random_tensor(input_shape(g), generator);
  Tensor output_gradient = random_tensor(output_shape(g), generator);
  const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
  const std::vector<float> dy = output_gradient.to_vector();
  const std::vector<double> y = naive_forward(g, x, w, conv.bias.to_vector());
  std::vector<double> dx, dw, db;
  naive_backward(g, x, w, dy, dx, dw, db);
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    if (algorithm == ConvAlgorithm::Reference) continue;  // the naive loops above are the same
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    use_algorithm(conv.layer, algorithm, g);
    conv.weight_gradient.set_values(std::vector<float>(dw.size(), 0.0f));
    conv.bias_gradient.set_values(std::vector<float>(db.size(), 0.0f));
    Tensor output(Device::CPU, output_shape(g));
    Tensor input_gradient(Device::CPU, input_shape(g));
    Context context(Device::CPU);
    conv.layer.forward(context, {&input}, output, true);
    conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
    check_close(output.to_vector(), y, tolerance_for(algorithm, 1e-4, g.C, max_abs(x), max_abs(w)), 1e-5, "output");
    check_close(input_gradient.to_vector(), dx, tolerance_for(algorithm, 1e-4, g.K, max_abs(dy), max_abs(w)), 1e-5,
                "input gradient");
    check_close(conv.weight_gradient.to_vector(), dw, weight_tolerance_for(algorithm, 1e-3, g, max_abs(x), max_abs(dy)),
                1e-5, "weight gradient");
    check_close(conv.bias_gradient.to_vector(), db, 1e-3, 1e-5, "bias gradient");
  }
}

TEST_CASE("Conv2d 32k-channel and one-channel shapes match naive and accumulate, every algorithm") {
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
  SkipList skipped{"32k channels", {}, {}};
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    std::mt19937_64 generator(15);
    for (const auto& [g, has_bias] : shapes) {
      const std::string shape_name = describe(g, has_bias);  // (CAPTURE keeps a reference)
      CAPTURE(shape_name);
      BoundConv conv(Device::CPU, g, has_bias, 9);
      skipped.add(algorithm, describe(g, has_bias), use_algorithm(conv.layer, algorithm, g));
      if (has_bias) conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
      Tensor input = random_tensor(input_shape(g), generator);
      Tensor output_gradient = random_tensor(output_shape(g), generator);
      Tensor output = random_tensor(output_shape(g), generator);  // garbage: forward overwrites
      Context context(Device::CPU);
      conv.layer.forward(context, {&input}, output, true);
      const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
      const std::vector<float> bias = has_bias ? conv.bias.to_vector() : std::vector<float>{};
      check_close(output.to_vector(), naive_forward(g, x, w, bias),
                  tolerance_for(algorithm, 1e-4, g.C, max_abs(x), max_abs(w)), 1e-5, "output");
      // Gradients start from random values: backward must add to them.
      Tensor input_gradient = random_tensor(input_shape(g), generator);
      conv.weight_gradient.set_values(random_tensor(conv.weight.shape(), generator).to_vector());
      if (has_bias) conv.bias_gradient.set_values(random_tensor({g.K}, generator).to_vector());
      const std::vector<float> start_input = input_gradient.to_vector();
      const std::vector<float> start_weight = conv.weight_gradient.to_vector();
      const std::vector<float> start_bias = has_bias ? conv.bias_gradient.to_vector() : std::vector<float>{};
      conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
      std::vector<double> dx, dw, db;
      naive_backward(g, x, w, output_gradient.to_vector(), dx, dw, db);
      for (size_t i = 0; i < dx.size(); ++i) dx[i] += start_input[i];
      for (size_t i = 0; i < dw.size(); ++i) dw[i] += start_weight[i];
      check_close(input_gradient.to_vector(), dx,
                  tolerance_for(algorithm, 1e-4, g.K, max_abs(output_gradient.to_vector()), max_abs(w)), 1e-5,
                  "input gradient");
      check_close(conv.weight_gradient.to_vector(), dw,
                  weight_tolerance_for(algorithm, 1e-3, g, max_abs(x), max_abs(output_gradient.to_vector())), 1e-5,
                  "weight gradient");
      if (has_bias) {
        for (size_t i = 0; i < db.size(); ++i) db[i] += start_bias[i];
        check_close(conv.bias_gradient.to_vector(), db, 1e-3, 1e-5, "bias gradient");
      }
    }
  }
}

TEST_CASE("Conv2d with constant weights prepares its filter once, the same output bit for bit, every algorithm") {
  SkipList skipped{"constant weights", {}, {}};
  std::vector<std::pair<Conv2dGeometry, bool>> shapes = kShapes;
  shapes.push_back({{2, 6, 10, 32, 48, 3}, true});  // vector-wide channels: the SIMD panels
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    std::mt19937_64 generator(21);
    for (const auto& [g, has_bias] : shapes) {
      const std::string shape_name = describe(g, has_bias);  // (CAPTURE keeps a reference)
      CAPTURE(shape_name);
      BoundConv conv(Device::CPU, g, has_bias, 9);
      skipped.add(algorithm, describe(g, has_bias), use_algorithm(conv.layer, algorithm, g));
      const ConvAlgorithm ran = conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, g).empty()
                                    ? algorithm
                                    : ConvAlgorithm::Reference;
      if (has_bias) conv.bias.set_values(random_tensor({g.K}, generator).to_vector());
      Tensor input = random_tensor(input_shape(g), generator);
      Tensor output(Device::CPU, output_shape(g));
      Context context(Device::CPU);
      conv.layer.forward(context, {&input}, output, false);
      const std::vector<float> plain = output.to_vector();

      conv.layer.set_constant_weights(true);
      CHECK(conv.layer.prepared_filter_floats() == 0);  // prepared by the first forward
      for (int call = 0; call < 2; ++call) {
        output.set_values(std::vector<float>(plain.size(), 7.0f));
        conv.layer.forward(context, {&input}, output, false);
        CHECK(output.to_vector() == plain);  // the same kernels on the same filter: bit for bit
        CHECK(conv.layer.prepared_filter_floats() == conv2d_prepared_filter_floats(g, ran));
      }
      // The kept filter really is what runs: weights changed behind the layer's back (what
      // constant weights forbid) do not show where the algorithm prepares one...
      const std::vector<float> old_weight = conv.weight.to_vector();
      std::vector<float> new_weight = old_weight;
      for (float& value : new_weight) value = -0.5f * value + 0.01f;
      conv.weight.set_values(new_weight);
      conv.layer.forward(context, {&input}, output, false);
      if (conv2d_prepared_filter_floats(g, ran) > 0)
        CHECK(output.to_vector() == plain);
      else
        CHECK(output.to_vector() != plain);
      // ...and turning constant weights off drops it: the new weights run.
      conv.layer.set_constant_weights(false);
      CHECK(conv.layer.prepared_filter_floats() == 0);
      conv.layer.forward(context, {&input}, output, false);
      const std::vector<float> bias = has_bias ? conv.bias.to_vector() : std::vector<float>{};
      const std::vector<float> x = input.to_vector();
      check_close(output.to_vector(), naive_forward(g, x, new_weight, bias),
                  tolerance_for(ran, 1e-5, g.C, max_abs(x), max_abs(new_weight)), 1e-5,
                  "output after constant weights are turned off");
    }
  }
  // Filters are prepared by the algorithms that prepare one: Winograd's U ((m+2)^2 per
  // (input, output) channel pair) and the direct kernels' packing; none for reference and gemm.
  const Conv2dGeometry g{2, 8, 8, 32, 48, 3};
  CHECK(conv2d_prepared_filter_floats(g, ConvAlgorithm::Reference) == 0);
  CHECK(conv2d_prepared_filter_floats(g, ConvAlgorithm::Gemm) == 0);
  CHECK(conv2d_prepared_filter_floats(g, ConvAlgorithm::Winograd2) == 16 * 32 * 48);
  CHECK(conv2d_prepared_filter_floats(g, ConvAlgorithm::Winograd4) == 36 * 32 * 48);
}

TEST_CASE("Conv2d backward accumulates into every gradient, every algorithm") {
  SkipList skipped{"accumulate", {}, {}};
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    const std::string algorithm_name = conv_algorithm_name(algorithm);
    CAPTURE(algorithm_name);
    std::mt19937_64 generator(14);
    for (const auto& [g, has_bias] : kShapes) {
      const std::string shape_name = describe(g, has_bias);  // (CAPTURE keeps a reference)
      CAPTURE(shape_name);
      BoundConv conv(Device::CPU, g, has_bias, 8);
      skipped.add(algorithm, describe(g, has_bias), use_algorithm(conv.layer, algorithm, g));
      Tensor input = random_tensor(input_shape(g), generator);
      Tensor output_gradient = random_tensor(output_shape(g), generator);
      Tensor output(Device::CPU, output_shape(g));
      Tensor input_gradient(Device::CPU, input_shape(g));
      Context context(Device::CPU);
      conv.layer.forward(context, {&input}, output, true);
      conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
      const std::vector<float> once_input = input_gradient.to_vector();
      const std::vector<float> once_weight = conv.weight_gradient.to_vector();
      const std::vector<float> once_bias = has_bias ? conv.bias_gradient.to_vector() : std::vector<float>{};
      conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
      auto doubled = [](std::vector<float> values) {
        for (float& value : values) value *= 2.0f;
        return values;
      };
      check_close(input_gradient.to_vector(), doubled(once_input), 1e-6, 1e-5, "input gradient x2");
      check_close(conv.weight_gradient.to_vector(), doubled(once_weight), 1e-6, 1e-5, "weight gradient x2");
      if (has_bias) check_close(conv.bias_gradient.to_vector(), doubled(once_bias), 1e-6, 1e-5, "bias gradient x2");
      // A null input gradient skips d input but still accumulates the parameter gradients.
      conv.layer.backward(context, {&input}, output, output_gradient, {nullptr});
      std::vector<float> tripled = once_weight;
      for (float& value : tripled) value *= 3.0f;
      check_close(conv.weight_gradient.to_vector(), tripled, 1e-6, 1e-5, "weight gradient x3");
    }
  }
}

TEST_CASE("Winograd's error constants are the page's, computed by layers/check_conv2d.py from the transforms") {
  // beta: F(2,3) 8, F(4,3) 48; beta_w: F(2,3) 6, F(4,3) 160/3 (layers/conv2d.md quotes the script).
  CHECK(winograd_beta(2) == doctest::Approx(8).epsilon(1e-12));
  CHECK(winograd_beta(4) == doctest::Approx(48).epsilon(1e-12));
  CHECK(winograd_weight_beta(2) == doctest::Approx(6).epsilon(1e-12));
  CHECK(winograd_weight_beta(4) == doctest::Approx(160.0 / 3).epsilon(1e-12));
}

TEST_CASE("Winograd stays within its derived tolerance on the notebook's channel counts") {
  // The residual blocks' 3x3 convolutions: 64 @128, 128 @64, 256 @32, 512 @16 in the network;
  // here on small images (9x9 and 7x7: partial tiles at the edges for both tile sizes) against
  // the reference (double sums). Input gradient too: the same transform on d output.
  const std::vector<Conv2dGeometry> shapes = {
      {2, 9, 9, 64, 64, 3}, {1, 9, 9, 128, 128, 3}, {1, 7, 7, 256, 256, 3}, {1, 7, 7, 512, 512, 3}};
  std::mt19937_64 generator(16);
  for (const Conv2dGeometry& g : shapes) {
    CAPTURE(describe(g, false));
    BoundConv conv(Device::CPU, g, false, 11);  // Glorot weights, as in training
    const Tensor input = random_tensor(input_shape(g), generator);
    const Tensor output_gradient = random_tensor(output_shape(g), generator);
    const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
    const std::vector<float> dy = output_gradient.to_vector();
    std::vector<float> scratch;
    std::vector<float> expected_y(static_cast<size_t>(g.N * g.H * g.W * g.K));
    std::vector<float> expected_dx(x.size(), 0.0f);
    conv2d_forward_cpu(expected_y.data(), x.data(), w.data(), nullptr, g, ConvAlgorithm::Reference, scratch);
    conv2d_input_gradient_cpu(expected_dx.data(), dy.data(), w.data(), g, ConvAlgorithm::Reference, scratch);
    std::vector<float> expected_dw(w.size(), 0.0f);
    conv2d_weight_gradient_cpu(expected_dw.data(), nullptr, dy.data(), x.data(), g, ConvAlgorithm::Reference, scratch);
    for (ConvAlgorithm algorithm : {ConvAlgorithm::Winograd2, ConvAlgorithm::Winograd4}) {
      const std::string algorithm_name = conv_algorithm_name(algorithm);
      CAPTURE(algorithm_name);
      const int m = algorithm == ConvAlgorithm::Winograd2 ? 2 : 4;
      std::vector<float> y(expected_y.size()), dx(x.size(), 0.0f);
      conv2d_forward_cpu(y.data(), x.data(), w.data(), nullptr, g, algorithm, scratch);
      conv2d_input_gradient_cpu(dx.data(), dy.data(), w.data(), g, algorithm, scratch);
      const double forward_tolerance = winograd_tolerance(m, g.C, max_abs(x), max_abs(w));
      const double backward_tolerance = winograd_tolerance(m, g.K, max_abs(dy), max_abs(w));
      double forward_error = 0, backward_error = 0;
      for (size_t i = 0; i < y.size(); ++i)
        forward_error = std::max(forward_error, std::fabs(double(y[i]) - expected_y[i]));
      for (size_t i = 0; i < dx.size(); ++i)
        backward_error = std::max(backward_error, std::fabs(double(dx[i]) - expected_dx[i]));
      MESSAGE(std::string(conv_algorithm_name(algorithm))
              << " " << describe(g, false) << ": max error " << forward_error << " (bound " << forward_tolerance
              << "), input gradient " << backward_error << " (bound " << backward_tolerance << "), largest output "
              << max_abs(expected_y));
      CHECK(forward_error <= forward_tolerance);
      CHECK(backward_error <= backward_tolerance);
      // The bound must be tight enough to catch a wrong transform: well below the outputs.
      CHECK(forward_tolerance < 0.02 * max_abs(expected_y));
      std::vector<float> dw(w.size(), 0.0f);
      conv2d_weight_gradient_cpu(dw.data(), nullptr, dy.data(), x.data(), g, algorithm, scratch);
      const double weight_tolerance = winograd_weight_tolerance(m, g, max_abs(x), max_abs(dy));
      double weight_error = 0;
      for (size_t i = 0; i < dw.size(); ++i)
        weight_error = std::max(weight_error, std::fabs(double(dw[i]) - expected_dw[i]));
      MESSAGE(std::string(conv_algorithm_name(algorithm))
              << " weight gradient: max error " << weight_error << " (bound " << weight_tolerance << "), largest "
              << max_abs(expected_dw));
      CHECK(weight_error <= weight_tolerance);
      CHECK(weight_tolerance < 0.05 * max_abs(expected_dw));
    }
  }
}

TEST_CASE("Conv2d algorithms refuse what they cannot run, by name") {
  const Conv2dGeometry one_by_one{1, 4, 4, 32, 32, 1}, odd{1, 4, 4, 3, 5, 3};
  std::vector<float> scratch, buffer(4096, 0.0f);
  CHECK_THROWS_WITH_AS(conv2d_forward_cpu(buffer.data(), buffer.data(), buffer.data(), nullptr, one_by_one,
                                          ConvAlgorithm::Winograd4, scratch),
                       "Conv2d forward of 1x4x4x32 -> 32, 1x1: algorithm 'winograd4' cannot run "
                       "it: winograd4 runs 3x3 convolutions only, this one is 1x1",
                       Error);
  CHECK_THROWS_AS(conv2d_weight_gradient_cpu(buffer.data(), nullptr, buffer.data(), buffer.data(), one_by_one,
                                             ConvAlgorithm::Winograd2, scratch),
                  Error);
  CHECK_THROWS_AS(
      conv2d_forward_cpu(buffer.data(), buffer.data(), buffer.data(), nullptr, odd, ConvAlgorithm::Direct, scratch),
      Error);
  CHECK_THROWS_AS(
      conv2d_forward_cpu(buffer.data(), buffer.data(), buffer.data(), nullptr, odd, ConvAlgorithm::Auto, scratch),
      Error);
  CHECK(parse_conv_algorithms("winograd4,direct") ==
        std::vector<ConvAlgorithm>{ConvAlgorithm::Winograd4, ConvAlgorithm::Direct});
  CHECK_THROWS_WITH_AS(parse_conv_algorithm("fft"),
                       "unknown convolution algorithm 'fft': expected one of fast, auto, reference, "
                       "gemm, direct, winograd2, winograd4",
                       Error);
  CHECK_THROWS_AS(parse_conv_algorithms("gemm,"), Error);
  // A preference list takes the first that runs; a strict single name does not fall back.
  CHECK(first_runnable_conv_algorithm({ConvAlgorithm::Winograd4, ConvAlgorithm::Gemm}, ConvDirection::Forward,
                                      one_by_one) == ConvAlgorithm::Gemm);
  CHECK_THROWS_AS(first_runnable_conv_algorithm({ConvAlgorithm::Winograd4}, ConvDirection::Forward, one_by_one), Error);
  // A layer forced to an algorithm that cannot run its shape fails at run time, by name.
  BoundConv conv(Device::CPU, one_by_one, false, 3);
  conv.layer.set_conv_algorithm(ConvAlgorithm::Winograd2);
  Tensor input(Device::CPU, input_shape(one_by_one)), output(Device::CPU, output_shape(one_by_one));
  Context context(Device::CPU);
  CHECK_THROWS_AS(conv.layer.forward(context, {&input}, output, true), Error);
}

TEST_CASE("Conv2d auto picks a runnable algorithm per direction and remembers it") {
  const Conv2dGeometry g{2, 12, 12, 32, 32, 3};
  std::mt19937_64 generator(17);
  BoundConv conv(Device::CPU, g, true, 4);
  conv.layer.set_conv_algorithm(ConvAlgorithm::Auto);
  Tensor input = random_tensor(input_shape(g), generator);
  Tensor output_gradient = random_tensor(output_shape(g), generator);
  Tensor output(Device::CPU, output_shape(g)), input_gradient(Device::CPU, input_shape(g));
  Context context(Device::CPU);
  conv.layer.forward(context, {&input}, output, true);
  conv.layer.backward(context, {&input}, output, output_gradient, {&input_gradient});
  const std::vector<float> x = input.to_vector(), w = conv.weight.to_vector();
  check_close(output.to_vector(), naive_forward(g, x, w, conv.bias.to_vector()),
              winograd_tolerance(4, g.C, max_abs(x), max_abs(w)), 1e-5, "output");
  std::vector<double> dx, dw, db;
  naive_backward(g, x, w, output_gradient.to_vector(), dx, dw, db);
  // Auto's timing runs went to throw-away buffers: the gradients were added exactly once.
  check_close(input_gradient.to_vector(), dx,
              winograd_tolerance(4, g.K, max_abs(output_gradient.to_vector()), max_abs(w)), 1e-5, "input gradient");
  check_close(conv.weight_gradient.to_vector(), dw,
              winograd_weight_tolerance(4, g, max_abs(x), max_abs(output_gradient.to_vector())), 1e-5,
              "weight gradient");
  const std::vector<ConvTuningRecord> records = conv.layer.selector().records();  // the layer's own
  CHECK(records.size() == 3);
  for (const ConvTuningRecord& record : records) {
    CHECK(record.algorithm != ConvAlgorithm::Reference);
    CHECK(conv_algorithm_unsupported_reason(record.algorithm, record.direction, g).empty());
    CHECK(record.source == "timed");
  }
}

TEST_CASE("Conv2d rejects bad configurations and inputs") {
  CHECK_THROWS_WITH_AS(Conv2d(3, 4, 5, false), "Conv2d: kernel_size must be 1 or 3, got 5", Error);
  CHECK_THROWS_AS(Conv2d(3, 4, 2, true), Error);
  CHECK_THROWS_AS(Conv2d(0, 4, 3, true), Error);
  const Conv2dGeometry g{2, 6, 6, 3, 4, 3};
  BoundConv conv(Device::CPU, g, true, 9);
  CHECK(conv.layer.output_shape({{2, 6, 6, 3}}) == Shape{2, 6, 6, 4});
  CHECK_THROWS_WITH_AS(conv.layer.output_shape({{2, 6, 6, 5}}), "Conv2d: input (2,6,6,5) has 5 channels, expected 3",
                       Error);
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
void check_cuda_matches_cpu(const Conv2dGeometry& g, bool has_bias, bool allow_tf32, double tolerance) {
  const std::string shape_name = describe(g, has_bias);  // (CAPTURE keeps a reference)
  CAPTURE(shape_name);
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
  const Tensor start_weight_gradient = random_tensor({g.K, g.kernel_size, g.kernel_size, g.C}, generator);
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
  gpu.layer.backward(gpu_context, {&gpu_input}, gpu_output, gpu_output_gradient, {&gpu_input_gradient});
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
      candidate(1, "IMPLICIT_PRECOMP_GEMM", false),                          // heuristic: not supported
      candidate(6, "WINOGRAD"),                                              // workspace query fails
      candidate(7, "WINOGRAD_NONFUSED", true, ConvAlgorithmMath::TensorOp),  // TF32 while off
      candidate(4, "FFT"),                                                   // workspace over the limit
      candidate(2, "GEMM", true, ConvAlgorithmMath::TensorOpConversion),     // fp16: never
      candidate(0, "IMPLICIT_GEMM"),                                         // usable
      candidate(3, "DIRECT"),                                                // never reached
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

TEST_CASE("cuDNN algorithm choice: deterministic mode passes over non-deterministic candidates; a find's times") {
  std::vector<ConvAlgorithmCandidate> candidates = {candidate(1, "ALGO_1"), candidate(0, "ALGO_0")};
  candidates[0].deterministic = false;  // e.g. backward-filter ALGO_0/ALGO_3 (atomics)
  candidates[0].milliseconds = 0.25;    // as ranked by a find: fastest first
  candidates[1].milliseconds = 0.5;
  FakeWorkspaceQuery fake;
  const ConvAlgorithmChoice fastest = choose_conv_algorithm(candidates, false, 1000, fake.callback());
  CHECK(fastest.index == 0);
  CHECK(fastest.tried.back() == "ALGO_1 (1): chosen, workspace 0 bytes, timed 0.250 ms");
  const ConvAlgorithmChoice deterministic = choose_conv_algorithm(candidates, false, 1000, fake.callback(), true);
  CHECK(deterministic.index == 1);
  REQUIRE(deterministic.tried.size() == 2);
  CHECK(deterministic.tried[0] == "ALGO_1 (1): skipped, not deterministic");
  CHECK(parse_cudnn_search("find") == CudnnSearch::Find);
  CHECK(std::string(cudnn_search_name(CudnnSearch::Deterministic)) == "deterministic");
  CHECK_THROWS_WITH_AS(parse_cudnn_search("fastest"), doctest::Contains("expected heuristic, find or deterministic"),
                       Error);
}

TEST_CASE("cuDNN algorithm choice: when nothing is usable the error names layer, shape and tries") {
  const std::vector<ConvAlgorithmCandidate> candidates = {candidate(1, "ALGO_1", false), candidate(0, "ALGO_0")};
  FakeWorkspaceQuery fake;
  fake.failures[0] = "CUDNN_STATUS_BAD_PARAM";
  const ConvAlgorithmChoice choice = choose_conv_algorithm(candidates, false, 1 << 30, fake.callback());
  CHECK(choice.index == -1);
  CHECK(no_conv_algorithm_message("block1_1.conv1", "backward-data", "input (2,3,3,1) K=32 kernel=3", choice) ==
        "cuDNN has no usable backward-data convolution algorithm for Conv2d block1_1.conv1 "
        "input (2,3,3,1) K=32 kernel=3; tried ALGO_1 (1): heuristic status "
        "CUDNN_STATUS_NOT_SUPPORTED; ALGO_0 (0): workspace query failed with CUDNN_STATUS_BAD_PARAM");
  const ConvAlgorithmChoice none = choose_conv_algorithm({}, false, 1 << 30, fake.callback());
  CHECK(none.index == -1);
  CHECK(no_conv_algorithm_message("", "forward", "input (1,1,1,1) K=1 kernel=1", none) ==
        "cuDNN has no usable forward convolution algorithm for Conv2d (unnamed) input (1,1,1,1) "
        "K=1 kernel=1; tried nothing (the heuristic returned no candidates)");
}
