// The SVG renderer of the line chart model (data/presentation/chart.h): one LinePanel -> one
// inline <svg> element for HTML pages. Coordinates are written with 6 significant digits; the
// page's CSS styles the classes "t" (title) and "a" (axis text).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/presentation/chart.h"
#include "engine/check.h"

namespace pneumo {

namespace {

std::string number(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", digits, value);
  return text;
}

}  // namespace

std::string xml_escape(const std::string& text) {
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

std::string css_color(Color color) {
  char text[16];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", color.r, color.g, color.b);
  return text;
}

std::string draw_line_panel_svg(const LinePanel& panel, int width, int height, PlotArea* area_out) {
  const int left = 70, right = 20, top = 28, bottom = 40;
  const int plot_w = width - left - right, plot_h = height - top - bottom;
  PNEUMO_REQUIRE(plot_w >= 20 && plot_h >= 20, "line chart: SVG too small for its labels");
  double x_min = 1e300, x_max = -1e300, y_min = 1e300, y_max = -1e300;
  for (const LineSeries& series : panel.series) {
    PNEUMO_REQUIRE(series.x.size() == series.y.size(), "line chart: x and y differ in length");
    for (size_t i = 0; i < series.x.size(); ++i) {
      double y = 0;
      if (!chartable(series.x[i]) || !axis_value(panel, series.y[i], &y)) continue;
      x_min = std::min(x_min, series.x[i]);
      x_max = std::max(x_max, series.x[i]);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    }
  }
  const std::string title = xml_escape(panel.title);
  std::string svg = "<svg class=\"lines\" width=\"" + std::to_string(width) + "\" height=\"" + std::to_string(height) +
                    "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) +
                    "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>" + title + "</title>";
  svg += "<text x=\"" + std::to_string(left) + "\" y=\"18\" class=\"t\">" + title + "</text>";
  if (x_min > x_max) return svg + "<text x=\"80\" y=\"80\" class=\"a\">no data</text></svg>";
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max == y_min) {
    y_max += 0.5;
    y_min -= 0.5;
  }
  if (panel.y_scale == AxisScale::log10) {
    y_min = std::floor(y_min);
    y_max = std::ceil(y_max);
  }
  if (panel.y_range_0_to_1) {
    y_min = 0;
    y_max = 1;
  }
  if (area_out != nullptr) *area_out = {left, top, plot_w, plot_h, x_min, x_max, y_min, y_max};
  auto px = [&](double v) { return left + plot_w * (v - x_min) / (x_max - x_min); };
  auto py = [&](double v) { return top + plot_h - plot_h * (v - y_min) / (y_max - y_min); };
  const bool log_y = panel.y_scale == AxisScale::log10;
  const std::vector<double> y_ticks = log_y ? decade_ticks(y_min, y_max) : nice_ticks(y_min, y_max, 6);
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
  if (!panel.x_label.empty())
    svg += "<text x=\"" + std::to_string(left + plot_w / 2) + "\" y=\"" + std::to_string(height - 4) +
           "\" class=\"a\" text-anchor=\"middle\">" + xml_escape(panel.x_label) + "</text>";
  if (!panel.y_label.empty())
    svg += "<text x=\"14\" y=\"" + std::to_string(top + plot_h / 2) +
           "\" class=\"a\" text-anchor=\"middle\" transform=\"rotate(-90 14 " + std::to_string(top + plot_h / 2) +
           ")\">" + xml_escape(panel.y_label) + "</text>";
  svg += "<rect x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(top) + "\" width=\"" +
         std::to_string(plot_w) + "\" height=\"" + std::to_string(plot_h) + "\" fill=\"none\" stroke=\"#444\"/>";
  for (const LineSeries& series : panel.series) {
    std::string points;
    for (size_t i = 0; i < series.x.size(); ++i) {
      double y = 0;
      if (!chartable(series.x[i]) || !axis_value(panel, series.y[i], &y)) continue;
      points += number(px(series.x[i]), 6) + "," + number(py(y), 6) + " ";
    }
    svg += "<polyline fill=\"none\" stroke=\"" + css_color(series.color) + "\" stroke-width=\"1.3\" points=\"" +
           points + "\"><title>" + xml_escape(series.name) + "</title></polyline>";
  }
  return svg + "</svg>";
}

}  // namespace pneumo
