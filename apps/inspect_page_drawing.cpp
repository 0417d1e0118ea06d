#include "apps/inspect_page_drawing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "apps/inspect_page_skeleton.h"
#include "data/presentation/chart.h"
#include "data/presentation/render.h"

namespace pneumo::cli::page {

// Blue (negative) - white (0) - red (positive), t in [-1, 1].
Color signed_color(double t) {
  t = std::clamp(t, -1.0, 1.0);
  const Color blue = {33, 102, 172}, red = {178, 24, 43};
  const Color end = t < 0 ? blue : red;
  const double a = std::fabs(t);
  auto mix = [a](uint8_t to) { return static_cast<uint8_t>(std::lround(255.0 + (to - 255.0) * a)); };
  return {mix(end.r), mix(end.g), mix(end.b)};
}

// Channels 0..7 of one image (H,W,C), each box-averaged down to at most kMaxTile pixels, side by
// side with a 2-pixel gap. Grey from min to max, or (signed) the blue-white-red map from
// -limit to +limit, limit = the 99th percentile of |value| (so a few large values do not wash
// out the rest).
Strip channel_strip(const std::vector<float>& values, int64_t H, int64_t W, int64_t C, bool is_signed) {
  const int tiles = static_cast<int>(std::min<int64_t>(C, kMaxChannels));
  const int factor = static_cast<int>((std::max(H, W) + kMaxTile - 1) / kMaxTile);
  const int th = static_cast<int>(H / factor), tw = static_cast<int>(W / factor);
  std::vector<std::vector<float>> small(static_cast<size_t>(tiles),
                                        std::vector<float>(static_cast<size_t>(th * tw), 0.0f));
  std::vector<float> all;
  for (int c = 0; c < tiles; ++c)
    for (int y = 0; y < th; ++y)
      for (int x = 0; x < tw; ++x) {
        double sum = 0;
        for (int dy = 0; dy < factor; ++dy)
          for (int dx = 0; dx < factor; ++dx)
            sum += values[((static_cast<int64_t>(y) * factor + dy) * W + x * factor + dx) * C + c];
        const float mean = static_cast<float>(sum / (factor * factor));
        small[static_cast<size_t>(c)][static_cast<size_t>(y) * static_cast<size_t>(tw) + static_cast<size_t>(x)] = mean;
        all.push_back(is_signed ? std::fabs(mean) : mean);
      }
  Strip strip;
  strip.tile = tw;
  strip.tiles = tiles;
  strip.width = tiles * tw + (tiles - 1) * 2;
  if (is_signed) {
    std::vector<float> sorted = all;
    const size_t at = std::min(sorted.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(sorted.size())));
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(at), sorted.end());
    double limit = sorted[at];
    if (!(limit > 0)) limit = *std::max_element(all.begin(), all.end());
    if (!(limit > 0)) limit = 1;
    strip.low = -limit;
    strip.high = limit;
  } else {
    strip.low = *std::min_element(all.begin(), all.end());
    strip.high = *std::max_element(all.begin(), all.end());
  }
  const int channels = is_signed ? 3 : 1;
  std::vector<uint8_t> pixels(static_cast<size_t>(strip.width * th * channels), 255);
  const double span = strip.high > strip.low ? strip.high - strip.low : 1.0;
  for (int c = 0; c < tiles; ++c)
    for (int y = 0; y < th; ++y)
      for (int x = 0; x < tw; ++x) {
        const float value =
            small[static_cast<size_t>(c)][static_cast<size_t>(y) * static_cast<size_t>(tw) + static_cast<size_t>(x)];
        uint8_t* pixel = pixels.data() + (static_cast<size_t>(y) * strip.width + c * (tw + 2) + x) * channels;
        if (is_signed) {
          const Color color = signed_color(value / strip.high);
          pixel[0] = color.r;
          pixel[1] = color.g;
          pixel[2] = color.b;
        } else {
          pixel[0] = static_cast<uint8_t>(std::lround(std::clamp((value - strip.low) / span, 0.0, 1.0) * 255.0));
        }
      }
  strip.uri = png_uri(encode_png(pixels.data(), strip.width, th, channels));
  return strip;
}

std::string strip_html(const Strip& strip, bool is_signed, const std::string& what) {
  const double scale = static_cast<double>(kTileDisplay) / strip.tile;
  std::string html = img(strip.uri, static_cast<int>(std::lround(strip.width * scale)), what, "map");
  html += "<div class=\"scale\"><span>" + number(strip.low) + "</span><span class=\"bar " +
          std::string(is_signed ? "signed" : "grey") + "\"></span><span>" + number(strip.high) + "</span> <small>" +
          (is_signed ? "blue negative, white 0, red positive (clipped at the 99th percentile of |value|)"
                     : "black = lowest, white = highest value shown") +
          "; channels 0-" + std::to_string(strip.tiles - 1) + "</small></div>";
  return html;
}

// A (height,width) map as a picture: grey in [0,1], viridis, or a label image in colours.
std::string grey_uri(const std::vector<float>& values, int height, int width) {
  std::vector<uint8_t> pixels(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(values[i], 0.0f, 1.0f) * 255.0f));
  return png_uri(encode_png(pixels.data(), width, height, 1));
}

std::string viridis_uri(const std::vector<float>& values, int height, int width) {
  std::vector<uint8_t> pixels(values.size() * 3);
  for (size_t i = 0; i < values.size(); ++i) {
    const Color color = viridis(std::clamp(static_cast<double>(values[i]), 0.0, 1.0));
    pixels[3 * i] = color.r;
    pixels[3 * i + 1] = color.g;
    pixels[3 * i + 2] = color.b;
  }
  return png_uri(encode_png(pixels.data(), width, height, 3));
}

// Labels (H,W) -> colours (0 = black), nearest-neighbour down to at most `size` pixels.
std::string labels_uri(const std::vector<int32_t>& labels, int height, int width, int size) {
  const int out_w = std::min(width, size), out_h = std::min(height, size);
  static const Color palette[] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},  {245, 130, 48},
                                  {145, 30, 180}, {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {250, 190, 212}};
  std::vector<uint8_t> pixels(static_cast<size_t>(out_w * out_h * 3), 0);
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x) {
      const int32_t label = labels[static_cast<size_t>(y * height / out_h) * static_cast<size_t>(width) +
                                   static_cast<size_t>(x * width / out_w)];
      if (label == 0) continue;
      const Color color = palette[(label - 1) % 10];
      uint8_t* pixel = pixels.data() + (static_cast<size_t>(y) * out_w + x) * 3;
      pixel[0] = color.r;
      pixel[1] = color.g;
      pixel[2] = color.b;
    }
  return png_uri(encode_png(pixels.data(), out_w, out_h, 3));
}
// Bars of a histogram, heights log10(1 + count) so rare values stay visible next to a spike.
std::string svg_histogram(const TensorStatistics& statistics, const std::string& color, const std::string& title) {
  const int width = 320, height = 120, left = 8, right = 8, top = 18, bottom = 22;
  const int plot_w = width - left - right, plot_h = height - top - bottom;
  std::string svg = "<svg class=\"hist\" width=\"" + std::to_string(width) + "\" height=\"" + std::to_string(height) +
                    "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>" + html_escape(title) + "</title>";
  svg += "<text x=\"" + std::to_string(left) + "\" y=\"12\" class=\"t\">" + html_escape(title) + "</text>";
  double top_value = 0;
  for (double count : statistics.counts) top_value = std::max(top_value, std::log10(1.0 + count));
  const size_t bins = statistics.counts.size();
  for (size_t b = 0; b < bins && top_value > 0; ++b) {
    const double h = std::log10(1.0 + statistics.counts[b]) / top_value * plot_h;
    char rect[200];
    std::snprintf(rect, sizeof rect, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                  left + plot_w * static_cast<double>(b) / bins, top + plot_h - h,
                  plot_w / static_cast<double>(bins) - 0.5, h, color.c_str());
    svg += rect;
  }
  const int axis_y = top + plot_h;
  svg += "<line x1=\"" + std::to_string(left) + "\" y1=\"" + std::to_string(axis_y) + "\" x2=\"" +
         std::to_string(left + plot_w) + "\" y2=\"" + std::to_string(axis_y) + "\" stroke=\"#444\"/>";
  if (statistics.min < 0 && statistics.max > 0) {
    const double x = left + plot_w * (-statistics.min) / (statistics.max - statistics.min);
    svg += "<line x1=\"" + number(x, 5) + "\" y1=\"" + std::to_string(top) + "\" x2=\"" + number(x, 5) + "\" y2=\"" +
           std::to_string(axis_y + 4) + "\" stroke=\"#888\" stroke-dasharray=\"2,2\"/>";
  }
  svg += "<text x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(height - 6) + "\" class=\"a\">" +
         number(statistics.min) + "</text>";
  svg += "<text x=\"" + std::to_string(left + plot_w) + "\" y=\"" + std::to_string(height - 6) +
         "\" class=\"a\" text-anchor=\"end\">" + number(statistics.max) + "</text></svg>";
  return svg;
}
}  // namespace pneumo::cli::page
