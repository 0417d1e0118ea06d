// Batch: what the data pipeline hands the engine. Host memory; the trainer copies it to the
// device explicitly. Images are float in [0, 1], masks 0/1, both NHWC with C = 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo {

struct Batch {
  int64_t size = 0;                      // N
  int64_t image_size = 0;                // S (images are S x S)
  std::vector<std::string> patient_ids;  // (N)
  std::vector<float> images;             // (N,S,S,1)
  std::vector<float> masks;              // (N,S,S,1); empty when predicting
};

}  // namespace pneumo
