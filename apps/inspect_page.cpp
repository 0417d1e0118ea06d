// The inspect pages: plain HTML + CSS, pictures as base64 PNG data: URIs, charts as inline SVG.
#include "apps/inspect_page.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "data/chart.h"
#include "data/picture.h"
#include "data/postprocess.h"
#include "data/render.h"
#include "data/resize.h"
#include "engine/check.h"
#include "kernels/connected_components.h"

namespace pneumo::cli {

namespace {

constexpr int kMaxChannels = 8;   // channels drawn per node
constexpr int kMaxTile = 64;      // stored tile side (pixels); larger maps are box-averaged down
constexpr int kTileDisplay = 84;  // displayed tile side (CSS pixels)

// ---- text -----------------------------------------------------------------------------------

std::string number(double value, int digits = 4) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", digits, value);
  return text;
}

// A number the tests read back: data-stat="key" with 9 significant digits; shown with 4.
std::string stat(const std::string& key, double value) {
  char exact[64];
  std::snprintf(exact, sizeof exact, "%.9g", value);
  return "<span data-stat=\"" + key + "\" data-value=\"" + exact + "\">" + number(value) + "</span>";
}

std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ',';
    out += digits[i];
  }
  return out;
}

std::string shape_text(const Shape& shape) { return shape_string(shape); }

std::string flops_text(int64_t flops) {
  const double value = static_cast<double>(flops);
  if (value >= 1e9) return number(value * 1e-9, 3) + " GFLOP";
  if (value >= 1e6) return number(value * 1e-6, 3) + " MFLOP";
  return number(value * 1e-3, 3) + " kFLOP";
}

// ---- pictures -------------------------------------------------------------------------------

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b0 = bytes[i], b1 = i + 1 < bytes.size() ? bytes[i + 1] : 0,
                   b2 = i + 2 < bytes.size() ? bytes[i + 2] : 0;
    const uint32_t triple = (b0 << 16) | (b1 << 8) | b2;
    out += alphabet[(triple >> 18) & 63];
    out += alphabet[(triple >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(triple >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[triple & 63] : '=';
  }
  return out;
}

std::string png_uri(const std::vector<uint8_t>& png) { return "data:image/png;base64," + base64(png); }

std::string img(const std::string& uri, int display_width, const std::string& alt, const std::string& css_class = "") {
  return "<img class=\"" + css_class + "\" src=\"" + uri + "\" width=\"" + std::to_string(display_width) + "\" alt=\"" +
         html_escape(alt) + "\"/>";
}

// Blue (negative) - white (0) - red (positive), t in [-1, 1].
Color signed_color(double t) {
  t = std::clamp(t, -1.0, 1.0);
  const Color blue = {33, 102, 172}, red = {178, 24, 43};
  const Color end = t < 0 ? blue : red;
  const double a = std::fabs(t);
  auto mix = [a](uint8_t to) { return static_cast<uint8_t>(std::lround(255.0 + (to - 255.0) * a)); };
  return {mix(end.r), mix(end.g), mix(end.b)};
}

struct Strip {
  std::string uri;
  int width = 0, tile = 0, tiles = 0;  // stored pixels
  double low = 0, high = 0;            // value at black / white (grey) or -limit / +limit (signed)
};

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

// ---- SVG charts -------------------------------------------------------------------------------

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

struct LineSeriesSvg {
  std::string name;
  std::string color;
  std::vector<double> x, y;
};

// Lines over steps; log_y draws log10 of positive values (non-positive points are skipped).
std::string svg_lines(const std::string& title, const std::string& y_label, const std::vector<LineSeriesSvg>& series,
                      bool log_y, bool unit_range = false) {
  const int width = 920, height = 340, left = 70, right = 20, top = 28, bottom = 40;
  const int plot_w = width - left - right, plot_h = height - top - bottom;
  double x_min = 1e300, x_max = -1e300, y_min = 1e300, y_max = -1e300;
  auto transform = [log_y](double v) { return log_y ? std::log10(v) : v; };
  for (const auto& line : series)
    for (size_t i = 0; i < line.x.size(); ++i) {
      if (log_y && !(line.y[i] > 0)) continue;
      if (!chartable(line.x[i]) || !chartable(line.y[i])) continue;  // non-finite or beyond +-1e300 (data/chart.h)
      x_min = std::min(x_min, line.x[i]);
      x_max = std::max(x_max, line.x[i]);
      y_min = std::min(y_min, transform(line.y[i]));
      y_max = std::max(y_max, transform(line.y[i]));
    }
  std::string svg = "<svg class=\"lines\" width=\"" + std::to_string(width) + "\" height=\"" + std::to_string(height) +
                    "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>" + html_escape(title) + "</title>";
  svg += "<text x=\"" + std::to_string(left) + "\" y=\"18\" class=\"t\">" + html_escape(title) + "</text>";
  if (x_min > x_max) return svg + "<text x=\"80\" y=\"80\" class=\"a\">no data</text></svg>";
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max == y_min) {
    y_max += 0.5;
    y_min -= 0.5;
  }
  if (log_y) {
    y_min = std::floor(y_min);
    y_max = std::ceil(y_max);
  }
  if (unit_range) {  // shares: always the whole 0..1
    y_min = 0;
    y_max = 1;
  }
  auto px = [&](double v) { return left + plot_w * (v - x_min) / (x_max - x_min); };
  auto py = [&](double v) { return top + plot_h - plot_h * (v - y_min) / (y_max - y_min); };
  std::vector<double> y_ticks;
  if (log_y)
    for (double e = y_min; e <= y_max + 1e-9; e += std::max(1.0, std::ceil((y_max - y_min) / 8))) y_ticks.push_back(e);
  else
    y_ticks = nice_ticks(y_min, y_max, 6);
  for (double tick : y_ticks) {
    if (tick < y_min - 1e-12 || tick > y_max + 1e-12) continue;
    const std::string y = number(py(tick), 6);
    svg += "<line x1=\"" + std::to_string(left) + "\" y1=\"" + y + "\" x2=\"" + std::to_string(left + plot_w) +
           "\" y2=\"" + y + "\" stroke=\"#e4e4e4\"/>";
    svg += "<text x=\"" + std::to_string(left - 6) + "\" y=\"" + number(py(tick) + 4, 6) +
           "\" class=\"a\" text-anchor=\"end\">" + (log_y ? "1e" + number(tick, 3) : number(tick, 3)) + "</text>";
  }
  for (double tick : nice_ticks(x_min, x_max, 8)) {
    if (tick < x_min - 1e-9 || tick > x_max + 1e-9) continue;
    svg += "<text x=\"" + number(px(tick), 6) + "\" y=\"" + std::to_string(top + plot_h + 16) +
           "\" class=\"a\" text-anchor=\"middle\">" + number(tick, 6) + "</text>";
  }
  svg += "<text x=\"" + std::to_string(left + plot_w / 2) + "\" y=\"" + std::to_string(height - 4) +
         "\" class=\"a\" text-anchor=\"middle\">Adam step</text>";
  svg += "<text x=\"14\" y=\"" + std::to_string(top + plot_h / 2) +
         "\" class=\"a\" text-anchor=\"middle\" transform=\"rotate(-90 14 " + std::to_string(top + plot_h / 2) +
         ")\">" + html_escape(y_label) + "</text>";
  svg += "<rect x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(top) + "\" width=\"" +
         std::to_string(plot_w) + "\" height=\"" + std::to_string(plot_h) + "\" fill=\"none\" stroke=\"#444\"/>";
  for (const auto& line : series) {
    std::string points;
    for (size_t i = 0; i < line.x.size(); ++i) {
      if ((log_y && !(line.y[i] > 0)) || !chartable(line.x[i]) || !chartable(line.y[i])) continue;
      points += number(px(line.x[i]), 6) + "," + number(py(transform(line.y[i])), 6) + " ";
    }
    svg += "<polyline fill=\"none\" stroke=\"" + line.color + "\" stroke-width=\"1.3\" points=\"" + points +
           "\"><title>" + html_escape(line.name) + "</title></polyline>";
  }
  return svg + "</svg>";
}

std::string css_color(Color color) {
  char text[16];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", color.r, color.g, color.b);
  return text;
}

const char* kStyle = R"(
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f6f6f3;color:#1d1d1d;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:28px;margin:10px 0 4px}h2{font-size:22px;margin:34px 0 6px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:18px;margin:0 0 4px}h4{font-size:13px;margin:6px 0 4px;color:#444;font-weight:600}
p.what{margin:2px 0 8px;color:#333;max-width:980px}
.note{background:#fffbe6;border:1px solid #eadc9a;padding:8px 12px;border-radius:6px;max-width:1040px}
table{border-collapse:collapse;font-size:13px;margin:4px 0}td,th{padding:2px 8px;border-bottom:1px solid #e3e3e3;text-align:right}
th{background:#eee;font-weight:600}td:first-child,th:first-child{text-align:left}
.flow{display:flex;flex-wrap:wrap;gap:6px 4px;align-items:stretch}
.card{display:block;width:128px;padding:5px 6px;border-radius:6px;background:#fff;border:1px solid #ccc;border-left:6px solid #999;
 font-size:11px;text-decoration:none;color:#222}
.card b{font-size:12px;display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.card .time{height:4px;background:#e35d3a;margin-top:3px;border-radius:2px}
.arrow{align-self:center;color:#999;font-size:14px}
.k-Conv2d{border-left-color:#3a6fd8}.k-BatchNorm2d{border-left-color:#2aa876}.k-LeakyReLU{border-left-color:#e3a21a}
.k-MaxPool2d{border-left-color:#8e5ad6}.k-Add{border-left-color:#d6455d}.k-Sigmoid{border-left-color:#16a3b8}
.k-Upsample{border-left-color:#7a7a7a}.k-image{border-left-color:#000}.k-boxes{border-left-color:#ff8c00}
section.node{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:14px 0}
.kind{font-weight:400;color:#666;font-size:14px;margin-left:6px}
.facts{font-size:13px;color:#444;margin-bottom:6px}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.panel{min-width:330px}
img.map{image-rendering:pixelated;display:block;border:1px solid #ccc;height:auto}
img.pic{display:block;border:1px solid #ccc;image-rendering:pixelated}
.scale{font-size:12px;display:flex;align-items:center;gap:6px;margin:2px 0 4px}
.bar{display:inline-block;width:120px;height:10px;border:1px solid #999}
.bar.grey{background:linear-gradient(to right,#000,#fff)}
.bar.signed{background:linear-gradient(to right,#2166ac,#fff,#b2182b)}
.bar.viridis{background:linear-gradient(to right,#440154,#3b528b,#21918c,#5ec962,#fde725)}
.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f3f3f0;padding:6px 8px;border-radius:5px;margin-top:8px}
svg text.t{font-size:12px;font-weight:600;fill:#333}svg text.a{font-size:11px;fill:#444}
.pictures{display:flex;flex-wrap:wrap;gap:14px}.pictures figure{margin:0}.pictures figcaption{font-size:12px;color:#444;max-width:260px}
.big{font-size:20px;font-weight:600}
)";

std::string page_start(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>" + html_escape(title) +
         "</title><style>" + kStyle + "</style></head><body><main>\n";
}

// What a learner should look at in a node of this kind.
std::string explanation(const std::string& kind) {
  if (kind == "Conv2d")
    return "A convolution: every output channel is one learned filter slid over all input channels. Look for "
           "channels that pick out edges, the lungs or the bright opacities, and compare the size of the "
           "update with the size of the weight: a healthy ratio is roughly 1e-4 to 1e-2 per step (Adam's first "
           "steps move every weight by about the learning rate, so a fresh network starts higher).";
  if (kind == "BatchNorm2d")
    return "Batch normalisation: each channel is shifted and scaled to mean 0 and variance 1 over the batch "
           "(then by the learned gamma and beta). Compare the batch statistics of this step with the running "
           "statistics that inference will use: large differences mean inference sees different inputs.";
  if (kind == "LeakyReLU")
    return "The activation: negative values become slope x value (the notebook's slope is 0, a plain ReLU). "
           "Look at the share of zeros: a channel that is zero everywhere passes no gradient back (a dead unit), "
           "and its gradient picture is white.";
  if (kind == "MaxPool2d")
    return "2x2 max pooling halves the resolution: the gradient flows back only to the largest value of each "
           "2x2 window, so its picture is sparse.";
  if (kind == "Add")
    return "The residual connection: the block's output is its input plus the two convolutions' result, so "
           "the gradient reaches the block input twice, once through the block and once directly.";
  if (kind == "Sigmoid")
    return "The sigmoid turns scores into probabilities in (0, 1). Its gradient p(1 - p) is small where the "
           "network is already sure, so confident pixels learn little.";
  if (kind == "Upsample")
    return "Nearest-neighbour upsampling back to the input size: each value is copied to a block, and the "
           "gradient of a block is summed back. Its gradient is d loss / d probabilities, where the backward pass "
           "starts.";
  return "";
}

std::string relative_link(const InspectSource& source, const std::string& path_in_repository) {
  namespace fs = std::filesystem;
  if (source.repository.empty()) return path_in_repository;
  fs::path relative = fs::path(source.repository).lexically_relative(fs::path(source.page_directory));
  if (relative.empty()) return source.repository + "/" + path_in_repository;
  return (relative / path_in_repository).generic_string();
}

std::string teaching_link(const InspectSource& source, const std::string& path) {
  return "<a href=\"" + html_escape(relative_link(source, path)) + "\">" + html_escape(path) + "</a>";
}

// ---- sections -----------------------------------------------------------------------------

std::string flow_section(const InspectedStep& step) {
  double slowest = 0;
  for (const auto& node : step.nodes) slowest = std::max(slowest, node.forward_ms + node.backward_ms);
  std::string html =
      "<h2 id=\"flow\">1. The network as a flow: image to boxes</h2><p class=\"what\">Every box is one node, in the "
      "order the forward pass runs them (backward runs them in reverse). The red bar is the node's measured forward + "
      "backward time relative to the slowest node; colours are layer kinds. Click a node to jump to its section. "
      "Residual <b>add</b> nodes also take the block's input (named on the card).</p><div class=\"flow\">";
  html += "<div class=\"card k-image\"><b>image</b>(" + std::to_string(step.batch) + "," +
          std::to_string(step.image_size) + "," + std::to_string(step.image_size) + ",1)<br/>X-ray, resized</div>";
  for (const auto& node : step.nodes) {
    html += "<span class=\"arrow\">&#8594;</span><a class=\"card k-" + node.kind + "\" href=\"#node-" +
            html_escape(node.name) + "\" title=\"" + html_escape(node.name) + "\"><b>" + html_escape(node.name) +
            "</b>" + node.kind + "<br/>" + shape_text(node.output_shape) + "<br/>" + with_commas(node.parameter_count) +
            " params<br/>" + flops_text(node.flops) + "<br/>fwd " + number(node.forward_ms, 3) + " ms, bwd " +
            number(node.backward_ms, 3) + " ms";
    if (node.inputs.size() > 1 && node.inputs[1] >= 0)
      html += "<br/>+ " + html_escape(step.nodes[static_cast<size_t>(node.inputs[1])].name);
    const double share = slowest > 0 ? (node.forward_ms + node.backward_ms) / slowest : 0;
    html += "<div class=\"time\" style=\"width:" + number(100 * share, 3) + "%\"></div></a>";
  }
  html +=
      "<span class=\"arrow\">&#8594;</span><a class=\"card k-boxes\" href=\"#boxes\"><b>boxes</b>threshold, connected "
      "components, one box each</a></div>";
  return html;
}

std::string boxes_section(const InspectedStep& step, const InspectSource& source) {
  const int S = static_cast<int>(step.image_size);
  const int H0 = source.native.height, W0 = source.native.width;
  PostprocessOptions options;
  options.threshold = static_cast<float>(source.threshold);
  options.output_height = H0;
  options.output_width = W0;
  const std::vector<ScoredBox> predicted = boxes_from_probability_map(step.probabilities.data(), S, S, options);
  const std::vector<float> resized = resize_like_skimage(step.probabilities.data(), S, S, H0, W0);
  std::vector<uint8_t> mask(resized.size());
  std::vector<float> mask_picture(resized.size());
  for (size_t i = 0; i < resized.size(); ++i) {
    mask[i] = resized[i] > options.threshold;
    mask_picture[i] = mask[i];
  }
  std::vector<int32_t> labels(resized.size());
  const int components = label_components_cpu(mask.data(), H0, W0, labels.data());
  // Display copies of the native-size maps at the network's size (nearest).
  std::vector<float> mask_small(static_cast<size_t>(S) * S);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x)
      mask_small[static_cast<size_t>(y) * static_cast<size_t>(S) + static_cast<size_t>(x)] =
          mask_picture[static_cast<size_t>(y * H0 / S) * static_cast<size_t>(W0) + static_cast<size_t>(x * W0 / S)];

  const int display = 256;
  std::string html =
      "<h2 id=\"boxes\">2. From probabilities to boxes: the loss and the prediction</h2><p class=\"what\">The loss of "
      "this "
      "step is 0.5 &#215; BCE + 0.5 &#215; IoU loss (layers/loss.md); the BCE term asks every pixel to be right, the "
      "IoU term "
      "asks the predicted region to overlap the true one. Then, as <code>pneumo predict</code> does, the probability "
      "map is "
      "resized to the X-ray's own size, thresholded, split into 8-connected components, and each component becomes one "
      "box "
      "whose confidence is the mean probability inside it. Compare the orange boxes with the green true boxes.</p>";
  html += "<table><tr><th>term</th><th>value</th></tr>";
  html += "<tr><td>loss = 0.5 BCE + 0.5 IoU loss</td><td class=\"big\">" + stat("loss", step.loss.loss) + "</td></tr>";
  html += "<tr><td>BCE (mean binary cross-entropy)</td><td>" + stat("bce", step.loss.bce) + "</td></tr>";
  html +=
      "<tr><td>IoU loss (1 - soft IoU over the batch)</td><td>" + stat("iou_loss", step.loss.iou_loss) + "</td></tr>";
  html += "<tr><td>pixel accuracy (p &gt; 0.5)</td><td>" + stat("accuracy", step.metrics.accuracy) + "</td></tr>";
  html += "<tr><td>mean IoU (the notebook's metric)</td><td>" + stat("mean_iou", step.metrics.mean_iou) +
          "</td></tr></table>";

  Image native = source.native;
  const Picture truth = render_image(native, 320, source.true_boxes, {});
  const Picture prediction = render_image(native, 320, {}, predicted);
  html += "<div class=\"pictures\">";
  auto figure = [&](const std::string& uri, int width, const std::string& caption) {
    html += "<figure>" + img(uri, width, caption, "pic") + "<figcaption>" + caption + "</figcaption></figure>";
  };
  figure(grey_uri(step.image, S, S), display,
         "what the network sees: the X-ray resized to " + std::to_string(S) + "x" + std::to_string(S));
  figure(grey_uri(step.mask, S, S), display, "the target: the true boxes as a 0/1 mask");
  figure(viridis_uri(step.probabilities, S, S), display,
         "the probability map (sigmoid output, before this step's update), dark 0 to yellow 1");
  figure(grey_uri(mask_small, S, S), display,
         "thresholded at p &gt; " + number(source.threshold) + " (after resizing to " + std::to_string(W0) + "x" +
             std::to_string(H0) + ")");
  figure(labels_uri(labels, H0, W0, display), display,
         std::to_string(components) + " connected component" + (components == 1 ? "" : "s") +
             " (8-connected), one colour each");
  figure(png_uri(truth.png_bytes()), truth.width(),
         "true boxes (green), " + std::to_string(source.true_boxes.size()) + " in the label file");
  std::string predicted_caption =
      "predicted boxes (orange) with their confidence, " + std::to_string(predicted.size()) + " found";
  figure(png_uri(prediction.png_bytes()), prediction.width(), predicted_caption);
  html +=
      "</div><table><tr><th>predicted "
      "box</th><th>x</th><th>y</th><th>width</th><th>height</th><th>confidence</th></tr>";
  constexpr size_t kMaxRows = 12;
  for (size_t i = 0; i < std::min(predicted.size(), kMaxRows); ++i) {
    const Box& box = predicted[i].box;
    html += "<tr><td>" + std::to_string(i + 1) + "</td><td>" + std::to_string(box.x) + "</td><td>" +
            std::to_string(box.y) + "</td><td>" + std::to_string(box.width) + "</td><td>" + std::to_string(box.height) +
            "</td><td>" + number(predicted[i].confidence) + "</td></tr>";
  }
  if (predicted.size() > kMaxRows)
    html += "<tr><td>... " + std::to_string(predicted.size() - kMaxRows) +
            " more</td><td></td><td></td><td></td><td></td><td></td></tr>";
  for (const Box& box : source.true_boxes)
    html += "<tr><td>true box</td><td>" + std::to_string(box.x) + "</td><td>" + std::to_string(box.y) + "</td><td>" +
            std::to_string(box.width) + "</td><td>" + std::to_string(box.height) + "</td><td></td></tr>";
  html += "</table>";
  return html;
}

std::string node_section(const InspectedStep& step, const NodeRecord& node, const InspectSource& source) {
  const int64_t H = node.output_shape[1], W = node.output_shape[2], C = node.output_shape[3];
  const LayerFunctions functions = layer_functions(node.kind, step.device);
  std::string html = "<section class=\"node\" id=\"node-" + html_escape(node.name) + "\" data-node=\"" +
                     html_escape(node.name) + "\"><h3>" + html_escape(node.name) + "<span class=\"kind\">" + node.kind +
                     "</span></h3><p class=\"what\">" + explanation(node.kind) + "</p>";
  std::string inputs;
  for (int input : node.inputs)
    inputs += (inputs.empty() ? "" : " + ") +
              (input < 0 ? std::string("image") : step.nodes[static_cast<size_t>(input)].name);
  html += "<div class=\"facts\">input " + html_escape(inputs) + " &#183; output " + shape_text(node.output_shape) +
          " &#183; " + with_commas(node.parameter_count) + " parameters &#183; " + with_commas(node.flops) +
          " FLOPs &#183; forward " + stat("forward_ms", node.forward_ms) + " ms, backward " +
          stat("backward_ms", node.backward_ms) + " ms</div>";

  html += "<div class=\"row\"><div class=\"panel\"><h4>output for this X-ray</h4>" +
          strip_html(channel_strip(node.output, H, W, C, false), false, node.name + " output") +
          "</div><div class=\"panel\">" +
          svg_histogram(node.activation, "#4272c4",
                        "all " + with_commas(node.activation.count) + " output values (log height)") +
          "<table><tr><th>output</th><th>value</th></tr><tr><td>mean</td><td>" +
          stat("activation_mean", node.activation.mean) + "</td></tr><tr><td>standard deviation</td><td>" +
          stat("activation_std", node.activation.std) + "</td></tr><tr><td>min / max</td><td>" +
          stat("activation_min", node.activation.min) + " / " + stat("activation_max", node.activation.max) +
          "</td></tr><tr><td>share of zeros</td><td>" + stat("zero_fraction", node.activation.zero_fraction) +
          "</td></tr>";
  if (node.kind == "LeakyReLU")
    html += "<tr><td>dead channels (0 everywhere)</td><td>" +
            stat("dead_channel_fraction", node.dead_channel_fraction) + "</td></tr>";
  html += "</table></div></div>";

  html +=
      "<div class=\"row\"><div class=\"panel\"><h4>d loss / d output: where a change of this output would change the "
      "loss</h4>" +
      strip_html(channel_strip(node.output_gradient, H, W, C, true), true, node.name + " gradient") +
      "</div><div class=\"panel\">" + svg_histogram(node.gradient, "#b2182b", "d loss / d output values (log height)") +
      "<table><tr><th>gradient</th><th>value</th></tr><tr><td>L2 norm</td><td>" +
      stat("gradient_norm", node.gradient.norm) + "</td></tr><tr><td>min / max</td><td>" +
      stat("gradient_min", node.gradient.min) + " / " + stat("gradient_max", node.gradient.max) +
      "</td></tr></table></div></div>";

  if (!node.parameters.empty()) {
    html +=
        "<h4>parameters: this step's gradient and Adam update</h4><table><tr><th>parameter</th><th>shape</th><th>|w| "
        "(before)</th>"
        "<th>|d loss / d w|</th><th>|update|</th><th>|update| / |w|</th></tr>";
    for (const ParameterRecord& parameter : node.parameters) {
      const std::string key = parameter.name.substr(node.name.size() + 1);
      html += "<tr><td>" + html_escape(parameter.name) + "</td><td>" + shape_text(parameter.shape) + "</td><td>" +
              stat(key + ".weight_norm", parameter.weight.norm) + "</td><td>" +
              stat(key + ".gradient_norm", parameter.gradient_norm) + "</td><td>" +
              stat(key + ".update_norm", parameter.update_norm) + "</td><td>" +
              stat(key + ".update_ratio", parameter.update_ratio) + "</td></tr>";
    }
    html += "</table><div class=\"row\">";
    for (const ParameterRecord& parameter : node.parameters)
      html += "<div class=\"panel\">" + svg_histogram(parameter.weight, "#2aa876", "weights of " + parameter.name) +
              "</div>";
    html += "</div>";
  }

  if (node.is_batch_norm) {
    const BatchNormRecord& bn = node.batch_norm;
    const size_t shown = std::min<size_t>(bn.batch_mean.size(), kMaxChannels);
    html += "<h4>batch statistics (this forward) beside running statistics (inference), channels 0-" +
            std::to_string(shown - 1) + " of " + std::to_string(bn.batch_mean.size()) +
            "</h4><table><tr><th>channel</th><th>batch mean</th><th>running mean before &#8594; after</th><th>batch "
            "variance</th>"
            "<th>running variance before &#8594; after</th></tr>";
    for (size_t c = 0; c < shown; ++c)
      html += "<tr><td>" + std::to_string(c) + "</td><td>" + stat("batch_mean." + std::to_string(c), bn.batch_mean[c]) +
              "</td><td>" + number(bn.running_mean_before[c]) + " &#8594; " + number(bn.running_mean_after[c]) +
              "</td><td>" + stat("batch_variance." + std::to_string(c), bn.batch_variance[c]) + "</td><td>" +
              number(bn.running_variance_before[c]) + " &#8594; " + number(bn.running_variance_after[c]) + "</td></tr>";
    html += "</table>";
  }
  html += "<div class=\"code\">forward: " + html_escape(functions.forward) +
          "<br/>backward: " + html_escape(functions.backward) +
          "<br/>read: " + teaching_link(source, functions.teaching_page) + "</div></section>\n";
  return html;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

LayerFunctions layer_functions(const std::string& kind, Device device) {
  const bool cpu = device == Device::CPU;
  const std::string b = cpu ? "_cpu" : "_cuda";
  if (kind == "Conv2d")
    return {
        cpu ? "Conv2d::forward_cpu -> conv2d_forward_cpu -> conv3x3_single_channel_forward_cpu (1 input channel) | "
              "pad_image_cpu + conv_direct_cpu (direct 3x3 / 1x1) | im2col_same_cpu + cpu_sgemm"
            : "Conv2d::forward_cuda -> conv2d_forward_cuda -> cudnnConvolutionForward (+ cudnnAddTensor for the bias)",
        cpu ? "Conv2d::backward_cpu -> conv2d_backward_cpu -> cpu_sgemm | conv_direct_cpu (input gradient); "
              "conv_weight_gradient_direct_cpu | conv3x3_single_channel_weight_gradient_cpu | im2col_same_cpu + "
              "cpu_sgemm "
              "(weight gradient); accumulate_bias_gradient_cpu"
            : "Conv2d::backward_cuda -> conv2d_backward_cuda -> cudnnConvolutionBackwardData, "
              "cudnnConvolutionBackwardFilter",
        "layers/conv2d.md"};
  if (kind == "BatchNorm2d")
    return {"BatchNorm2d::forward" + b + " -> batch_norm_training_statistics" + b +
                " (batch_norm_mean, batch_norm_biased_variance, "
                "batch_norm_inverse_std, batch_norm_running_update) + batch_norm_normalize" +
                b + " (batch_norm_output)",
            "BatchNorm2d::backward" + b + " -> batch_norm_backward" + b + " (batch_norm_input_gradient)",
            "layers/batch_norm.md"};
  if (kind == "LeakyReLU")
    return {"LeakyReLU::forward" + b + " -> leaky_relu_forward" + b + " -> leaky_relu (kernels/activation_math.h)",
            "LeakyReLU::backward" + b + " -> leaky_relu_backward" + b + " -> leaky_relu_gradient",
            "layers/leaky_relu.md"};
  if (kind == "MaxPool2d")
    return {"MaxPool2d::forward" + b + " -> max_pool_forward" + b + " -> max_pool_max (kernels/resample_math.h)",
            "MaxPool2d::backward" + b + " -> max_pool_backward" + b + " -> max_pool_route_gradient",
            "layers/max_pool.md"};
  if (kind == "Upsample")
    return {
        "Upsample::forward" + b + " -> upsample_forward" + b + " -> upsample_source_index (kernels/resample_math.h)",
        "Upsample::backward" + b + " -> upsample_backward" + b, "layers/upsample.md"};
  if (kind == "Sigmoid")
    return {"Sigmoid::forward" + b + " -> sigmoid_forward" + b + " -> sigmoid (kernels/activation_math.h)",
            "Sigmoid::backward" + b + " -> sigmoid_backward" + b + " -> sigmoid_gradient", "layers/sigmoid.md"};
  if (kind == "Add")
    return {"Add::forward" + b + " -> add_forward" + b,
            "Add::backward" + b + " -> " + (cpu ? "add_backward_both_cpu | add_backward_cpu" : "add_backward_cuda"),
            "layers/add.md"};
  return {kind + "::forward" + b, kind + "::backward" + b, "layers/layer.h"};
}

std::string inspect_page_html(const InspectedStep& step, const InspectSource& source) {
  PNEUMO_REQUIRE(!step.nodes.empty(), "inspect page: no nodes");
  std::string html = page_start("pneumo inspect: one training step, layer by layer");
  html +=
      "<h1>One training step, layer by layer</h1><p class=\"what\">This page was written by <code>pneumo "
      "inspect</code>. "
      "It shows one training step of the notebook's network on one X-ray: the forward pass (each layer's output), the "
      "loss, the backward pass (the gradient of the loss with respect to each output) and one Adam update of every "
      "weight. Every number and picture is read from the engine's own buffers during that step; nothing was written "
      "back "
      "to the checkpoint.</p>";
  html += "<div class=\"note\"><b>Inputs.</b> network: " + html_escape(source.network_description) + " (" +
          std::to_string(step.config.input_size) + "x" + std::to_string(step.config.input_size) + ", " +
          std::to_string(step.config.channels) + " channels, " + std::to_string(step.config.n_blocks) +
          " blocks, depth " + std::to_string(step.config.depth) + "); image: " + html_escape(source.image_description) +
          "; device: " + html_escape(source.device_description) + "; Adam step " + std::to_string(step.adam_step) +
          " at learning rate " + number(step.learning_rate) + ".<br/><b>The repository</b> is at <code>" +
          html_escape(source.repository) + "</code>; links to teaching pages are relative to this page (" +
          teaching_link(source, "README.md") +
          "), so keep the page where it was written or open the files there. Read " +
          teaching_link(source, "layers/training_step.md") + " beside this page.</div>";
  html +=
      "<h2>0. The step in numbers</h2><p class=\"what\">Where the time of the step went, measured node by node with "
      "the "
      "device synchronised around each one (so slightly slower than <code>pneumo "
      "train</code>).</p><table><tr><th>stage</th>"
      "<th>ms</th></tr><tr><td>forward, all nodes</td><td>" +
      stat("total_forward_ms", step.forward_ms) + "</td></tr><tr><td>loss and its gradient</td><td>" +
      number(step.loss_ms) + "</td></tr><tr><td>backward, all nodes</td><td>" +
      stat("total_backward_ms", step.backward_ms) + "</td></tr><tr><td>Adam update of all ";
  int64_t parameters = 0;
  for (const auto& node : step.nodes) parameters += node.parameter_count;
  html += with_commas(parameters) + " parameters</td><td>" + number(step.adam_ms) + "</td></tr></table>";
  html += flow_section(step);
  html += boxes_section(step, source);
  html +=
      "<h2 id=\"nodes\">3. Every node, from image to probabilities</h2><p class=\"what\">For each node: its output for "
      "this X-ray (the first 8 channels, each a small picture), the histogram of all its values, and the gradient of "
      "the "
      "loss with respect to that output, which backward computed from the nodes after it. Gradients usually shrink or "
      "grow as they travel towards the image: compare the norms from the bottom of the page to the top. Nodes with "
      "weights also show how far this Adam step moved them, relative to their size.</p>";
  for (const NodeRecord& node : step.nodes) html += node_section(step, node, source);
  html += "<h2>4. Where to read next</h2><p class=\"what\">The layer pages, in the order the data meets them: " +
          teaching_link(source, "layers/training_step.md") + ", " + teaching_link(source, "layers/conv2d.md") + ", " +
          teaching_link(source, "layers/batch_norm.md") + ", " + teaching_link(source, "layers/leaky_relu.md") + ", " +
          teaching_link(source, "layers/max_pool.md") + ", " + teaching_link(source, "layers/add.md") + ", " +
          teaching_link(source, "layers/sigmoid.md") + ", " + teaching_link(source, "layers/upsample.md") + ", " +
          teaching_link(source, "layers/loss.md") + ", " + teaching_link(source, "layers/adam.md") + ", " +
          teaching_link(source, "data/postprocess.md") + ".</p>";
  html += "</main></body></html>\n";
  return html;
}

std::string training_statistics_page_html(const std::vector<LayerStatisticsRow>& rows, const std::string& run_dir) {
  // One series per node, in network order (the order of the first recorded step).
  std::vector<std::string> order;
  std::map<std::string, std::vector<const LayerStatisticsRow*>> by_node;
  for (const auto& row : rows) {
    if (!by_node.count(row.node)) order.push_back(row.node);
    by_node[row.node].push_back(&row);
  }
  std::set<int64_t> steps;
  for (const auto& row : rows) steps.insert(row.step);
  auto color_of = [&](size_t index) {
    return css_color(viridis(order.size() > 1 ? 0.92 * static_cast<double>(index) / (order.size() - 1) : 0.0));
  };
  auto series_of = [&](const std::string& kind_filter, bool need_parameters, double LayerStatisticsRow::*field) {
    std::vector<LineSeriesSvg> series;
    for (size_t i = 0; i < order.size(); ++i) {
      const auto& node_rows = by_node[order[i]];
      if (node_rows.empty() || (!kind_filter.empty() && node_rows.front()->kind != kind_filter)) continue;
      if (need_parameters && !node_rows.front()->has_parameters) continue;
      LineSeriesSvg line;
      line.name = order[i];
      line.color = color_of(i);
      for (const LayerStatisticsRow* row : node_rows) {
        line.x.push_back(static_cast<double>(row->step));
        line.y.push_back(row->*field);
      }
      series.push_back(std::move(line));
    }
    return series;
  };
  std::string html = page_start("pneumo inspect: layer statistics over training");
  html +=
      "<h1>Layer statistics over training</h1><p class=\"what\">Recorded by <code>pneumo train --inspect-every "
      "K</code> in "
      "<code>" +
      html_escape(run_dir) + "/inspect.csv</code>: " + std::to_string(steps.size()) + " recorded steps, " +
      std::to_string(order.size()) +
      " nodes. Each line is one node; its colour goes from dark purple (next to the image) "
      "to yellow (next to the output); hover a line to see its name. Activation statistics are of the first image of "
      "each recorded batch.</p><div class=\"scale\"><span>image side</span><span class=\"bar "
      "viridis\"></span><span>output side</span></div>";
  struct Chart {
    const char* title;
    const char* explanation;
    const char* y_label;
    const char* kind;
    bool parameters;
    double LayerStatisticsRow::*field;
    bool log_y;
  };
  const Chart charts[] = {
      {"gradient norm per layer",
       "Vanishing gradients show as the purple lines (near the image) falling far below the yellow ones; "
       "exploding gradients as lines shooting up.",
       "|d loss / d weights|", "", true, &LayerStatisticsRow::gradient_norm, true},
      {"update-to-weight ratio per layer",
       "How far each Adam step moves a layer's weights relative to their size; around 1e-3 is "
       "typical, much larger means the learning rate is too high for that layer, much smaller that it barely learns.",
       "|update| / |w|", "", true, &LayerStatisticsRow::update_ratio, true},
      {"weight norm per layer", "Weights that grow without bound, or shrink towards zero, show here.", "|w|", "", true,
       &LayerStatisticsRow::weight_norm, true},
      {"dead units after each ReLU",
       "The share of channels that are zero everywhere for the image: a line creeping up means "
       "units are dying and no longer learn.",
       "dead channel fraction", "LeakyReLU", false, &LayerStatisticsRow::dead_unit_fraction, false},
      {"activation mean per layer", "Where activations drift; batch norm outputs stay near 0 by construction.", "mean",
       "", false, &LayerStatisticsRow::activation_mean, false},
      {"activation spread per layer",
       "The standard deviation of each node's output; a collapse to 0 means a layer stopped "
       "passing information.",
       "standard deviation", "", false, &LayerStatisticsRow::activation_std, true},
  };
  for (const Chart& chart : charts) {
    html += "<h2>" + std::string(chart.title) + "</h2><p class=\"what\">" + chart.explanation + "</p>";
    html += svg_lines(chart.title, chart.y_label, series_of(chart.kind, chart.parameters, chart.field), chart.log_y,
                      chart.field == &LayerStatisticsRow::dead_unit_fraction);
  }
  html += "</main></body></html>\n";
  return html;
}

}  // namespace pneumo::cli
