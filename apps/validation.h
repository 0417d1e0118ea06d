// Validation of a model during training: every validation image through inference, the
// notebook's loss and metrics, and the competition mAP through the same post-processing as
// `pneumo predict`; plus a picture of the first validation batch with true and predicted boxes.
#pragma once
#include <string>
#include <vector>

#include "data/input/cache.h"
#include "data/input/labels.h"
#include "data/input/loader.h"
#include "data/evaluation/metric.h"
#include "data/evaluation/submission.h"
#include "data/presentation/picture.h"
#include "engine/context.h"
#include "engine/distributed.h"
#include "layers/network.h"

namespace pneumo::cli {

struct ValidationResult {
  double loss = 0, accuracy = 0, mean_iou = 0;  // means over images (Keras weights by batch size)
  MetricResult metric;                          // competition mAP of the predicted boxes
  Submission submission;                        // the predicted boxes, per validation image
  // The first batch, for the picture: images (N,S,S) in [0,1], boxes in each image's own pixels.
  int64_t image_size = 0;
  std::vector<std::vector<float>> images;
  std::vector<std::vector<Box>> true_boxes;
  std::vector<std::vector<ScoredBox>> predicted_boxes;
  std::vector<int> source_sizes;  // each image's own width (= height for RSNA)
};

// Runs `loader` (Evaluate mode) once from its start. Boxes come from the probability maps
// resized to each image's own size (from the cache), thresholded at `threshold`.
// With a communicator of several ranks (every rank runs the same loader), rank r evaluates
// images [B*r/N, B*(r+1)/N) of each batch of B; loss and metrics are the whole batch's (sums
// reduced), the boxes are gathered at rank 0, which scores them once; every rank returns the
// same loss, metrics and metric. The submission and the picture's boxes are rank 0's only.
ValidationResult validate(Context& context, Network& network, BatchLoader& loader, const LabelSet& labels,
                          const ImageCache& cache, double threshold, Communicator* communicator = nullptr);

// Boxes for a batch of probability maps (N,S,S,1) on the network's device, each map resized to
// its image's own size (source_sizes[i] x source_sizes[i]).
std::vector<std::vector<ScoredBox>> boxes_for_batch(const Tensor& probabilities, const std::vector<int>& source_widths,
                                                    const std::vector<int>& source_heights, double threshold);

// A grid (8 per row) of the first validation batch: true boxes green, predictions orange
// (result.images must not be empty); write_validation_grid saves it as a PNG (nothing when empty).
Picture validation_grid(const ValidationResult& result);
void write_validation_grid(const std::string& path, const ValidationResult& result);

}  // namespace pneumo::cli
