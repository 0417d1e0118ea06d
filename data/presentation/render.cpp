// DICOM -> annotated PNG.
#include "data/presentation/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/input/resize.h"
#include "engine/check.h"

namespace pneumo {

namespace {

// A box in native pixels -> output pixels (same scale on both axes up to rounding).
Box scale_box(const Box& box, double scale_x, double scale_y) {
  Box out;
  out.x = int(std::lround(box.x * scale_x));
  out.y = int(std::lround(box.y * scale_y));
  out.width = std::max(1, int(std::lround((box.x + box.width) * scale_x)) - out.x);
  out.height = std::max(1, int(std::lround((box.y + box.height) * scale_y)) - out.y);
  return out;
}

}  // namespace

Picture render_image(const Image& image, int size, const std::vector<Box>& label_boxes,
                     const std::vector<ScoredBox>& predicted_boxes) {
  PNEUMO_REQUIRE(image.width > 0 && image.height > 0 && image.pixels.size() == size_t(image.width) * image.height,
                 "render_image: empty or inconsistent image");
  if (size < 0) throw Error("render: size must be 0 (native) or positive, got " + std::to_string(size));
  int out_width = image.width, out_height = image.height;
  if (size > 0) {
    double scale = double(size) / std::max(image.width, image.height);
    out_width = std::max(1, int(std::lround(image.width * scale)));
    out_height = std::max(1, int(std::lround(image.height * scale)));
  }
  Picture picture(out_width, out_height);
  if (out_width < image.width || out_height < image.height) {
    std::vector<float> small =
        resize_like_skimage(image.pixels.data(), image.height, image.width, out_height, out_width);
    picture.draw_gray(small.data(), out_height, out_width, 0, 0, out_width, out_height);
  } else {
    picture.draw_gray(image.pixels.data(), image.height, image.width, 0, 0, out_width, out_height);
  }

  const double scale_x = double(out_width) / image.width, scale_y = double(out_height) / image.height;
  const int thickness = std::max(1, std::min(out_width, out_height) / 256);
  const int text_scale = std::max(1, std::min(out_width, out_height) / 400);
  for (const Box& box : label_boxes) {
    Box b = scale_box(box, scale_x, scale_y);
    picture.draw_rect(b.x, b.y, b.width, b.height, kLabelBoxColor, thickness);
  }
  for (const ScoredBox& predicted : predicted_boxes) {
    Box b = scale_box(predicted.box, scale_x, scale_y);
    picture.draw_rect(b.x, b.y, b.width, b.height, kPredictedBoxColor, thickness);
    char text[32];
    std::snprintf(text, sizeof(text), "%.2f", predicted.confidence);
    const int pad = text_scale;
    const int label_width = Picture::text_width(text, text_scale) + 2 * pad;
    const int label_height = Picture::text_height(text_scale) + 2 * pad;
    // Above the box when there is room, otherwise just inside its top edge.
    int label_y = b.y - label_height >= 0 ? b.y - label_height : b.y + thickness;
    int label_x = std::min(std::max(b.x, 0), std::max(0, out_width - label_width));
    picture.fill_rect(label_x, label_y, label_width, label_height, {0, 0, 0});
    picture.draw_text(label_x + pad, label_y + pad, text, kPredictedBoxColor, text_scale);
  }
  return picture;
}

void render_dicom(const std::string& dicom_path, const std::string& png_path, int size,
                  const std::vector<Box>& label_boxes, const std::vector<ScoredBox>& predicted_boxes) {
  render_image(read_dicom(dicom_path), size, label_boxes, predicted_boxes).save_png(png_path);
}

}  // namespace pneumo
