// Picture drawing and PNG output. This is the one translation unit with stb_image_write's
// implementation (static, so it cannot clash with another copy).
#include "data/presentation/picture.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "data/presentation/font.h"
#include "engine/check.h"
#include "engine/files.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace pneumo {

Picture::Picture(int width, int height, Color background) : width_(width), height_(height) {
  if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > (int64_t(1) << 28))
    throw Error("Picture: size " + std::to_string(width) + "x" + std::to_string(height) +
                " is not between 1x1 and 2^28 pixels");
  pixels_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

void Picture::set(int x, int y, Color color) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  uint8_t* pixel = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  pixel[0] = color.r;
  pixel[1] = color.g;
  pixel[2] = color.b;
}

Color Picture::get(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    throw Error("Picture::get: (" + std::to_string(x) + ", " + std::to_string(y) + ") is outside the " +
                std::to_string(width_) + "x" + std::to_string(height_) + " canvas");
  const uint8_t* pixel = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  return {pixel[0], pixel[1], pixel[2]};
}

void Picture::fill_rect(int x, int y, int w, int h, Color color) {
  int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
  int64_t x1 = std::min<int64_t>(int64_t(x) + w, width_), y1 = std::min<int64_t>(int64_t(y) + h, height_);
  for (int64_t row = y0; row < y1; ++row)
    for (int64_t column = x0; column < x1; ++column) set(int(column), int(row), color);
}

void Picture::draw_rect(int x, int y, int w, int h, Color color, int thickness) {
  if (w <= 0 || h <= 0 || thickness <= 0) return;
  int t = std::min({thickness, (w + 1) / 2, (h + 1) / 2});
  fill_rect(x, y, w, t, color);          // top
  fill_rect(x, y + h - t, w, t, color);  // bottom
  fill_rect(x, y, t, h, color);          // left
  fill_rect(x + w - t, y, t, h, color);  // right
}

void Picture::draw_line(int x0, int y0, int x1, int y1, Color color, int thickness) {
  if (thickness <= 0) return;
  const int before = (thickness - 1) / 2;
  int64_t dx = std::llabs(int64_t(x1) - x0), dy = -std::llabs(int64_t(y1) - y0);
  int step_x = x0 < x1 ? 1 : -1, step_y = y0 < y1 ? 1 : -1;
  int64_t error = dx + dy;
  int64_t x = x0, y = y0;
  while (true) {
    if (thickness == 1)
      set(int(x), int(y), color);
    else
      fill_rect(int(x) - before, int(y) - before, thickness, thickness, color);
    if (x == x1 && y == y1) break;
    int64_t twice = 2 * error;
    if (twice >= dy) {
      error += dy;
      x += step_x;
    }
    if (twice <= dx) {
      error += dx;
      y += step_y;
    }
  }
}

void Picture::draw_text(int x, int y, const std::string& text, Color color, int scale) {
  if (scale <= 0) return;
  int pen_x = x, pen_y = y;
  for (char character : text) {
    if (character == '\n') {
      pen_x = x;
      pen_y += kLineHeight * scale;
      continue;
    }
    const uint8_t* rows = glyph_rows(character);
    for (int row = 0; row < kGlyphHeight; ++row)
      for (int column = 0; column < kGlyphWidth; ++column)
        if (rows[row] & (1u << (kGlyphWidth - 1 - column)))
          fill_rect(pen_x + column * scale, pen_y + row * scale, scale, scale, color);
    pen_x += kGlyphAdvance * scale;
  }
}

int Picture::text_width(const std::string& text, int scale) {
  size_t widest = 0, current = 0;
  for (char character : text) {
    if (character == '\n')
      current = 0;
    else
      widest = std::max(widest, ++current);
  }
  // The last character's blank column is not part of the text.
  return widest == 0 ? 0 : int(widest) * kGlyphAdvance * scale - (kGlyphAdvance - kGlyphWidth) * scale;
}

int Picture::text_height(int scale) { return kGlyphHeight * scale; }

void Picture::draw_gray(const float* image, int height, int width, int x, int y, int out_width, int out_height) {
  if (height <= 0 || width <= 0 || out_width <= 0 || out_height <= 0) return;
  for (int oy = std::max(0, -y); oy < out_height && y + oy < height_; ++oy) {
    // The source pixel whose area holds the output pixel's centre.
    int source_y = int((int64_t(2 * oy + 1) * height) / (2 * int64_t(out_height)));
    for (int ox = std::max(0, -x); ox < out_width && x + ox < width_; ++ox) {
      int source_x = int((int64_t(2 * ox + 1) * width) / (2 * int64_t(out_width)));
      float value = image[int64_t(source_y) * width + source_x];
      value = std::isnan(value) ? 0.0f : std::min(1.0f, std::max(0.0f, value));
      uint8_t level = static_cast<uint8_t>(std::lround(value * 255.0f));
      set(x + ox, y + oy, {level, level, level});
    }
  }
}

void Picture::save_png(const std::string& path) const {
  const std::vector<uint8_t> bytes = png_bytes();
  write_file_atomic(path, bytes.data(), bytes.size());
}

std::vector<uint8_t> Picture::png_bytes() const { return encode_png(pixels_.data(), width_, height_, 3); }

namespace {
void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}
}  // namespace

std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels) {
  PNEUMO_REQUIRE(width > 0 && height > 0 && (channels == 1 || channels == 3 || channels == 4),
                 "encode_png: bad image size or channel count");
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(append_bytes, &out, width, height, channels, pixels, width * channels))
    throw Error("cannot encode a " + std::to_string(width) + "x" + std::to_string(height) + " PNG");
  return out;
}

}  // namespace pneumo
