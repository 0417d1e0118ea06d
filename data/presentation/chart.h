// Charts: histograms, heatmaps with a colour scale and line-chart panels (learning curves, layer
// statistics). Each chart is a model (the data: title, axis labels, series) drawn by a renderer:
// onto a Picture (then save_png; chart.cpp) or, for line panels, into an inline SVG element for
// HTML pages (chart_svg.cpp). Both take their ticks from nice_ticks and draw only values within
// +-kLargestChartValue; each chart has axes, tick labels, axis labels and a title.
#pragma once
#include <string>
#include <vector>

#include "data/presentation/picture.h"

namespace pneumo {

// Where the data area of a chart landed and which values its edges stand for (tests and overlays
// use it to map values to pixels: x = left + width * (v - x_min) / (x_max - x_min), y likewise
// from the bottom edge upwards, except heatmaps whose rows go downwards like imshow).
struct PlotArea {
  int left = 0, top = 0, width = 0, height = 0;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
};

struct HistogramChart {
  std::string title, x_label, y_label = "images";
  std::vector<double> bin_edges;  // (bins + 1), increasing
  std::vector<double> counts;     // (bins)
  std::vector<double> x_ticks;    // tick positions; empty: chosen automatically
  Color color = {66, 114, 196};
};
Picture draw_histogram(const HistogramChart& chart, int width = 900, int height = 560, PlotArea* area = nullptr);

struct HeatmapChart {
  std::string title, x_label, y_label, value_label;
  int rows = 0, columns = 0;
  std::vector<double> values;                         // (rows, columns); row 0 at the top
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // values at the left/right, top/bottom edges
};
Picture draw_heatmap(const HeatmapChart& chart, int width = 860, int height = 760, PlotArea* area = nullptr);

struct LineSeries {
  std::string name;
  std::vector<double> x, y;  // (points)
  Color color = {66, 114, 196};
};
enum class AxisScale { linear, log10 };
struct LinePanel {
  std::string title, x_label, y_label;
  std::vector<LineSeries> series;
  // log10: the axis shows log10 of the positive values (others are gaps), ticks at powers of ten
  // labelled "1e-3"; the range is whole decades.
  AxisScale y_scale = AxisScale::linear;
  bool y_range_0_to_1 = false;  // the y axis always spans [0, 1] (shares), whatever the data
};
// The value a line panel draws on its y axis for `y` (y, or log10(y) on a log axis); false when
// the point is a gap: not chartable, or y <= 0 on a log axis.
bool axis_value(const LinePanel& panel, double y, double* drawn);
// Ticks of a log10 axis spanning the whole decades [low_exponent, high_exponent]: every
// exponent, or every k-th so that there are about 8.
std::vector<double> decade_ticks(double low_exponent, double high_exponent);

// PNG renderer: panels side by side, like the notebook's plt.subplot(131..133) learning curves;
// each series with markers, each panel with a legend in its emptiest corner.
Picture draw_line_panels(const std::vector<LinePanel>& panels, int panel_width = 560, int panel_height = 440,
                         std::vector<PlotArea>* areas = nullptr);

// SVG renderer: one panel as an inline <svg class="lines"> element for HTML pages, one
// <polyline> per series (its name as the line's tooltip), coordinates with 6 significant digits.
// The page's CSS styles the classes "t" (title) and "a" (axis text). A panel without drawable
// points says "no data". `area`, when given, receives where the data area landed (in SVG user
// units) and which values its edges stand for, as PlotArea describes.
std::string draw_line_panel_svg(const LinePanel& panel, int width = 920, int height = 340, PlotArea* area = nullptr);
// Text for XML/HTML content and attribute values: & < > " escaped.
std::string xml_escape(const std::string& text);
// "#rrggbb" of a colour, for SVG and CSS.
std::string css_color(Color color);

// Helpers shared with callers.
std::vector<double> linspace(double start, double stop, int count);  // numpy.linspace
// numpy.histogram's counting rule: bins [e_i, e_i+1), the last one closed; values outside dropped.
std::vector<double> histogram_counts(const std::vector<double>& values, const std::vector<double>& edges);
// About `target` round tick values (1, 2, 5 x 10^k steps) covering [low, high], at most 64.
// Non-finite ends give the finite ones; a span a double cannot hold or step through (1e308 to
// -1e308, subnormal, below the resolution at that magnitude) gives just {low, high}.
std::vector<double> nice_ticks(double low, double high, int target);
// Charts draw values within +-kLargestChartValue: line panels and heatmaps skip the others and
// non-finite ones (a gap in the line, the lowest colour), so a diverged 1e308 in a history.csv
// cannot stall a chart; every value a float computation yields is drawn. Histogram edges
// outside it are a pneumo::Error.
constexpr double kLargestChartValue = 1e300;
bool chartable(double value);  // finite and within +-kLargestChartValue
Color viridis(double t);       // t in [0, 1] -> matplotlib's default colour map
// Text read bottom-to-top (rotated 90 degrees anticlockwise), its top-left corner at (x, y).
void draw_vertical_text(Picture& picture, int x, int y, const std::string& text, Color color, int scale);

}  // namespace pneumo
