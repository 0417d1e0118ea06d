// The drawing of the inspect pages: feature maps and gradients as strips of channel tiles (grey or
// blue-white-red), probability maps, connected-component labels, and histograms as inline SVG.
// Pictures come back as data: URIs (apps/inspect_page_skeleton.h); line charts are the shared
// chart model's (data/presentation/chart.h, draw_line_panel_svg).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "apps/inspect_step.h"
#include "data/presentation/picture.h"

namespace pneumo::cli::page {

constexpr int kMaxChannels = 8;   // channels drawn per node
constexpr int kMaxTile = 64;      // stored tile side (pixels); larger maps are box-averaged down
constexpr int kTileDisplay = 84;  // displayed tile side (CSS pixels)

struct Strip {
  std::string uri;
  int width = 0, tile = 0, tiles = 0;  // stored pixels
  double low = 0, high = 0;            // value at black / white (grey) or -limit / +limit (signed)
};

// Blue (negative) - white (0) - red (positive), t in [-1, 1].
Color signed_color(double t);
// Channels 0..7 of one image (H,W,C) side by side (see the definition for the colour maps).
Strip channel_strip(const std::vector<float>& values, int64_t H, int64_t W, int64_t C, bool is_signed);
std::string strip_html(const Strip& strip, bool is_signed, const std::string& what);
// A (height,width) map as a picture: grey in [0,1], viridis, or a label image in colours.
std::string grey_uri(const std::vector<float>& values, int height, int width);
std::string viridis_uri(const std::vector<float>& values, int height, int width);
std::string labels_uri(const std::vector<int32_t>& labels, int height, int width, int size);
// Bars of a histogram, heights log10(1 + count) so rare values stay visible next to a spike.
std::string svg_histogram(const TensorStatistics& statistics, const std::string& color, const std::string& title);

}  // namespace pneumo::cli::page
