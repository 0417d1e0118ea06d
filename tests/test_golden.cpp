// Golden test against PyTorch: tests/golden/make_golden.py builds the notebook's network in
// PyTorch (float64) for input 64, channels 2, n_blocks 2, depth 4, batch 2, with fixed seeded
// weights, and dumps the forward output, the loss, every parameter gradient and the input
// gradient of one training step, then the losses of 3 Keras-Adam steps (lr 1e-3), the weights
// and running statistics after them and an inference forward with those
// (tests/fixtures/golden_network.safetensors). Here the engine's network is loaded with the same
// initial weights and must reproduce all of it, on the CPU and (when a GPU is lent) on CUDA.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/safetensors.h"
#include "layers/adam.h"
#include "layers/conv2d.h"
#include "layers/loss.h"
#include "layers/network.h"
#include "layers/training_step.h"
#include "tests/support/compare.h"
#include "tests/support/fixtures.h"

using pneumo::testing::max_abs;
using pneumo::testing::max_abs_difference;

using namespace pneumo;

namespace {

const NetworkConfig kGoldenConfig{64, 2, 2, 4, 0.0f};
constexpr float kLearningRate = 1e-3f;

// Tolerances, all against the float64 reference:
struct Tolerances {
  double output;            // |p - p_ref|, probabilities (absolute)
  double loss;              // |loss - loss_ref| (absolute; losses are ~0.7)
  double gradient;          // per tensor: max |g - g_ref| <= gradient * max |g_ref|
  double weight_max;        // after 3 Adam steps, any single weight (absolute)
  double weight_mean;       // after 3 Adam steps, mean |w - w_ref| over all weights
  double state;             // running statistics: |s - s_ref| <= state * max(1, |s_ref|)
  double inference_output;  // |p - p_ref| of the inference forward after 3 steps
};

const SafetensorsTensor& tensor(const SafetensorsContents& golden, const std::string& name) {
  const SafetensorsTensor* found = golden.find(name);
  if (!found) FAIL("golden fixture has no tensor " << name);
  return *found;
}

void run_golden(Device device, const Tolerances& tolerance, const ConvPolicy& conv_policy = {}) {
  const SafetensorsContents golden = read_safetensors(pneumo::testing::fixture_path("golden_network.safetensors"));
  Context context(device);
  Network network(device, kGoldenConfig, 0);
  network.set_conv_policy(conv_policy);
  ParameterStore& store = network.parameters();

  // Every engine parameter (state included) has an initial value in the fixture, and no more.
  std::set<std::string> fixture_names, engine_names;
  for (const auto& t : golden.tensors)
    if (t.name.rfind("initial.", 0) == 0) fixture_names.insert(t.name.substr(8));
  for (const auto& entry : store.entries()) {
    engine_names.insert(entry.spec.name);
    const SafetensorsTensor& initial = tensor(golden, "initial." + entry.spec.name);
    REQUIRE(initial.shape == entry.spec.shape);
    Tensor value = entry.value;          // a view into the store
    value.set_values(initial.floats());  // host -> device
  }
  CHECK(fixture_names == engine_names);
  CHECK(store.trainable_count() == 50295);

  const SafetensorsTensor& image_values = tensor(golden, "images");
  REQUIRE(image_values.shape == Shape{2, 64, 64, 1});
  Tensor images(device, image_values.shape), masks(device, image_values.shape);  // (N,S,S,1)
  images.set_values(image_values.floats());
  masks.set_values(tensor(golden, "masks").floats());
  const std::vector<float> losses = tensor(golden, "losses").floats();

  // Step 1 by hand, to see the output, the loss and the gradients before Adam.
  store.zero_gradients();
  const Tensor& probabilities = network.forward(context, images, true);
  REQUIRE(tensor(golden, "step1.output").shape == probabilities.shape());
  REQUIRE(tensor(golden, "step1.input_gradient").shape == images.shape());
  REQUIRE(tensor(golden, "final.inference_output").shape == images.shape());
  const double output_error = max_abs_difference(probabilities.to_vector(), tensor(golden, "step1.output").floats());
  INFO("step 1 output max error " << output_error);
  CHECK(output_error <= tolerance.output);
  Tensor probability_gradient(device, probabilities.shape());  // (N,S,S,1)
  const LossValues loss = iou_bce_loss(context, probabilities, masks, &probability_gradient);
  CHECK(std::fabs(loss.loss - losses[0]) <= tolerance.loss);
  Tensor input_gradient(device, images.shape());  // (N,S,S,1)
  network.backward(context, probability_gradient, &input_gradient);
  int gradient_tensors = 0;
  for (const auto& entry : store.entries()) {
    if (!entry.spec.trainable) continue;
    const std::vector<float> expected = tensor(golden, "step1.gradient." + entry.spec.name).floats();
    const double error = max_abs_difference(entry.gradient.to_vector(), expected);
    INFO("gradient " << entry.spec.name << ": max error " << error << ", max |reference| " << max_abs(expected));
    CHECK(max_abs(expected) > 0);
    CHECK(error <= tolerance.gradient * max_abs(expected));
    ++gradient_tensors;
  }
  CHECK(gradient_tensors == 22 + 1 + 21 * 2);  // conv weights, head bias, BN gamma/beta
  {
    const std::vector<float> expected = tensor(golden, "step1.input_gradient").floats();
    const double error = max_abs_difference(input_gradient.to_vector(), expected);
    INFO("input gradient max error " << error << ", max |reference| " << max_abs(expected));
    CHECK(error <= tolerance.gradient * max_abs(expected));
  }
  Adam adam;
  adam.step(context, store, kLearningRate);

  // Steps 2 and 3 through the training step.
  for (int step = 2; step <= 3; ++step) {
    const StepResult result = train_step(context, network, adam, images, masks, kLearningRate);
    INFO("step " << step << " loss " << result.loss.loss << " reference " << losses[step - 1]);
    CHECK(std::fabs(result.loss.loss - losses[step - 1]) <= tolerance.loss);
  }
  CHECK(adam.step_count() == 3);

  double worst_weight = 0, weight_error_sum = 0;
  int64_t weights = 0;
  for (const auto& entry : store.entries()) {
    const std::vector<float> expected = tensor(golden, "final." + entry.spec.name).floats();
    const std::vector<float> actual = entry.value.to_vector();
    if (entry.spec.trainable) {
      for (size_t i = 0; i < actual.size(); ++i) {
        const double error = std::fabs(double(actual[i]) - expected[i]);
        worst_weight = std::max(worst_weight, error);
        weight_error_sum += error;
      }
      weights += static_cast<int64_t>(actual.size());
    } else {
      for (size_t i = 0; i < actual.size(); ++i) {
        INFO(entry.spec.name << "[" << i << "] " << actual[i] << " reference " << expected[i]);
        CHECK(std::fabs(double(actual[i]) - expected[i]) <=
              tolerance.state * std::max(1.0, std::fabs(double(expected[i]))));
      }
    }
  }
  INFO("weights after 3 steps: max error " << worst_weight << ", mean error " << weight_error_sum / weights);
  CHECK(worst_weight <= tolerance.weight_max);
  CHECK(weight_error_sum / weights <= tolerance.weight_mean);

  const double inference_error = max_abs_difference(network.forward(context, images, false).to_vector(),
                                                    tensor(golden, "final.inference_output").floats());
  INFO("inference output after 3 steps, max error " << inference_error);
  CHECK(inference_error <= tolerance.inference_output);
}

}  // namespace

TEST_CASE("the network matches PyTorch: forward, loss, gradients, 3 Adam steps (CPU)") {
  run_golden(Device::CPU, Tolerances{1e-5, 1e-6, 1e-4, 3e-5, 1e-6, 1e-5, 1e-5});
}

TEST_CASE("the network matches PyTorch with every CPU convolution algorithm (CPU)") {
  // Each algorithm where it can run a layer's shape and direction, reference elsewhere (the
  // golden network has 2-32 channels: direct runs only its 32-channel layers, Winograd only the
  // 3x3 forward and input gradients). What an algorithm could not run anywhere is printed.
  for (ConvAlgorithm algorithm : concrete_conv_algorithms()) {
    const std::string name = conv_algorithm_name(algorithm);
    CAPTURE(name);
    ConvPolicy policy;
    policy.algorithms = {algorithm, ConvAlgorithm::Reference};
    // Winograd's rounding error bound is ~beta^2 = 64 (F(2x2)) to 2300 (F(4x4)) times the
    // transforms-free one (layers/conv2d.md, "Algorithms"); measured here it is ~10x direct's
    // on the output and loss. Adam's step m / sqrt(v) is scale-free, so on near-zero gradient
    // entries that error can move a weight by a fraction of the learning rate (1e-3): loss and
    // weights get 10x / 0.1 lr, the rest stays.
    const bool winograd = algorithm == ConvAlgorithm::Winograd2 || algorithm == ConvAlgorithm::Winograd4;
    run_golden(Device::CPU,
               winograd ? Tolerances{1e-4, 1e-5, 1e-3, 1e-4, 1e-6, 1e-4, 1e-4}
                        : Tolerances{1e-5, 1e-6, 1e-4, 3e-5, 1e-6, 1e-5, 1e-5},
               policy);
    if (algorithm == ConvAlgorithm::Direct &&
        !conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, {1, 8, 8, 32, 32, 3}).empty())
      std::printf("SKIPPED (golden) direct: %s\n",
                  conv_algorithm_unsupported_reason(algorithm, ConvDirection::Forward, {1, 8, 8, 32, 32, 3}).c_str());
  }
}

PNEUMO_GPU_TEST_CASE("the network matches PyTorch: forward, loss, gradients, 3 Adam steps (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  // cuDNN sums in other orders (fp32, TF32 off): a little looser than the CPU.
  run_golden(Device::CUDA, Tolerances{5e-5, 5e-6, 1e-3, 2e-4, 5e-6, 1e-4, 5e-5});
}
