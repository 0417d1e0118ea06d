// Picture: an RGB canvas for renders and charts. Draw shapes, text (embedded font) and grey
// images onto it, then save it as PNG (stb_image_write). Everything is clipped to the canvas.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};
inline bool operator==(const Color& a, const Color& b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
inline bool operator!=(const Color& a, const Color& b) { return !(a == b); }

class Picture {
 public:
  Picture(int width, int height, Color background = {0, 0, 0});
  int width() const { return width_; }
  int height() const { return height_; }

  void set(int x, int y, Color color);  // ignored outside the canvas
  Color get(int x, int y) const;        // pneumo::Error outside the canvas
  // A filled rectangle of w x h pixels with top-left (x, y).
  void fill_rect(int x, int y, int w, int h, Color color);
  // The outline of the w x h rectangle at (x, y), `thickness` pixels drawn inwards.
  void draw_rect(int x, int y, int w, int h, Color color, int thickness = 1);
  // A line from (x0, y0) to (x1, y1) inclusive (Bresenham), each point a thickness^2 square.
  void draw_line(int x0, int y0, int x1, int y1, Color color, int thickness = 1);
  // Text with its top-left at (x, y); each font pixel is a scale x scale block; '\n' starts a new
  // line. Characters outside printable ASCII are drawn as '?'.
  void draw_text(int x, int y, const std::string& text, Color color, int scale = 1);
  static int text_width(const std::string& text, int scale = 1);  // widest line, in pixels
  static int text_height(int scale = 1);                          // one line, in pixels
  // Draws a grey image (height,width) in [0,1] (values outside are clamped) into the
  // out_width x out_height rectangle at (x, y), nearest-neighbour scaled.
  void draw_gray(const float* image, int height, int width, int x, int y, int out_width, int out_height);
  // Writes an RGB PNG atomically (temporary file, then rename); pneumo::Error on failure.
  void save_png(const std::string& path) const;
  // The same PNG in memory (e.g. for a data: URI in an HTML page).
  std::vector<uint8_t> png_bytes() const;

  const std::vector<uint8_t>& rgb() const { return pixels_; }  // (H,W,3)

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;  // (H,W,3)
};

// PNG bytes of an 8-bit image (height,width,channels) row-major; channels 1 (grey), 3 (RGB) or 4.
// Throws pneumo::Error when encoding fails.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels);

}  // namespace pneumo
