// Step parity with the notebook's own framework: benchmarks/peers/keras_steps.py ran the
// notebook's Keras code (notebook_keras.py, Keras 3 / TensorFlow) for 30 training steps from
// pneumo's initial weights on pneumo's batches (`pneumo dump-batches`: 30 batches of 4 synthetic
// 32x32 images; network channels 4, 1 block, depth 2; Adam lr 1e-3 = the notebook's schedule in
// epoch 0) and stored its per-step loss, accuracy and mean IoU, and the weights and batch-norm
// running statistics after the 30 steps (tests/fixtures/peers/keras_steps.safetensors). pneumo
// runs the same 30 steps here, without Python, and must reproduce them.
//
// Tolerances. Both sides are float32 and sum in different orders (pneumo's loss in double), so
// they start a few float32 ulps apart (step 1 loss: 6e-8). Thirty steps of batch-4 training with
// batch norm, ReLU and Adam (which moves a weight by ~lr whatever the size of its gradient)
// amplify such differences: the fixture holds Keras run again from initial weights nudged by a
// relative 1e-6 (keras_nudged.*), which ends up to 5e-4 away in loss and 5e-3 in the weights.
// So the test asks for
//   steps 1-10: loss within 1e-6, accuracy and mean IoU within 1e-6 (before the drift grows);
//   all 30 steps and the final state: no further from Keras than Keras is from its nudged self.
// A real departure is much larger: the one known Keras 3 difference, the biased moving variance
// (keras3_biased.*, change 3 in notebook_keras.py), is checked to be told apart: pneumo's running
// variances must be closer to the notebook's (Bessel-corrected) Keras than to Keras 3's own.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/context.h"
#include "engine/safetensors.h"
#include "layers/adam.h"
#include "layers/network.h"
#include "layers/training_step.h"
#include "tests/support/fixtures.h"

using namespace pneumo;

namespace {

const SafetensorsTensor& tensor(const SafetensorsContents& fixture, const std::string& name) {
  const SafetensorsTensor* found = fixture.find(name);
  if (!found) FAIL("keras_steps fixture has no tensor " << name);
  return *found;
}

int64_t metadata_integer(const SafetensorsContents& fixture, const std::string& key) {
  auto found = fixture.metadata.find(key);
  if (found == fixture.metadata.end()) FAIL("keras_steps fixture has no metadata " << key);
  return std::stoll(found->second);
}

// Largest |a - b| over two equally long lists; relative: divided by max(1, |b|).
double max_difference(const std::vector<float>& a, const std::vector<float>& b, bool relative = false) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double error = std::fabs(double(a[i]) - double(b[i]));
    worst = std::max(worst, relative ? error / std::max(1.0, std::fabs(double(b[i]))) : error);
  }
  return worst;
}

struct Tolerances {
  double early;        // steps 1-10: |loss|, |accuracy|, |mean IoU| differences
  double drift_scale;  // later steps and final state: drift_scale * (Keras vs nudged Keras)
};

void run_keras_steps(Device device, const Tolerances& tolerance) {
  const SafetensorsContents fixture = read_safetensors(pneumo::testing::fixture_path("peers/keras_steps.safetensors"));
  const NetworkConfig config{
      metadata_integer(fixture, "network.input_size"), metadata_integer(fixture, "network.channels"),
      metadata_integer(fixture, "network.n_blocks"), metadata_integer(fixture, "network.depth"), 0.0f};
  const int64_t batch = metadata_integer(fixture, "batch_size"), steps = metadata_integer(fixture, "batches");
  REQUIRE(steps == 30);
  const float learning_rate = 1e-3f;
  Context context(device);
  Network network(device, config, 0);
  for (const auto& entry : network.parameters().entries()) {
    const SafetensorsTensor& initial = tensor(fixture, "initial." + entry.spec.name);
    REQUIRE(initial.shape == entry.spec.shape);
    Tensor value = entry.value;          // a view into the store
    value.set_values(initial.floats());  // host -> device
  }
  const int64_t S = config.input_size, per_batch = batch * S * S;
  const std::vector<float> all_images = tensor(fixture, "images").floats(),
                           all_masks = tensor(fixture, "masks").floats();
  REQUIRE(static_cast<int64_t>(all_images.size()) == steps * per_batch);
  const std::vector<float> keras_loss = tensor(fixture, "keras.loss").floats();
  const std::vector<float> keras_accuracy = tensor(fixture, "keras.accuracy").floats();
  const std::vector<float> keras_iou = tensor(fixture, "keras.mean_iou").floats();

  // How far Keras drifts from itself when its start is nudged by 1e-6 (see the tolerances above).
  const double nudged_loss = max_difference(tensor(fixture, "keras_nudged.loss").floats(), keras_loss);
  const double nudged_accuracy = max_difference(tensor(fixture, "keras_nudged.accuracy").floats(), keras_accuracy);
  const double nudged_iou = max_difference(tensor(fixture, "keras_nudged.mean_iou").floats(), keras_iou);
  double nudged_weight = 0, nudged_state = 0;
  for (const auto& entry : network.parameters().entries()) {
    const double drift =
        max_difference(tensor(fixture, "keras_nudged.final." + entry.spec.name).floats(),
                       tensor(fixture, "keras.final." + entry.spec.name).floats(), !entry.spec.trainable);
    (entry.spec.trainable ? nudged_weight : nudged_state) =
        std::max(entry.spec.trainable ? nudged_weight : nudged_state, drift);
  }
  REQUIRE(nudged_loss > 0);
  REQUIRE(nudged_weight > 0);

  Adam adam;
  Tensor images(device, Shape{batch, S, S, 1}), masks(device, Shape{batch, S, S, 1});  // (N,S,S,1)
  double worst_loss = 0, worst_accuracy = 0, worst_iou = 0;
  for (int64_t step = 0; step < steps; ++step) {
    images.set_values(
        std::vector<float>(all_images.begin() + step * per_batch, all_images.begin() + (step + 1) * per_batch));
    masks.set_values(
        std::vector<float>(all_masks.begin() + step * per_batch, all_masks.begin() + (step + 1) * per_batch));
    const StepResult result = train_step(context, network, adam, images, masks, learning_rate);
    const double loss_error = std::fabs(result.loss.loss - keras_loss[step]);
    const double accuracy_error = std::fabs(result.metrics.accuracy - keras_accuracy[step]);
    const double iou_error = std::fabs(result.metrics.mean_iou - keras_iou[step]);
    worst_loss = std::max(worst_loss, loss_error);
    worst_accuracy = std::max(worst_accuracy, accuracy_error);
    worst_iou = std::max(worst_iou, iou_error);
    INFO("step " << step + 1 << ": loss " << result.loss.loss << " keras " << keras_loss[step] << ", accuracy "
                 << result.metrics.accuracy << " keras " << keras_accuracy[step] << ", mean IoU "
                 << result.metrics.mean_iou << " keras " << keras_iou[step]);
    if (step < 10) {
      CHECK(loss_error <= tolerance.early);
      CHECK(accuracy_error <= tolerance.early);
      CHECK(iou_error <= tolerance.early);
    }
    CHECK(loss_error <= tolerance.drift_scale * nudged_loss);
    CHECK(accuracy_error <= tolerance.drift_scale * std::max(nudged_accuracy, 16.0 / double(per_batch)));
    CHECK(iou_error <= tolerance.drift_scale * nudged_iou);
  }
  // The loss must actually have moved, or the comparison says little.
  CHECK(keras_loss.front() - keras_loss.back() > 0.05);

  double worst_weight = 0, worst_state = 0, bessel_distance = 0, biased_distance = 0;
  for (const auto& entry : network.parameters().entries()) {
    const std::vector<float> expected = tensor(fixture, "keras.final." + entry.spec.name).floats();
    const std::vector<float> actual = entry.value.to_vector();
    const double error = max_difference(actual, expected, !entry.spec.trainable);
    INFO(entry.spec.name << ": max " << (entry.spec.trainable ? "" : "relative ") << "difference " << error
                         << " (moved by up to "
                         << max_difference(expected, tensor(fixture, "initial." + entry.spec.name).floats())
                         << " in 30 steps)");
    CHECK(max_difference(expected, tensor(fixture, "initial." + entry.spec.name).floats()) > 0);
    (entry.spec.trainable ? worst_weight : worst_state) =
        std::max(entry.spec.trainable ? worst_weight : worst_state, error);
    if (entry.spec.name.size() > 11 && entry.spec.name.compare(entry.spec.name.size() - 11, 11, "running_var") == 0) {
      const std::vector<float> biased = tensor(fixture, "keras3_biased.final." + entry.spec.name).floats();
      for (size_t i = 0; i < actual.size(); ++i) {
        bessel_distance += std::fabs(double(actual[i]) - expected[i]);
        biased_distance += std::fabs(double(actual[i]) - biased[i]);
      }
    }
  }
  MESSAGE("pneumo vs Keras over 30 steps: max |loss diff| "
          << worst_loss << ", accuracy " << worst_accuracy << ", mean IoU " << worst_iou << ", weights " << worst_weight
          << ", running statistics (relative) " << worst_state << "; Keras vs nudged Keras: loss " << nudged_loss
          << ", weights " << nudged_weight << ", running statistics " << nudged_state
          << "; running variances: summed distance to the notebook's Keras " << bessel_distance
          << ", to Keras 3's biased update " << biased_distance);
  CHECK(worst_weight <= tolerance.drift_scale * nudged_weight);
  CHECK(worst_state <= tolerance.drift_scale * nudged_state);
  CHECK(bessel_distance < 0.5 * biased_distance);
}

}  // namespace

TEST_CASE("30 training steps match the notebook's Keras: losses, metrics, weights, running statistics (CPU)") {
  run_keras_steps(Device::CPU, Tolerances{1e-6, 1.0});
}

PNEUMO_GPU_TEST_CASE("30 training steps match the notebook's Keras (GPU)") {
  PNEUMO_REQUIRE_GPU_OR_SKIP();
  // cuDNN sums in other orders (fp32, TF32 off): looser, as the PyTorch golden test.
  run_keras_steps(Device::CUDA, Tolerances{1e-5, 2.0});
}
