// The notebook's iou_bce_loss and metrics (layers/loss.h) against PyTorch (fixture from
// tests/make_loss_reference.py), a naive double-precision loop written here, hand-worked cases,
// the shared gradient checker, and the CUDA back end.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/context.h"
#include "engine/cpu_threads.h"
#include "layers/loss.h"
#include "tests/support/fixtures.h"
#include "tests/support/gradient_check.h"

using namespace pneumo;

namespace {

struct ReferenceCase {
  std::string name;
  Shape shape;
  std::map<std::string, std::vector<double>> fields;  // predictions, targets, gradient, loss, ...
};

std::vector<ReferenceCase> read_reference_cases() {
  const std::string path = testing::fixture_path("loss_reference.txt");
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "missing fixture " << path);
  std::vector<ReferenceCase> cases;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "case") {
      cases.emplace_back();
      words >> cases.back().name;
      continue;
    }
    REQUIRE(!cases.empty());
    std::vector<double> values;
    double value;
    while (words >> value) values.push_back(value);
    if (key == "shape")
      for (double dimension : values) cases.back().shape.push_back(static_cast<int64_t>(dimension));
    else
      cases.back().fields[key] = values;
  }
  return cases;
}

Tensor tensor_from(const Shape& shape, const std::vector<double>& values) {
  Tensor tensor(Device::CPU, shape);
  REQUIRE(static_cast<int64_t>(values.size()) == tensor.count());
  for (int64_t i = 0; i < tensor.count(); ++i) tensor.data()[i] = static_cast<float>(values[i]);
  return tensor;
}

// Naive reference, written independently of kernels/loss_math.h: straight loops in double.
struct NaiveLoss {
  double loss, bce, iou_loss;
  std::vector<double> gradient;
};

NaiveLoss naive_iou_bce(const std::vector<float>& p, const std::vector<float>& y) {
  const float low = 1e-7f, high = 1.0f - 1e-7f;
  const double count = static_cast<double>(p.size());
  double bce = 0, intersection = 0, sum_y = 0, sum_p = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double clipped = std::min(std::max(p[i], low), high);
    bce += -(y[i] * std::log(clipped) + (1.0 - y[i]) * std::log(1.0 - clipped));
    intersection += static_cast<double>(y[i]) * p[i];
    sum_y += y[i];
    sum_p += p[i];
  }
  NaiveLoss result;
  result.bce = bce / count;
  const double denominator = sum_y + sum_p - intersection + 1.0;
  result.iou_loss = 1.0 - (intersection + 1.0) / denominator;
  result.loss = 0.5 * result.bce + 0.5 * result.iou_loss;
  for (size_t i = 0; i < p.size(); ++i) {
    const bool inside = p[i] >= low && p[i] <= high;
    const double bce_gradient = inside ? (p[i] - y[i]) / (static_cast<double>(p[i]) * (1.0 - p[i])) : 0.0;
    // d/dp of -(I+1)/D: -(y D - (I+1)(1-y)) / D^2
    const double iou_gradient =
        -(y[i] * denominator - (intersection + 1.0) * (1.0 - y[i])) / (denominator * denominator);
    result.gradient.push_back(0.5 * bce_gradient / count + 0.5 * iou_gradient);
  }
  return result;
}

void fill_batch(Tensor& predictions, Tensor& targets, std::mt19937_64& generator) {
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int64_t i = 0; i < predictions.count(); ++i) {
    predictions.data()[i] = uniform(generator);
    targets.data()[i] = uniform(generator) < 0.3f ? 1.0f : 0.0f;
  }
  predictions.data()[0] = 0.0f;
  predictions.data()[1] = 1.0f;
  predictions.data()[2] = 0.5f;
}

}  // namespace

TEST_CASE("iou_bce_loss and metrics match the PyTorch reference fixture") {
  Context context(Device::CPU);
  const auto cases = read_reference_cases();
  REQUIRE(cases.size() == 2);
  for (const ReferenceCase& reference : cases) {
    INFO("case " << reference.name);
    const auto& fields = reference.fields;
    Tensor predictions = tensor_from(reference.shape, fields.at("predictions"));
    Tensor targets = tensor_from(reference.shape, fields.at("targets"));
    Tensor gradient(Device::CPU, reference.shape);
    gradient.set_values(std::vector<float>(static_cast<size_t>(gradient.count()), 123.0f));  // overwritten
    const LossValues values = iou_bce_loss(context, predictions, targets, &gradient);
    CHECK(values.loss == doctest::Approx(fields.at("loss")[0]).epsilon(1e-12));
    CHECK(values.bce == doctest::Approx(fields.at("bce")[0]).epsilon(1e-12));
    CHECK(values.iou_loss == doctest::Approx(fields.at("iou_loss")[0]).epsilon(1e-12));
    const auto& expected_gradient = fields.at("gradient");
    for (int64_t i = 0; i < gradient.count(); ++i) {
      INFO("pixel " << i << " p=" << predictions.data()[i] << " y=" << targets.data()[i]);
      CHECK(gradient.data()[i] == doctest::Approx(expected_gradient[static_cast<size_t>(i)]).epsilon(1e-6));
    }
    const SegmentationMetrics metrics = segmentation_metrics(context, predictions, targets);
    CHECK(metrics.accuracy == doctest::Approx(fields.at("accuracy")[0]).epsilon(1e-15));
    CHECK(metrics.mean_iou == doctest::Approx(fields.at("mean_iou")[0]).epsilon(1e-15));
  }
}

TEST_CASE("iou_bce_loss matches a naive double-precision loop on a larger batch") {
  Context context(Device::CPU);
  std::mt19937_64 generator(11);
  Tensor predictions(Device::CPU, {3, 16, 16, 1}), targets(Device::CPU, {3, 16, 16, 1});
  fill_batch(predictions, targets, generator);
  Tensor gradient(Device::CPU, predictions.shape());
  const LossValues values = iou_bce_loss(context, predictions, targets, &gradient);
  const NaiveLoss naive = naive_iou_bce(predictions.to_vector(), targets.to_vector());
  CHECK(values.loss == doctest::Approx(naive.loss).epsilon(1e-12));
  CHECK(values.bce == doctest::Approx(naive.bce).epsilon(1e-12));
  CHECK(values.iou_loss == doctest::Approx(naive.iou_loss).epsilon(1e-12));
  for (int64_t i = 0; i < gradient.count(); ++i)
    CHECK(gradient.data()[i] == doctest::Approx(naive.gradient[static_cast<size_t>(i)]).epsilon(1e-6));
  // Without a gradient tensor only the value is computed.
  const LossValues value_only = iou_bce_loss(context, predictions, targets, nullptr);
  CHECK(value_only.loss == values.loss);
}

TEST_CASE("iou_bce_loss gradient passes the shared finite-difference checker") {
  Context context(Device::CPU);
  std::mt19937_64 generator(5);
  const Shape shape = {2, 4, 4, 1};
  Tensor predictions = testing::random_tensor(shape, generator, 0.1f, 0.9f);
  Tensor targets(Device::CPU, shape);
  for (int64_t i = 0; i < targets.count(); ++i) targets.data()[i] = (i * 7) % 3 == 0 ? 1.0f : 0.0f;
  Tensor gradient(Device::CPU, shape);
  iou_bce_loss(context, predictions, targets, &gradient);
  testing::GradientCheckOptions options;
  options.step = 1e-3;
  options.absolute_tolerance = 2e-5;
  options.relative_tolerance = 1e-3;
  const auto result = testing::check_gradient([&] { return iou_bce_loss(context, predictions, targets, nullptr).loss; },
                                              predictions, gradient, "iou_bce_loss predictions", options);
  CHECK_MESSAGE(result.ok, result.message);
  CHECK(result.checked == 32);
}

TEST_CASE("binary cross-entropy clips p=0 and p=1 to Keras's epsilon, with zero BCE gradient") {
  Context context(Device::CPU);
  Tensor prediction(Device::CPU, {1, 1, 1, 1}), target(Device::CPU, {1, 1, 1, 1});
  Tensor gradient(Device::CPU, {1, 1, 1, 1});
  // p = 0, y = 1: BCE = -log(1e-7f); IoU score = (0 + 1) / (1 + 0 - 0 + 1) = 1/2.
  prediction.data()[0] = 0.0f;
  target.data()[0] = 1.0f;
  LossValues values = iou_bce_loss(context, prediction, target, &gradient);
  CHECK(values.bce == doctest::Approx(-std::log(static_cast<double>(1e-7f))).epsilon(1e-14));
  CHECK(values.bce == doctest::Approx(16.1180956).epsilon(1e-8));
  CHECK(values.iou_loss == 0.5);
  // Only the IoU part: 0.5 * ((I+1)(1-y) - y D) / D^2 = 0.5 * (0 - 2) / 4.
  CHECK(gradient.data()[0] == -0.25f);
  // p = 1, y = 0: clipped to 1 - 1e-7f = 0.99999988f, BCE = -log(2^-23).
  prediction.data()[0] = 1.0f;
  target.data()[0] = 0.0f;
  values = iou_bce_loss(context, prediction, target, &gradient);
  CHECK(values.bce == doctest::Approx(23.0 * std::log(2.0)).epsilon(1e-14));
  CHECK(values.iou_loss == 0.5);        // (0 + 1) / (0 + 1 - 0 + 1)
  CHECK(gradient.data()[0] == 0.125f);  // 0.5 * (1 * 1 - 0) / 4
  // p = 0, y = 0: tiny loss, not NaN.
  prediction.data()[0] = 0.0f;
  values = iou_bce_loss(context, prediction, target, &gradient);
  CHECK(std::isfinite(values.loss));
  CHECK(values.bce == doctest::Approx(1e-7).epsilon(1e-3));
  CHECK(values.iou_loss == 0.0);
}

TEST_CASE("segmentation metrics on a hand-worked batch") {
  Context context(Device::CPU);
  Tensor predictions(Device::CPU, {2, 2, 2, 1}), targets(Device::CPU, {2, 2, 2, 1});
  // Image 0: y = 1 0 0 1, p = .9 .6 .2 .5 -> rounded 1 1 0 0 (0.5 rounds to 0):
  //   I = 1, U = 2 + 2 = 4, IoU = (1 + 1) / (4 - 1 + 1) = 0.5; correct = 2 of 4.
  // Image 1: y = 0 0 0 0, p = .1 everywhere -> I = 0, U = 0, IoU = 1; correct = 4 of 4.
  predictions.set_values({0.9f, 0.6f, 0.2f, 0.5f, 0.1f, 0.1f, 0.1f, 0.1f});
  targets.set_values({1, 0, 0, 1, 0, 0, 0, 0});
  const auto sums = segmentation_metric_sums(context, predictions, targets);
  REQUIRE(sums.size() == 2);
  CHECK(sums[0].intersection == 1);
  CHECK(sums[0].target_sum == 2);
  CHECK(sums[0].prediction_sum == 2);
  CHECK(sums[0].correct_pixels == 2);
  CHECK(sums[0].pixels == 4);
  CHECK(sums[0].iou() == 0.5);
  CHECK(sums[1].iou() == 1.0);
  const SegmentationMetrics metrics = segmentation_metrics(context, predictions, targets);
  CHECK(metrics.accuracy == 0.75);
  CHECK(metrics.mean_iou == 0.75);
}

TEST_CASE("loss and metrics reject mismatched shapes") {
  Context context(Device::CPU);
  Tensor predictions(Device::CPU, {2, 4, 4, 1}), targets(Device::CPU, {2, 4, 4, 1});
  Tensor wrong(Device::CPU, {2, 4, 5, 1}), two_channels(Device::CPU, {2, 4, 4, 2});
  CHECK_THROWS_AS(iou_bce_loss(context, predictions, wrong, nullptr), Error);
  CHECK_THROWS_AS(iou_bce_loss(context, predictions, targets, &wrong), Error);
  CHECK_THROWS_AS(iou_bce_loss(context, two_channels, two_channels, nullptr), Error);
  CHECK_THROWS_AS(segmentation_metrics(context, predictions, wrong), Error);
}

TEST_CASE("CPU loss reduction does not depend on the thread count") {
  Context context(Device::CPU);
  std::mt19937_64 generator(3);
  Tensor predictions(Device::CPU, {2, 128, 128, 1}), targets(Device::CPU, {2, 128, 128, 1});
  fill_batch(predictions, targets, generator);
  const int threads = cpu_thread_count();
  set_cpu_thread_count(1);
  const LossValues one = iou_bce_loss(context, predictions, targets, nullptr);
  set_cpu_thread_count(4);
  const LossValues four = iou_bce_loss(context, predictions, targets, nullptr);
  set_cpu_thread_count(threads);
  CHECK(one.loss == four.loss);
  CHECK(one.bce == four.bce);
}

PNEUMO_GPU_TEST_CASE("CUDA loss, gradient and metrics match the CPU") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  bool wide_index = false;  // the per-element kernels' int32_t and int64_t index paths
  SUBCASE("32-bit index math") { wide_index = false; }
  SUBCASE("64-bit index math, forced") { wide_index = true; }
  pneumo::testing::ForceWideCudaIndex wide(wide_index);
  Context cpu(Device::CPU), cuda(Device::CUDA);
  std::mt19937_64 generator(17);
  const Shape shape = {4, 64, 48, 1};
  Tensor predictions(Device::CPU, shape), targets(Device::CPU, shape);
  fill_batch(predictions, targets, generator);
  Tensor cpu_gradient(Device::CPU, shape);
  const LossValues cpu_values = iou_bce_loss(cpu, predictions, targets, &cpu_gradient);
  Tensor cuda_predictions = predictions.to(Device::CUDA), cuda_targets = targets.to(Device::CUDA);
  Tensor cuda_gradient(Device::CUDA, shape);
  const LossValues cuda_values = iou_bce_loss(cuda, cuda_predictions, cuda_targets, &cuda_gradient);
  CHECK(cuda_values.loss == doctest::Approx(cpu_values.loss).epsilon(1e-12));
  CHECK(cuda_values.bce == doctest::Approx(cpu_values.bce).epsilon(1e-12));
  CHECK(cuda_values.iou_loss == doctest::Approx(cpu_values.iou_loss).epsilon(1e-12));
  const std::vector<float> from_cuda = cuda_gradient.to_vector();
  for (int64_t i = 0; i < cpu_gradient.count(); ++i)
    CHECK(from_cuda[static_cast<size_t>(i)] == doctest::Approx(cpu_gradient.data()[i]).epsilon(1e-6));
  // Deterministic: the same inputs give the same bits.
  const LossValues again = iou_bce_loss(cuda, cuda_predictions, cuda_targets, nullptr);
  CHECK(again.loss == cuda_values.loss);
  // Metrics are exact integer counts on both back ends.
  const auto cpu_sums = segmentation_metric_sums(cpu, predictions, targets);
  const auto cuda_sums = segmentation_metric_sums(cuda, cuda_predictions, cuda_targets);
  REQUIRE(cuda_sums.size() == cpu_sums.size());
  for (size_t image = 0; image < cpu_sums.size(); ++image) {
    CHECK(cuda_sums[image].intersection == cpu_sums[image].intersection);
    CHECK(cuda_sums[image].target_sum == cpu_sums[image].target_sum);
    CHECK(cuda_sums[image].prediction_sum == cpu_sums[image].prediction_sum);
    CHECK(cuda_sums[image].correct_pixels == cpu_sums[image].correct_pixels);
    CHECK(cuda_sums[image].pixels == cpu_sums[image].pixels);
  }
  const SegmentationMetrics cpu_metrics = metrics_from_sums(cpu_sums);
  CHECK(cpu_metrics.accuracy > 0.3);  // the comparison above saw real, non-trivial counts
}
