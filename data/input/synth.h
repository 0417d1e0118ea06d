// Synthetic RSNA-format dataset: seed -> a directory laid out like the Kaggle download (label and
// class CSVs, JPEG-baseline DICOMs of chest-X-ray-like images, sample submission), so every
// command of the project runs without the real data. Same config -> byte-identical files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/input/labels.h"

namespace pneumo {

struct SynthConfig {
  std::string out_dir;
  int train_images = 0;
  int test_images = 0;
  int image_size = 1024;  // images are image_size x image_size; boxes are in these pixels
  uint64_t seed = 0;
  bool show_progress = false;  // a progress bar on stderr (data/input/progress.h)
};

// Writes into out_dir, which must be missing or empty (a non-empty one is a pneumo::Error: files
// replaced one by one would mix two datasets). The files go into "<out_dir>.partial-<pid>" and
// that folder is renamed to out_dir at the end, so a killed run leaves no out_dir; the next run
// removes the partial folders of dead pids. The layout:
//   stage_2_train_labels.csv         patientId,x,y,width,height,Target (floats like "264.0")
//   stage_2_detailed_class_info.csv  patientId,class (one row per label row)
//   stage_2_train_images/<id>.dcm    8-bit MONOCHROME2, JPEG baseline (1.2.840.10008.1.2.4.50)
//   stage_2_test_images/<id>.dcm
//   stage_2_sample_submission.csv    patientId,PredictionString ("0.5 0 0 100 100" each row)
//   synthetic_test_labels.csv        the test images' labels (not in the real layout)
// About a third of the images are positive with 1-4 boxes (mostly 1-2) inside the lungs, each
// with a hazy opacity drawn in it. Images are rendered in parallel (parallel_for).
// Throws pneumo::Error when a file cannot be written.
void write_synthetic_dataset(const SynthConfig& config);

// One synthetic image and its boxes, without writing anything (for tests and previews).
struct SynthImage {
  std::string patient_id;
  std::vector<Box> boxes;       // empty for a negative image
  std::vector<uint8_t> pixels;  // (S,S) 8-bit grey
};
// The index-th image (train images first, then test) of the dataset `config` describes.
SynthImage render_synthetic_image(const SynthConfig& config, int index);

}  // namespace pneumo
