// The PNG renderer of the charts: a shared frame (title, axes, ticks, grid, labels) around a data
// area, filled by each chart kind. Text uses Picture's 5x9 font at scale 2 (10x18 pixel glyphs) for legibility.
#include "data/presentation/chart.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "engine/check.h"

namespace pneumo {

namespace {

const Color kWhite = {255, 255, 255};
const Color kBlack = {0, 0, 0};
const Color kGrid = {225, 225, 225};
const Color kText = {30, 30, 30};
constexpr int kTextScale = 2;
constexpr int kTitleScale = 3;
constexpr int kTickLength = 6;
constexpr int kPad = 10;

Color darker(Color color) {
  return {static_cast<uint8_t>(color.r * 0.6), static_cast<uint8_t>(color.g * 0.6),
          static_cast<uint8_t>(color.b * 0.6)};
}

// Shortest text for a tick value given the tick step ("0.25", "1000", "1.5e+06").
std::string tick_text(double value, double step) {
  if (std::fabs(value) < step * 1e-9) value = 0;
  char text[32];
  const double magnitude = std::max(std::fabs(value), std::fabs(step));
  if (magnitude >= 1e6 || (magnitude > 0 && magnitude < 1e-3)) {
    std::snprintf(text, sizeof(text), "%.2g", value);
  } else {
    const int decimals = step >= 1 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  }
  return text;
}

double tick_step(const std::vector<double>& ticks) { return ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0; }

// A y tick's text: the value, or on a log10 axis the power of ten it stands for ("1e-3").
std::string y_tick_text(double tick, double step, bool decades) {
  return decades ? "1e" + tick_text(tick, 1.0) : tick_text(tick, step);
}

struct Frame {
  PlotArea area;
  std::vector<double> x_ticks, y_ticks;
};

int to_x(const PlotArea& a, double v) {
  return a.left + static_cast<int>(std::lround((v - a.x_min) / (a.x_max - a.x_min) * a.width));
}
int to_y(const PlotArea& a, double v) {  // value axis pointing up
  return a.top + a.height - static_cast<int>(std::lround((v - a.y_min) / (a.y_max - a.y_min) * a.height));
}

// Chooses the data area inside (x0, y0, w, h) leaving room for the title, tick labels and axis
// labels; the y tick labels' width decides the left margin.
PlotArea layout(int x0, int y0, int w, int h, const std::string& title, const std::vector<double>& y_ticks, bool y_down,
                const std::string& y_label, int right_margin, bool y_decades = false) {
  int widest = 0;
  const double step = tick_step(y_ticks);
  for (double tick : y_ticks)
    widest = std::max(widest, Picture::text_width(y_tick_text(tick, step, y_decades), kTextScale));
  PlotArea area;
  const int label_height = Picture::text_height(kTextScale);
  area.left = x0 + kPad + (y_label.empty() ? 0 : label_height + kPad) + widest + kTickLength + 4;
  area.top = y0 + kPad + (title.empty() ? 0 : Picture::text_height(kTitleScale) + 2 * kPad);
  area.width = w - (area.left - x0) - right_margin;
  area.height = h - (area.top - y0) - (kTickLength + 6 + 2 * label_height + 3 * kPad);
  (void)y_down;
  if (area.width < 20 || area.height < 20) throw Error("chart: picture too small for its labels");
  return area;
}

// Title, grid, axes, ticks and labels around `area` (y ticks pointing up unless y_down).
void draw_frame(Picture& picture, int x0, int y0, int w, const PlotArea& area, const std::string& title,
                const std::string& x_label, const std::string& y_label, const std::vector<double>& x_ticks,
                const std::vector<double>& y_ticks, bool y_down, bool grid, bool y_decades = false) {
  auto y_of = [&](double v) {
    return y_down ? area.top + static_cast<int>(std::lround((v - area.y_min) / (area.y_max - area.y_min) * area.height))
                  : to_y(area, v);
  };
  if (grid) {
    for (double tick : y_ticks) picture.fill_rect(area.left, y_of(tick), area.width, 1, kGrid);
  }
  const int bottom = area.top + area.height;
  picture.fill_rect(area.left - 1, area.top, 1, area.height + 1, kBlack);  // y axis
  picture.fill_rect(area.left - 1, bottom, area.width + 2, 1, kBlack);     // x axis
  const int text_height = Picture::text_height(kTextScale);
  const double x_step = tick_step(x_ticks), y_step = tick_step(y_ticks);
  for (double tick : x_ticks) {
    const int x = to_x(area, tick);
    picture.fill_rect(x, bottom + 1, 1, kTickLength, kBlack);
    const std::string text = tick_text(tick, x_step);
    picture.draw_text(x - Picture::text_width(text, kTextScale) / 2, bottom + kTickLength + 6, text, kText, kTextScale);
  }
  for (double tick : y_ticks) {
    const int y = y_of(tick);
    picture.fill_rect(area.left - 1 - kTickLength, y, kTickLength, 1, kBlack);
    const std::string text = y_tick_text(tick, y_step, y_decades);
    picture.draw_text(area.left - kTickLength - 6 - Picture::text_width(text, kTextScale), y - text_height / 2, text,
                      kText, kTextScale);
  }
  if (!x_label.empty())
    picture.draw_text(area.left + (area.width - Picture::text_width(x_label, kTextScale)) / 2,
                      bottom + kTickLength + 6 + text_height + kPad, x_label, kText, kTextScale);
  if (!y_label.empty())
    draw_vertical_text(picture, x0 + kPad, area.top + (area.height + Picture::text_width(y_label, kTextScale)) / 2,
                       y_label, kText, kTextScale);
  if (!title.empty())
    picture.draw_text(x0 + (w - Picture::text_width(title, kTitleScale)) / 2, y0 + kPad, title, kBlack, kTitleScale);
}

}  // namespace

std::vector<double> linspace(double start, double stop, int count) {
  std::vector<double> values(std::max(0, count));
  for (int i = 0; i < count; ++i) values[i] = count == 1 ? start : start + (stop - start) * i / (count - 1);
  if (count > 1) values.back() = stop;
  return values;
}

std::vector<double> histogram_counts(const std::vector<double>& values, const std::vector<double>& edges) {
  PNEUMO_REQUIRE(edges.size() >= 2, "histogram needs at least two bin edges");
  std::vector<double> counts(edges.size() - 1, 0.0);
  for (double value : values) {
    if (!(value >= edges.front() && value <= edges.back())) continue;
    size_t bin = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), value) - edges.begin());
    bin = std::min(bin, edges.size() - 1) - 1;  // the last edge belongs to the last bin
    counts[bin] += 1;
  }
  return counts;
}

bool chartable(double value) { return std::fabs(value) <= kLargestChartValue; }

bool axis_value(const LinePanel& panel, double y, double* drawn) {
  if (!chartable(y) || (panel.y_scale == AxisScale::log10 && !(y > 0))) return false;
  *drawn = panel.y_scale == AxisScale::log10 ? std::log10(y) : y;
  return true;
}

std::vector<double> decade_ticks(double low_exponent, double high_exponent) {
  std::vector<double> ticks;
  const double every = std::max(1.0, std::ceil((high_exponent - low_exponent) / 8));
  for (double e = low_exponent; e <= high_exponent + 1e-9; e += every) ticks.push_back(e);
  return ticks;
}

std::vector<double> nice_ticks(double low, double high, int target) {
  // Bounded for any input: non-finite ends give the finite ones; a span too wide for a double
  // (1e308 - -1e308), a subnormal step or a span below double resolution gives the two ends.
  constexpr size_t kMostTicks = 64;
  if (!std::isfinite(low) || !std::isfinite(high)) {
    std::vector<double> ends;
    for (double end : {low, high})
      if (std::isfinite(end) && (ends.empty() || ends.back() != end)) ends.push_back(end);
    return ends;
  }
  if (!(high > low)) return {low};
  target = std::clamp(target, 1, static_cast<int>(kMostTicks / 4));
  const double rough = high / target - low / target;  // (high - low) / target without overflow
  if (!std::isfinite(rough) || !(rough >= DBL_MIN)) return {low, high};
  const int exponent = static_cast<int>(std::floor(std::log10(rough)));
  const double power = std::pow(10.0, exponent);
  double factor = 10.0;
  for (double candidate : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (candidate * power >= rough) {
      factor = candidate;
      break;
    }
  const double step = factor * power;
  // The index of the first tick, |low| / step, must stay exact in an int64 and far from it.
  if (!std::isfinite(step) || !(step >= DBL_MIN) || !std::isfinite(std::pow(10.0, -exponent)) ||
      std::max(std::fabs(low), std::fabs(high)) / step > 1e12)
    return {low, high};
  // tick = k * factor * 10^exponent, computed as (k * factor) / 10^-exponent for negative
  // exponents so that 0.6 comes out as 0.6, not 0.6000000000000001.
  auto tick_at = [&](int64_t k) {
    const double units = static_cast<double>(k) * factor;
    return exponent < 0 ? units / std::pow(10.0, -exponent) : units * power;
  };
  std::vector<double> ticks;
  for (int64_t k = static_cast<int64_t>(std::ceil(low / step - 1e-9));
       tick_at(k) <= high + step * 1e-9 && ticks.size() < kMostTicks; ++k)
    ticks.push_back(tick_at(k));
  return ticks;
}

Color viridis(double t) {
  static const Color stops[] = {{68, 1, 84},    {71, 44, 122}, {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                {39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37}};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 8.0;
  const int i = std::min(7, static_cast<int>(t));
  const double f = t - i;
  auto blend = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
  return {blend(stops[i].r, stops[i + 1].r), blend(stops[i].g, stops[i + 1].g), blend(stops[i].b, stops[i + 1].b)};
}

void draw_vertical_text(Picture& picture, int x, int y, const std::string& text, Color color, int scale) {
  const int width = Picture::text_width(text, scale), height = Picture::text_height(scale);
  if (width == 0) return;
  const Color key = color == kWhite ? kBlack : kWhite;
  Picture scratch(width, height, key);
  scratch.draw_text(0, 0, text, color, scale);
  // Scratch (column c, row r) -> canvas (x + r, y - c): read from the bottom upwards; (x, y) is
  // where the text starts, its lowest point.
  for (int r = 0; r < height; ++r)
    for (int c = 0; c < width; ++c)
      if (scratch.get(c, r) != key) picture.set(x + r, y - c, color);
}

Picture draw_histogram(const HistogramChart& chart, int width, int height, PlotArea* area_out) {
  PNEUMO_REQUIRE(chart.bin_edges.size() == chart.counts.size() + 1 && !chart.counts.empty(),
                 "histogram: bin_edges must have one more entry than counts");
  for (double edge : chart.bin_edges)
    if (!chartable(edge))
      throw Error("histogram: bin edges must be finite numbers within +-1e+300, got " + std::to_string(edge));
  Picture picture(width, height, kWhite);
  const double top_count = std::max(1.0, *std::max_element(chart.counts.begin(), chart.counts.end()));
  std::vector<double> y_ticks = nice_ticks(0, top_count, 6);
  const double y_max = std::max(top_count * 1.05, y_ticks.back());
  const double x_min = chart.bin_edges.front(), x_max = chart.bin_edges.back();
  PlotArea area = layout(0, 0, width, height, chart.title, y_ticks, false, chart.y_label, 24);
  area.x_min = x_min, area.x_max = x_max, area.y_min = 0, area.y_max = y_max;
  std::vector<double> x_ticks = chart.x_ticks.empty() ? nice_ticks(x_min, x_max, 8) : chart.x_ticks;
  draw_frame(picture, 0, 0, width, area, chart.title, chart.x_label, chart.y_label, x_ticks, y_ticks, false, true);
  const Color edge = darker(chart.color);
  for (size_t i = 0; i < chart.counts.size(); ++i) {
    if (chart.counts[i] <= 0) continue;
    const int left = to_x(area, chart.bin_edges[i]), right = to_x(area, chart.bin_edges[i + 1]);
    const int top = to_y(area, chart.counts[i]), bottom = area.top + area.height;
    picture.fill_rect(left, top, std::max(1, right - left), bottom - top, chart.color);
    if (right - left >= 4) picture.draw_rect(left, top, right - left, bottom - top, edge);
  }
  picture.fill_rect(area.left - 1, area.top + area.height, area.width + 2, 1, kBlack);  // axis over bars
  if (area_out != nullptr) *area_out = area;
  return picture;
}

Picture draw_heatmap(const HeatmapChart& chart, int width, int height, PlotArea* area_out) {
  PNEUMO_REQUIRE(
      chart.rows > 0 && chart.columns > 0 && chart.values.size() == static_cast<size_t>(chart.rows) * chart.columns,
      "heatmap: values must hold rows x columns numbers");
  Picture picture(width, height, kWhite);
  // The colour scale spans the chartable values; other cells take the lowest colour.
  double low = INFINITY, high = -INFINITY;
  for (double value : chart.values)
    if (chartable(value)) low = std::min(low, value), high = std::max(high, value);
  if (!(high >= low)) low = 0, high = 1;
  if (!(high > low)) high = low + 1;
  // Colour bar on the right: a strip, its ticks and its label.
  const std::vector<double> bar_ticks = nice_ticks(low, high, 6);
  int bar_label_width = 0;
  for (double tick : bar_ticks)
    bar_label_width = std::max(bar_label_width, Picture::text_width(tick_text(tick, tick_step(bar_ticks)), kTextScale));
  const int bar_width = 24;
  const int right_margin =
      kPad * 3 + bar_width + kTickLength + 6 + bar_label_width + Picture::text_height(kTextScale) + kPad;
  std::vector<double> y_ticks = nice_ticks(std::min(chart.y_min, chart.y_max), std::max(chart.y_min, chart.y_max), 6);
  PlotArea area = layout(0, 0, width, height, chart.title, y_ticks, true, chart.y_label, right_margin);
  // Square cells when the picture allows it.
  const double aspect = static_cast<double>(chart.columns) / chart.rows;
  if (area.width > area.height * aspect)
    area.width = static_cast<int>(area.height * aspect);
  else
    area.height = static_cast<int>(area.width / aspect);
  area.x_min = chart.x_min, area.x_max = chart.x_max, area.y_min = chart.y_min, area.y_max = chart.y_max;
  for (int py = 0; py < area.height; ++py) {
    const int row = std::min(chart.rows - 1, py * chart.rows / area.height);
    for (int px = 0; px < area.width; ++px) {
      const int column = std::min(chart.columns - 1, px * chart.columns / area.width);
      const double value = chart.values[static_cast<size_t>(row) * chart.columns + column];
      picture.set(area.left + px, area.top + py, viridis(chartable(value) ? (value - low) / (high - low) : 0.0));
    }
  }
  std::vector<double> x_ticks = nice_ticks(std::min(chart.x_min, chart.x_max), std::max(chart.x_min, chart.x_max), 6);
  draw_frame(picture, 0, 0, width, area, chart.title, chart.x_label, chart.y_label, x_ticks, y_ticks, true, false);
  picture.fill_rect(area.left + area.width, area.top, 1, area.height + 1, kBlack);
  picture.fill_rect(area.left - 1, area.top - 1, area.width + 2, 1, kBlack);
  const int bar_left = area.left + area.width + kPad * 3;
  for (int py = 0; py < area.height; ++py) {
    const Color color = viridis(1.0 - static_cast<double>(py) / std::max(1, area.height - 1));
    picture.fill_rect(bar_left, area.top + py, bar_width, 1, color);
  }
  picture.draw_rect(bar_left - 1, area.top - 1, bar_width + 2, area.height + 2, kBlack);
  const int text_height = Picture::text_height(kTextScale);
  for (double tick : bar_ticks) {
    const int y = area.top + area.height - static_cast<int>(std::lround((tick - low) / (high - low) * area.height));
    picture.fill_rect(bar_left + bar_width + 1, y, kTickLength, 1, kBlack);
    picture.draw_text(bar_left + bar_width + kTickLength + 6, y - text_height / 2,
                      tick_text(tick, tick_step(bar_ticks)), kText, kTextScale);
  }
  if (!chart.value_label.empty())
    draw_vertical_text(picture, bar_left + bar_width + kTickLength + 6 + bar_label_width + kPad,
                       area.top + (area.height + Picture::text_width(chart.value_label, kTextScale)) / 2,
                       chart.value_label, kText, kTextScale);
  if (area_out != nullptr) *area_out = area;
  return picture;
}

Picture draw_line_panels(const std::vector<LinePanel>& panels, int panel_width, int panel_height,
                         std::vector<PlotArea>* areas) {
  PNEUMO_REQUIRE(!panels.empty(), "line chart: no panels");
  Picture picture(panel_width * static_cast<int>(panels.size()), panel_height, kWhite);
  if (areas != nullptr) areas->clear();
  for (size_t p = 0; p < panels.size(); ++p) {
    const LinePanel& panel = panels[p];
    const int x0 = static_cast<int>(p) * panel_width;
    double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
    const bool decades = panel.y_scale == AxisScale::log10;
    for (const LineSeries& series : panel.series) {
      PNEUMO_REQUIRE(series.x.size() == series.y.size(), "line chart: x and y differ in length");
      for (size_t i = 0; i < series.x.size(); ++i) {
        double y = 0;
        if (!chartable(series.x[i]) || !axis_value(panel, series.y[i], &y)) continue;
        x_min = std::min(x_min, series.x[i]), x_max = std::max(x_max, series.x[i]);
        y_min = std::min(y_min, y), y_max = std::max(y_max, y);
      }
    }
    if (!(x_max >= x_min)) x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // no data
    if (x_max == x_min) x_min -= 0.5, x_max += 0.5;
    if (y_max == y_min) y_min -= 0.5, y_max += 0.5;
    if (decades) y_min = std::floor(y_min), y_max = std::ceil(y_max);
    if (panel.y_range_0_to_1) y_min = 0, y_max = 1;
    if (!decades && !panel.y_range_0_to_1) {
      const double y_pad = (y_max - y_min) * 0.06;
      y_min -= y_pad, y_max += y_pad;
    }
    std::vector<double> y_ticks = decades ? decade_ticks(y_min, y_max) : nice_ticks(y_min, y_max, 6);
    PlotArea area = layout(x0, 0, panel_width, panel_height, panel.title, y_ticks, false, panel.y_label, 20, decades);
    area.x_min = x_min, area.x_max = x_max, area.y_min = y_min, area.y_max = y_max;
    std::vector<double> x_ticks = nice_ticks(x_min, x_max, 6);
    draw_frame(picture, x0, 0, panel_width, area, panel.title, panel.x_label, panel.y_label, x_ticks, y_ticks, false,
               true, decades);
    for (const LineSeries& series : panel.series) {
      bool has_previous = false;
      int previous_x = 0, previous_y = 0;
      for (size_t i = 0; i < series.x.size(); ++i) {
        double value = 0;
        if (!chartable(series.x[i]) || !axis_value(panel, series.y[i], &value)) {
          has_previous = false;
          continue;
        }
        const int x = to_x(area, series.x[i]), y = to_y(area, value);
        if (has_previous) picture.draw_line(previous_x, previous_y, x, y, series.color, 2);
        picture.fill_rect(x - 3, y - 3, 7, 7, series.color);
        previous_x = x, previous_y = y, has_previous = true;
      }
    }
    // Legend in the top-right corner of the data area.
    int legend_width = 0;
    for (const LineSeries& series : panel.series)
      legend_width = std::max(legend_width, Picture::text_width(series.name, kTextScale));
    if (legend_width > 0) {
      const int line_height = Picture::text_height(kTextScale) + 8;
      const int box_width = legend_width + 3 * kPad + 28,
                box_height = line_height * static_cast<int>(panel.series.size()) + kPad;
      // The corner of the data area that hides the fewest points of the lines (sampled along
      // each segment); top-right on a tie.
      int box_left = 0, box_top = 0, fewest = -1;
      for (int corner = 0; corner < 4; ++corner) {
        const int left = corner % 2 == 0 ? area.left + area.width - box_width - 6 : area.left + 6;
        const int top = corner < 2 ? area.top + 6 : area.top + area.height - box_height - 6;
        int hidden = 0;
        for (const LineSeries& series : panel.series)
          for (size_t i = 0; i < series.x.size(); ++i) {
            double value = 0, next_value = 0;
            if (!chartable(series.x[i]) || !axis_value(panel, series.y[i], &value)) continue;
            const size_t next = i + 1 < series.x.size() ? i + 1 : i;
            const double next_x = chartable(series.x[next]) ? series.x[next] : series.x[i];
            const double next_y = axis_value(panel, series.y[next], &next_value) ? next_value : value;
            for (int k = 0; k < 16; ++k) {
              const double f = k / 16.0;
              const int x = to_x(area, series.x[i] + (next_x - series.x[i]) * f);
              const int y = to_y(area, value + (next_y - value) * f);
              hidden += x >= left - 4 && x < left + box_width + 4 && y >= top - 4 && y < top + box_height + 4;
            }
          }
        if (fewest < 0 || hidden < fewest) fewest = hidden, box_left = left, box_top = top;
      }
      picture.fill_rect(box_left, box_top, box_width, box_height, kWhite);
      picture.draw_rect(box_left, box_top, box_width, box_height, {160, 160, 160});
      for (size_t s = 0; s < panel.series.size(); ++s) {
        const int y = box_top + kPad / 2 + 4 + static_cast<int>(s) * line_height;
        picture.fill_rect(box_left + kPad, y + Picture::text_height(kTextScale) / 2 - 1, 28, 3, panel.series[s].color);
        picture.draw_text(box_left + 2 * kPad + 28, y, panel.series[s].name, kText, kTextScale);
      }
    }
    if (areas != nullptr) areas->push_back(area);
  }
  return picture;
}

}  // namespace pneumo
