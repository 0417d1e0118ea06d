// pneumo synth and pneumo explore: write a synthetic dataset; explore a dataset's labels.
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "data/presentation/explore.h"
#include "data/input/synth.h"
#include "engine/check.h"

namespace pneumo::cli {

int run_synth(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("synth",
                      "Writes a synthetic dataset in the RSNA layout: stage_2_train_labels.csv,\n"
                      "stage_2_detailed_class_info.csv, stage_2_train_images/<id>.dcm, stage_2_test_images/<id>.dcm,\n"
                      "stage_2_sample_submission.csv (and synthetic_test_labels.csv). Images are 8-bit MONOCHROME2\n"
                      "JPEG-baseline DICOMs that look like chest X-rays; about a third have 1-4 opacity boxes.\n"
                      "The same seed gives the same files.");
  arguments.option("out", "DIR", "", "output directory (new or empty)");
  arguments.option("train-images", "N", "1000", "training images");
  arguments.option("test-images", "N", "200", "test images");
  arguments.option("image-size", "PIXELS", "1024", "image width and height");
  arguments.option("seed", "N", "1", "seed");
  if (!arguments.parse(argv)) return 0;
  SynthConfig config;
  config.out_dir = arguments.text("out");
  if (config.out_dir.empty()) throw Error("--out is required");
  const int64_t train = arguments.integer("train-images"), test = arguments.integer("test-images");
  const int64_t size = arguments.integer("image-size");
  if (train < 1 || train > 1000000) throw Error("--train-images: expected 1..1000000, got " + std::to_string(train));
  if (test < 0 || test > 1000000) throw Error("--test-images: expected 0..1000000, got " + std::to_string(test));
  if (size < 64 || size > 4096) throw Error("--image-size: expected 64..4096, got " + std::to_string(size));
  config.train_images = static_cast<int>(train);
  config.test_images = static_cast<int>(test);
  config.image_size = static_cast<int>(size);
  config.seed = static_cast<uint64_t>(arguments.integer("seed"));
  config.show_progress = true;
  write_synthetic_dataset(config);
  std::printf("wrote %lld train and %lld test images to %s\n", static_cast<long long>(train),
              static_cast<long long>(test), config.out_dir.c_str());
  return 0;
}

int run_explore(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("explore",
                      "The notebook's exploration of a dataset in the RSNA layout: prints the number of images,\n"
                      "positive images, boxes per image and box sizes, and writes charts as PNG: boxes per image,\n"
                      "box location heatmap over the 1024x1024 frame, box width and height histograms.");
  arguments.option("data", "DIR", "", "dataset directory (RSNA layout)");
  arguments.option("out", "DIR", "explore", "where the charts go");
  if (!arguments.parse(argv)) return 0;
  if (arguments.text("data").empty()) throw Error("--data is required");
  ExploreSummary summary = explore_dataset(arguments.text("data"), arguments.text("out"));
  for (const auto& chart : summary.charts) std::printf("wrote %s\n", chart.c_str());
  return 0;
}

}  // namespace pneumo::cli
