#include "layers/training_step.h"

#include "engine/check.h"

namespace pneumo {

namespace {
void require_batch(const Network& network, const Tensor& images, const Tensor& masks) {
  PNEUMO_REQUIRE(images.rank() == 4, "training step: images must be (N,S,S,1)");
  require_shape(images, network.input_shape(images.N()), "training step images");
  require_shape(masks, images.shape(), "training step masks");
  require_device(images, network.device(), "training step images");
  require_device(masks, network.device(), "training step masks");
}
}  // namespace

StepResult train_step(Context& context, Network& network, Adam& adam, const Tensor& images,
                      const Tensor& masks, float learning_rate) {
  require_batch(network, images, masks);
  ParameterStore& store = network.parameters();
  store.zero_gradients();
  network.set_dropout_step(static_cast<uint64_t>(adam.step_count()));  // the masks of this step
  const Tensor& probabilities = network.forward(context, images, /*training=*/true);  // (N,S,S,1)
  Tensor& probability_gradient = network.output_gradient_buffer();                    // (N,S,S,1)
  StepResult result;
  result.loss = iou_bce_loss(context, probabilities, masks, &probability_gradient);
  result.metrics = segmentation_metrics(context, probabilities, masks);
  network.backward(context, probability_gradient);
  adam.step(context, store, learning_rate);
  return result;
}

StepResult evaluate_batch(Context& context, Network& network, const Tensor& images,
                          const Tensor& masks) {
  require_batch(network, images, masks);
  const Tensor& probabilities = network.forward(context, images, /*training=*/false);
  StepResult result;
  result.loss = iou_bce_loss(context, probabilities, masks, nullptr);
  result.metrics = segmentation_metrics(context, probabilities, masks);
  return result;
}

}  // namespace pneumo
