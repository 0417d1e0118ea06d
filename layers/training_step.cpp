#include "layers/training_step.h"

#include <chrono>

#include "engine/check.h"
#include "engine/distributed.h"

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

StepResult train_step(Context& context, Network& network, Adam& adam, const Tensor& images, const Tensor& masks,
                      float learning_rate) {
  require_batch(network, images, masks);
  ParameterStore& store = network.parameters();
  store.zero_gradients();
  network.set_dropout_step(static_cast<uint64_t>(adam.step_count()));                 // the masks of this step
  const Tensor& probabilities = network.forward(context, images, /*training=*/true);  // (N,S,S,1)
  Tensor& probability_gradient = network.output_gradient_buffer();                    // (N,S,S,1)
  StepResult result;
  result.loss = iou_bce_loss(context, probabilities, masks, &probability_gradient);
  result.metrics = segmentation_metrics(context, probabilities, masks);
  network.backward(context, probability_gradient);
  adam.step(context, store, learning_rate);
  return result;
}

StepResult evaluate_batch(Context& context, Network& network, const Tensor& images, const Tensor& masks) {
  require_batch(network, images, masks);
  const Tensor& probabilities = network.forward(context, images, /*training=*/false);
  StepResult result;
  result.loss = iou_bce_loss(context, probabilities, masks, nullptr);
  result.metrics = segmentation_metrics(context, probabilities, masks);
  return result;
}

// ---- data parallel ----------------------------------------------------------------------------

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The four loss sums of this slice (zero when it has no images), summed over the ranks.
IouBceSums global_loss_sums(Context& context, Communicator& communicator, const Tensor& probabilities,
                            const Tensor& masks, double* communication_seconds) {
  IouBceSums sums;
  if (!probabilities.empty()) sums = iou_bce_loss_sums(context, probabilities, masks);
  double values[4] = {sums.bce_sum, sums.intersection, sums.target_sum, sums.prediction_sum};
  const auto start = Clock::now();
  communicator.allreduce_sum(values, 4);
  if (communication_seconds) *communication_seconds += seconds_since(start);
  return IouBceSums{values[0], values[1], values[2], values[3]};
}
}  // namespace

std::vector<ImageMetricSums> gather_image_metric_sums(Communicator& communicator,
                                                      const std::vector<ImageMetricSums>& local, int64_t first_image,
                                                      int64_t batch_images) {
  const int64_t count = static_cast<int64_t>(local.size());
  PNEUMO_REQUIRE(first_image >= 0 && first_image + count <= batch_images,
                 "gather_image_metric_sums: images [" + std::to_string(first_image) + ", " +
                     std::to_string(first_image + count) + ") outside a batch of " + std::to_string(batch_images));
  constexpr int kFields = 5;
  std::vector<double> all(static_cast<size_t>(batch_images * kFields), 0.0);  // (batch_images, 5)
  for (int64_t i = 0; i < count; ++i) {
    double* row = all.data() + (first_image + i) * kFields;
    const ImageMetricSums& sums = local[static_cast<size_t>(i)];
    row[0] = sums.intersection;
    row[1] = sums.target_sum;
    row[2] = sums.prediction_sum;
    row[3] = sums.correct_pixels;
    row[4] = static_cast<double>(sums.pixels);
  }
  communicator.allreduce_sum(all.data(), static_cast<int64_t>(all.size()));  // x + 0 + ... = x exactly
  std::vector<ImageMetricSums> result(static_cast<size_t>(batch_images));
  for (int64_t i = 0; i < batch_images; ++i) {
    const double* row = all.data() + i * kFields;
    result[static_cast<size_t>(i)] = ImageMetricSums{row[0], row[1], row[2], row[3], static_cast<int64_t>(row[4])};
  }
  return result;
}

StepResult train_step(Context& context, Network& network, Adam& adam, const Tensor& images, const Tensor& masks,
                      float learning_rate, Communicator& communicator, StepTimes* times) {
  if (communicator.size() == 1 && !times) return train_step(context, network, adam, images, masks, learning_rate);
  const auto step_start = Clock::now();
  double communication = 0;
  require_batch(network, images, masks);
  const int64_t slice = images.N(), batch_images = slice * communicator.size();
  ParameterStore& store = network.parameters();
  store.zero_gradients();
  // This step's masks, numbered from this rank's first image: each rank draws the slice of the
  // mask one process holding the stacked batch draws.
  network.set_dropout_step(static_cast<uint64_t>(adam.step_count()), slice * communicator.rank());
  const Tensor& probabilities = network.forward(context, images, /*training=*/true);  // (n,S,S,1)
  Tensor& probability_gradient = network.output_gradient_buffer();                    // (n,S,S,1)
  StepResult result;
  const IouBceSums sums = global_loss_sums(context, communicator, probabilities, masks, &communication);
  result.loss = iou_bce_loss_from_sums(context, sums, probabilities.count() * communicator.size(), probabilities, masks,
                                       &probability_gradient);
  const std::vector<ImageMetricSums> local = segmentation_metric_sums(context, probabilities, masks);
  auto start = Clock::now();
  result.metrics =
      metrics_from_sums(gather_image_metric_sums(communicator, local, slice * communicator.rank(), batch_images));
  communication += seconds_since(start);
  Tensor& gradients = store.gradients();  // (P), summed over the ranks below
  const int64_t bucket = communicator.gradient_bucket_floats();
  if (bucket <= 0) {
    network.backward(context, probability_gradient);
    start = Clock::now();
    communicator.allreduce_sum(gradients);  // one call: the sum of the slices' gradients
    communication += seconds_since(start);
  } else {
    // Buckets: parameters are laid out in node order, so once node i's backward has run the
    // gradients from node i's first parameter to the end are final. Each time that final, not
    // yet started range reaches `bucket` floats its sum starts, overlapping the backward pass
    // of the nodes before it; the rest starts at the end, then all are waited for.
    int64_t unstarted_end = gradients.count();
    network.backward(context, probability_gradient, [&](int node) {
      const auto hook_start = Clock::now();
      const int64_t final_from = network.gradient_offset(node);
      PNEUMO_REQUIRE(final_from < 0 || final_from <= unstarted_end,
                     "gradient buckets: the parameters are not laid out in node order");
      if (final_from >= 0 && unstarted_end - final_from >= bucket) {
        communicator.start_sum(gradients, final_from, unstarted_end - final_from);
        unstarted_end = final_from;
      }
      communicator.progress();
      communication += seconds_since(hook_start);
    });
    start = Clock::now();
    if (unstarted_end > 0) communicator.start_sum(gradients, 0, unstarted_end);
    communicator.wait_started_sums();
    communication += seconds_since(start);
  }
  adam.step(context, store, learning_rate);
  if (times) {
    context.synchronize();
    times->communication_seconds = communication;
    times->total_seconds = seconds_since(step_start);
  }
  return result;
}

StepResult evaluate_batch(Context& context, Network& network, const Tensor& images, const Tensor& masks,
                          Communicator& communicator, int64_t first_image, int64_t batch_images) {
  if (communicator.size() == 1 && first_image == 0 && !images.empty() && images.N() == batch_images)
    return evaluate_batch(context, network, images, masks);
  const Tensor* probabilities = nullptr;
  if (!images.empty()) {
    require_batch(network, images, masks);
    probabilities = &network.forward(context, images, /*training=*/false);
  }
  const Tensor none;
  const IouBceSums sums =
      global_loss_sums(context, communicator, probabilities ? *probabilities : none, masks, nullptr);
  const int64_t pixels = network.config().input_size * network.config().input_size;
  StepResult result;
  result.loss = loss_values_from_sums(sums, batch_images * pixels);
  std::vector<ImageMetricSums> local;
  if (probabilities) local = segmentation_metric_sums(context, *probabilities, masks);
  result.metrics = metrics_from_sums(gather_image_metric_sums(communicator, local, first_image, batch_images));
  return result;
}

}  // namespace pneumo
