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

struct StepResult {
  LossValues loss;              // of the predictions BEFORE the update (as Keras reports it)
  SegmentationMetrics metrics;  // pixel accuracy and the notebook's mean_iou, same predictions
};

// Zeroes the parameter gradients, runs a training forward (batch statistics; running
// statistics updated), the loss and d loss / d probabilities, backward (ACCUMULATES parameter
// gradients), then one Adam step at `learning_rate`.
StepResult train_step(Context& context, Network& network, Adam& adam, const Tensor& images,
                      const Tensor& masks, float learning_rate);

// Inference forward (running statistics) + loss + metrics; parameters and state are unchanged.
StepResult evaluate_batch(Context& context, Network& network, const Tensor& images,
                          const Tensor& masks);

}  // namespace pneumo
