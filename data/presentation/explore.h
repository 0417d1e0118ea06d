// Dataset exploration (the notebook's "Exploration" cell): a dataset folder -> printed figures
// (images, positives, boxes per image, box sizes, classes) and PNG charts in an output folder.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace pneumo {

struct ExploreSummary {
  int64_t train_images = 0;     // .dcm files in the train image folder (the notebook's count)
  int64_t labelled_images = 0;  // distinct patient ids in the label file
  int64_t label_rows = 0;
  int64_t positive_images = 0;  // "Images with pneumonia"
  int64_t boxes = 0;
  std::map<int, int64_t> boxes_per_image;  // boxes -> positive images with that many
  int min_box_width = 0, min_box_height = 0, max_box_width = 0, max_box_height = 0;
  double mean_box_width = 0, mean_box_height = 0, median_box_width = 0, median_box_height = 0;
  int64_t images_without_labels = 0;  // files with no label row
  int64_t labels_without_images = 0;  // label ids with no file
  int64_t test_images = 0;
  std::map<std::string, int64_t> classes;       // class name -> images (when the class file exists)
  int frame_width = 1024, frame_height = 1024;  // the image size the boxes refer to
  std::vector<std::string> charts;              // paths of the PNGs written
};

// Reads the labels (and class file, image folders) of `dataset_dir`, prints the figures to
// `out` and writes into `output_dir` (created if missing): boxes_per_image.png,
// box_location_heatmap.png (sum of box masks over the frame), box_width_histogram.png and
// box_height_histogram.png (bins linspace(0, 1000, 50), like the notebook).
ExploreSummary explore_dataset(const std::string& dataset_dir, const std::string& output_dir, std::FILE* out = stdout);

}  // namespace pneumo
