// One training step and one evaluation of the notebook's network on a batch: images and masks
// (N,S,S,1) on the network's device flow through forward -> iou_bce_loss (+ its gradient) ->
// backward -> Adam over the flat parameter buffers (layers/training_step.md).
#pragma once
#include "engine/context.h"
#include "engine/tensor.h"
#include "layers/adam.h"
#include "layers/loss.h"
#include "layers/network.h"

namespace pneumo {

class Communicator;  // engine/distributed.h

struct StepResult {
  LossValues loss;              // of the predictions BEFORE the update (as Keras reports it)
  SegmentationMetrics metrics;  // pixel accuracy and the notebook's mean_iou, same predictions
};

// Zeroes the parameter gradients, runs a training forward (batch statistics; running
// statistics updated), the loss and d loss / d probabilities, backward (ACCUMULATES parameter
// gradients), then one Adam step at `learning_rate`.
StepResult train_step(Context& context, Network& network, Adam& adam, const Tensor& images, const Tensor& masks,
                      float learning_rate);

// Inference forward (running statistics) + loss + metrics; parameters and state are unchanged.
StepResult evaluate_batch(Context& context, Network& network, const Tensor& images, const Tensor& masks);

// ---- data parallel (engine/distributed.md) ---------------------------------------------------
// The same step with the global batch split over the ranks of `communicator`: images and masks
// are this rank's slice, images [rank * n, (rank + 1) * n) of a global batch of n * size images
// (every rank the same n). The loss's four sums are added over the ranks before its gradient,
// the per-image metric sums are gathered, batch norm synchronizes through its own hook
// (Network::set_batch_norm_communicator), and the flat gradient buffer is summed over the ranks
// in one allreduce before Adam; so every rank ends with the parameters one process computes from
// the whole batch (up to the order of float additions). With one rank it is train_step above.
struct StepTimes {
  double communication_seconds = 0;  // in collectives (allreduce of gradients, loss and metric sums)
  double total_seconds = 0;
};
StepResult train_step(Context& context, Network& network, Adam& adam, const Tensor& images, const Tensor& masks,
                      float learning_rate, Communicator& communicator, StepTimes* times = nullptr);

// Inference on a slice of an evaluation batch of batch_images images: this rank holds images
// [first_image, first_image + images.N()) (an empty `images` tensor: none); the result is the
// whole batch's loss and metrics, equal on every rank.
StepResult evaluate_batch(Context& context, Network& network, const Tensor& images, const Tensor& masks,
                          Communicator& communicator, int64_t first_image, int64_t batch_images);

// Every image's metric sums of a batch of batch_images images, on every rank, from each rank's
// own images [first_image, first_image + local.size()): exact (each entry comes from one rank;
// the others add zeros).
std::vector<ImageMetricSums> gather_image_metric_sums(Communicator& communicator,
                                                      const std::vector<ImageMetricSums>& local, int64_t first_image,
                                                      int64_t batch_images);

}  // namespace pneumo
