// Render: DICOM (+ label and predicted boxes) -> PNG for looking at data and predictions.
// Used by the CLI `show` command.
#pragma once
#include <string>
#include <vector>

#include "data/input/dicom.h"
#include "data/input/labels.h"
#include "data/presentation/picture.h"

namespace pneumo {

// Colours: label boxes green, predicted boxes orange with their confidence written above them.
constexpr Color kLabelBoxColor = {40, 220, 40};
constexpr Color kPredictedBoxColor = {255, 140, 0};

// Draws `image` scaled so its longer side is `size` pixels (0 = native size; shrinking uses
// resize_like_skimage, enlarging nearest-neighbour), then the boxes. Boxes are in the image's
// native pixels (the 1024x1024 frame for RSNA) and are scaled with it.
Picture render_image(const Image& image, int size, const std::vector<Box>& label_boxes,
                     const std::vector<ScoredBox>& predicted_boxes);

// read_dicom + render_image + save_png. Errors: pneumo::Error from reading or writing.
void render_dicom(const std::string& dicom_path, const std::string& png_path, int size,
                  const std::vector<Box>& label_boxes, const std::vector<ScoredBox>& predicted_boxes);

}  // namespace pneumo
