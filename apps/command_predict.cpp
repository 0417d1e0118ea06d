// pneumo predict: a checkpoint + a folder of DICOMs -> a Kaggle submission (+ overlay pictures).
#include "apps/arguments.h"
#include "apps/commands.h"
#include "apps/run_files.h"
#include "engine/files.h"
#include "apps/prediction.h"

namespace pneumo::cli {

int run_predict(const std::vector<std::string>& argv, const ConvPolicy& conv_policy) {
  Arguments arguments("predict",
                      "Predicts pneumonia boxes for every DICOM in a folder and writes a Kaggle submission\n"
                      "(patientId,PredictionString; 'conf x y width height' per box). Each probability map is\n"
                      "resized to its image's own size (bilinear, as the notebook), thresholded, split into\n"
                      "8-connected components, one box per component, confidence = mean probability in it.");
  arguments.option("checkpoint", "FILE", "", "a checkpoint written by pneumo train (e.g. RUN/best.safetensors)");
  arguments.option("images", "DIR", "", "folder of <patientId>.dcm files");
  arguments.option("out", "CSV", "submission.csv", "the submission to write");
  arguments.option("device", "auto|cpu|cuda", "auto", "where to run the network and the post-processing");
  arguments.option("batch", "N", "16", "images per batch");
  arguments.option("workers", "N", "4", "data loader threads");
  arguments.option("threshold", "P", "0.5", "probability threshold");
  arguments.option("overlays", "DIR", "", "also write each image with its predicted boxes as PNG here");
  arguments.option("overlay-limit", "N", "0", "write at most N overlays (0 = all)");
  arguments.option("labels", "CSV", "", "draw these true boxes on the overlays too");
  arguments.option("cache-dir", "DIR", "",
                   "where the preprocessed image cache lives (default: the parent of --images)");
  arguments.option("max-unreadable", "F", "0", "fail when more than this share of images cannot be read");
  arguments.option("precision", "fp32|bf16", "fp32",
                   "convolutions in fp32, or bf16: inputs, filters and gradients in bfloat16, fp32 accumulation "
                   "(layers/precision.md)");
  arguments.option("tf32", "on|off", "off", "CUDA: TF32 tensor cores in cuDNN (off: full fp32, as the CPU)");
  arguments.option(
      "cudnn", "heuristic|find|deterministic", "heuristic",
      "CUDA: cuDNN's algorithm per shape from its heuristic, timed once (find), or deterministic ones only");
  if (!arguments.parse(argv)) return 0;
  PredictSettings settings;
  settings.checkpoint = arguments.text("checkpoint");
  settings.images_dir = arguments.text("images");
  settings.out = arguments.text("out");
  settings.device = arguments.text("device");
  settings.batch_size = arguments.integer("batch");
  settings.workers = arguments.integer("workers");
  settings.threshold = arguments.number("threshold");
  settings.overlays_dir = arguments.text("overlays");
  settings.overlay_limit = arguments.integer("overlay-limit");
  settings.labels = arguments.text("labels");
  settings.cache_dir = arguments.text("cache-dir");
  settings.max_unreadable_fraction = arguments.number("max-unreadable");
  settings.tf32 = arguments.choice("tf32", {"on", "off"}) == "on";
  settings.precision = parse_precision(arguments.choice("precision", {"fp32", "bf16"}));
  settings.cudnn = arguments.choice("cudnn", {"heuristic", "find", "deterministic"});
  settings.conv_policy = conv_policy;
  // Checked before any work: the submission replaces neither the checkpoint, the labels nor an image.
  require_outputs_distinct({{"--out", settings.out}},
                           {{"--checkpoint", settings.checkpoint}, {"--labels", settings.labels}});
  require_not_an_image_of("--out", settings.out, settings.images_dir);
  run_prediction(settings);
  return 0;
}

}  // namespace pneumo::cli
