// Prediction from the CLI: a checkpoint + a folder of DICOMs -> batched inference on the chosen
// device -> post-processing (resize to each image's own size, threshold, connected components,
// boxes, confidences) -> a Kaggle submission, and optionally overlay pictures.
#pragma once
#include <cstdint>
#include <string>

#include "layers/conv_selection.h"
#include "layers/precision.h"

namespace pneumo::cli {

struct PredictSettings {
  std::string checkpoint;
  std::string images_dir;
  std::string out = "submission.csv";
  std::string device = "auto";
  std::string cache_dir;      // "" = the parent folder of images_dir
  std::string overlays_dir;   // "" = no overlays
  std::string labels;         // optional: true boxes drawn on the overlays
  int64_t overlay_limit = 0;  // 0 = every image
  int64_t batch_size = 16;
  int64_t workers = 4;
  double threshold = 0.5;
  double max_unreadable_fraction = 0.0;
  bool tf32 = false;                      // CUDA: TF32 tensor cores in cuDNN (off: full fp32)
  Precision precision = Precision::Fp32;  // the convolutions' (layers/precision.h)
  std::string cudnn = "heuristic";
  ConvPolicy conv_policy;  // CPU: how the convolutions choose their algorithms  // CUDA: heuristic, find or
                           // deterministic (layers/conv2d_cudnn_algorithm.h)
};

struct PredictOutcome {
  int64_t images = 0, boxes = 0, images_with_boxes = 0, overlays = 0;
  double seconds = 0;  // inference + post-processing, excluding the cache build
};

PredictOutcome run_prediction(const PredictSettings& settings);

}  // namespace pneumo::cli
