// Charts: histogram counting like numpy, tick choice, and pixel checks (a bar of known count
// fills exactly the pixels its value maps to; heatmap colours follow the values; line panels
// draw their series and legend), and explore's figures. Set PNEUMO_CHART_DIR to keep the PNGs for a look.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "data/presentation/chart.h"
#include "data/presentation/explore.h"
#include "data/input/labels.h"
#include "data/input/synth.h"
#include "engine/check.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

const pneumo::Color kWhite = {255, 255, 255};

void keep(const pneumo::Picture& picture, const std::string& name) {
  if (const char* dir = std::getenv("PNEUMO_CHART_DIR")) picture.save_png(std::string(dir) + "/" + name);
}

int count_color(const pneumo::Picture& picture, pneumo::Color color) {
  int count = 0;
  for (int y = 0; y < picture.height(); ++y)
    for (int x = 0; x < picture.width(); ++x) count += picture.get(x, y) == color;
  return count;
}

}  // namespace

TEST_CASE("linspace, histogram counts and ticks") {
  const std::vector<double> edges = pneumo::linspace(0, 1000, 50);
  REQUIRE(edges.size() == 50);
  CHECK(edges[1] == doctest::Approx(1000.0 / 49));
  CHECK(edges.back() == 1000.0);
  // numpy.histogram([0, 5, 10, 10, 20.4, 1000, 1001, -1], bins=[0, 10, 20, 1000]) -> [2, 2, 2]
  CHECK(pneumo::histogram_counts({0, 5, 10, 10, 20.4, 1000, 1001, -1}, {0, 10, 20, 1000}) ==
        std::vector<double>{2, 2, 2});
  CHECK(pneumo::nice_ticks(0, 1000, 8) == std::vector<double>{0, 200, 400, 600, 800, 1000});
  CHECK(pneumo::nice_ticks(0.12, 0.9, 4) == std::vector<double>{0.2, 0.4, 0.6, 0.8});
  CHECK(pneumo::viridis(0) == pneumo::Color{68, 1, 84});
  CHECK(pneumo::viridis(1) == pneumo::Color{253, 231, 37});
}

TEST_CASE("nice_ticks is bounded for overflowing, non-finite and subnormal ranges") {
  // Before: the span 1e308 - -1e308 overflowed and a subnormal step rounded every tick to 0, so
  // the loop never ended (86 s and std::bad_alloc in pneumo inspect).
  const std::vector<double> wide = pneumo::nice_ticks(-1e308, 1e308, 6);
  REQUIRE(wide.size() == 5);
  CHECK(wide[0] == doctest::Approx(-1e308));
  CHECK(wide[2] == 0);
  CHECK(wide[4] == doctest::Approx(1e308));
  CHECK(pneumo::nice_ticks(0, 1e-320, 6) == std::vector<double>{0, 1e-320});
  CHECK(pneumo::nice_ticks(-1e-320, 1e-320, 6) == std::vector<double>{-1e-320, 1e-320});
  CHECK(pneumo::nice_ticks(0, INFINITY, 6) == std::vector<double>{0});
  CHECK(pneumo::nice_ticks(NAN, 1, 6) == std::vector<double>{1});
  CHECK(pneumo::nice_ticks(-INFINITY, NAN, 6).empty());
  CHECK(pneumo::nice_ticks(-DBL_MAX, DBL_MAX, 1).size() <= 64);
  // A span below double resolution at this magnitude: the two ends, not 10^15 equal ticks.
  CHECK(pneumo::nice_ticks(1e300, std::nextafter(1e300, 2e300), 6).size() == 2);
  CHECK(pneumo::nice_ticks(0, 1, 1000000).size() <= 64);
  CHECK(pneumo::nice_ticks(5, 5, 6) == std::vector<double>{5});
}

TEST_CASE("charts skip values beyond +-1e300 and non-finite ones instead of hanging") {
  // A history.csv row of 1e308: the learning curves draw the other epochs.
  pneumo::LinePanel loss{"Loss", "epoch", "loss", {}};
  loss.series.push_back({"Train loss", {0, 1, 2, 3}, {0.9, 1e308, -1e308, 0.5}, {31, 119, 180}});
  loss.series.push_back({"Valid loss", {0, 1, 2, 3}, {0.8, NAN, 1e-320, 0.7}, {255, 127, 14}});
  std::vector<pneumo::PlotArea> areas;
  const pneumo::Picture picture = pneumo::draw_line_panels({loss}, 560, 440, &areas);
  REQUIRE(areas.size() == 1);
  CHECK(areas[0].y_min < 1e-320);
  CHECK(areas[0].y_min > -0.1);
  CHECK(areas[0].y_max > 0.9);
  CHECK(areas[0].y_max < 1.0);
  CHECK(count_color(picture, {31, 119, 180}) > 100);
  // Only absurd values: the panel is drawn as one without data.
  pneumo::LinePanel absurd{"Loss", "epoch", "loss", {}};
  absurd.series.push_back({"Train loss", {0, 1}, {1e308, -1e308}, {31, 119, 180}});
  CHECK(pneumo::draw_line_panels({absurd}, 560, 440, &areas).width() == 560);
  CHECK(areas[0].y_max - areas[0].y_min == doctest::Approx(1.12));
  // A heatmap of huge and subnormal values.
  pneumo::HeatmapChart heatmap;
  heatmap.rows = 1;
  heatmap.columns = 4;
  heatmap.values = {1e308, -1e308, 1e-320, 0};
  CHECK(pneumo::draw_heatmap(heatmap, 500, 400).width() == 500);
  // Histogram edges must be finite and chartable: a clear error.
  pneumo::HistogramChart histogram;
  histogram.bin_edges = {-1e308, 0, 1e308};
  histogram.counts = {1, 2};
  std::string message;
  try {
    pneumo::draw_histogram(histogram, 500, 400);
  } catch (const pneumo::Error& error) {
    message = error.what();
  }
  CHECK(message.find("histogram: bin edges must be finite numbers within +-1e+300") != std::string::npos);
}

TEST_CASE("a histogram bar of known count fills exactly its pixels") {
  pneumo::HistogramChart chart;
  chart.title = "Boxes per image";
  chart.x_label = "boxes";
  chart.bin_edges = {0.5, 1.5, 2.5, 3.5, 4.5};
  chart.counts = {40, 100, 10, 0};
  chart.x_ticks = {1, 2, 3, 4};
  chart.color = {10, 200, 30};
  pneumo::PlotArea area;
  const pneumo::Picture picture = pneumo::draw_histogram(chart, 800, 500, &area);
  keep(picture, "histogram.png");
  REQUIRE(area.width > 300);
  REQUIRE(area.height > 250);
  CHECK(area.y_min == 0);
  CHECK(area.y_max >= 100);
  auto pixel_x = [&](double v) { return area.left + (v - area.x_min) / (area.x_max - area.x_min) * area.width; };
  auto pixel_y = [&](double v) {
    return area.top + area.height - (v - area.y_min) / (area.y_max - area.y_min) * area.height;
  };
  const int bottom = area.top + area.height;
  // Bar 2 (count 100): bar colour from just below its top to just above the axis, in its middle
  // column; background just above its top.
  const int middle = static_cast<int>(pixel_x(2.0));
  const int top = static_cast<int>(std::lround(pixel_y(100)));
  CHECK(picture.get(middle, top + 2) == chart.color);
  CHECK(picture.get(middle, bottom - 2) == chart.color);
  CHECK(picture.get(middle, top - 3) != chart.color);
  // Bar 1 (count 40) is 40% as tall: its top is where 40 maps to.
  const int top_1 = static_cast<int>(std::lround(pixel_y(40)));
  const int x_1 = static_cast<int>(pixel_x(1.0));
  CHECK(picture.get(x_1, top_1 + 2) == chart.color);
  CHECK(picture.get(x_1, top_1 - 3) != chart.color);
  CHECK(picture.get(x_1, static_cast<int>(pixel_y(70))) != chart.color);
  // Bar 4 (count 0) is not drawn; the bar area adds up to the counts' share of the data area.
  CHECK(picture.get(static_cast<int>(pixel_x(4.0)), bottom - 2) != chart.color);
  const double bar_width = area.width / 4.0;
  const double expected_fill = (40 + 100 + 10) / (area.y_max - area.y_min) * area.height * bar_width;
  const int filled = count_color(picture, chart.color);
  CHECK(filled > 0.9 * expected_fill * 0.9);  // the outline (darker) takes a few pixels
  CHECK(filled < 1.02 * expected_fill);
  // There is text: the title row has dark pixels above the data area.
  int title_pixels = 0;
  for (int y = 0; y < area.top - 4; ++y)
    for (int x = 0; x < picture.width(); ++x) title_pixels += picture.get(x, y) != kWhite;
  CHECK(title_pixels > 200);
  CHECK_THROWS_AS(pneumo::draw_histogram(pneumo::HistogramChart{}, 800, 500), pneumo::Error);
}

TEST_CASE("a heatmap colours each cell by its value and has a colour scale") {
  pneumo::HeatmapChart chart;
  chart.title = "Box location heatmap";
  chart.x_label = "x (pixels)";
  chart.y_label = "y (pixels)";
  chart.value_label = "boxes covering the pixel";
  chart.rows = 4;
  chart.columns = 4;
  chart.values = {0, 0, 0, 0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 0, 0, 4};
  chart.x_max = 1024;
  chart.y_max = 1024;
  pneumo::PlotArea area;
  const pneumo::Picture picture = pneumo::draw_heatmap(chart, 700, 620, &area);
  keep(picture, "heatmap.png");
  CHECK(area.width == area.height);  // square cells
  const int cell = area.width / 4;
  auto cell_color = [&](int row, int column) {
    return picture.get(area.left + column * cell + cell / 2, area.top + row * cell + cell / 2);
  };
  CHECK(cell_color(0, 0) == pneumo::viridis(0));
  CHECK(cell_color(1, 1) == pneumo::viridis(1));
  CHECK(cell_color(2, 2) == pneumo::viridis(1));
  CHECK(cell_color(3, 3) == pneumo::viridis(0.5));
  // The colour bar: its top is the highest colour, its bottom the lowest.
  const int bar_x = area.left + area.width + 30 + 12;
  CHECK(picture.get(bar_x, area.top) == pneumo::viridis(1));
  CHECK(picture.get(bar_x, area.top + area.height - 1) == pneumo::viridis(0));
}

TEST_CASE("line panels draw every series in its colour, with a legend") {
  pneumo::LinePanel loss{"Loss", "epoch", "loss", {}};
  loss.series.push_back({"Train loss", {0, 1, 2, 3, 4}, {0.9, 0.6, 0.5, 0.45, 0.42}, {31, 119, 180}});
  loss.series.push_back({"Valid loss", {0, 1, 2, 3, 4}, {0.8, 0.65, 0.55, 0.52, 0.5}, {255, 127, 14}});
  pneumo::LinePanel accuracy{"Accuracy", "epoch", "accuracy", {}};
  accuracy.series.push_back({"Train accuracy", {0, 1, 2, 3, 4}, {0.9, 0.93, 0.95, 0.96, 0.965}, {31, 119, 180}});
  accuracy.series.push_back({"Valid accuracy", {0, 1, 2, 3, 4}, {0.91, 0.93, 0.94, 0.95, 0.95}, {255, 127, 14}});
  pneumo::LinePanel iou{"Mean IoU", "epoch", "IoU", {}};
  iou.series.push_back({"Train iou", {0, 1, 2, 3, 4}, {0.2, 0.4, 0.5, 0.6, 0.62}, {31, 119, 180}});
  iou.series.push_back({"Valid iou", {0, 1}, {0.3, 0.45}, {255, 127, 14}});
  std::vector<pneumo::PlotArea> areas;
  const pneumo::Picture picture = pneumo::draw_line_panels({loss, accuracy, iou}, 560, 440, &areas);
  keep(picture, "lines.png");
  REQUIRE(areas.size() == 3);
  CHECK(picture.width() == 3 * 560);
  CHECK(areas[1].left > 560);
  // Each point is a 7x7 marker at its mapped position.
  for (size_t p = 0; p < 3; ++p) {
    const pneumo::PlotArea& a = areas[p];
    const auto& series = (p == 0 ? loss : p == 1 ? accuracy : iou).series[0];
    const double x = a.left + (series.x[2] - a.x_min) / (a.x_max - a.x_min) * a.width;
    const double y = a.top + a.height - (series.y[2] - a.y_min) / (a.y_max - a.y_min) * a.height;
    CHECK(picture.get(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y))) == series.color);
    CHECK(a.y_min < *std::min_element(series.y.begin(), series.y.end()));
  }
  CHECK(count_color(picture, {255, 127, 14}) > 200);  // the second series and its legend sample
}

TEST_CASE("a log10 line panel draws log10 of the positive values on whole decades, a 0..1 panel spans 0..1") {
  pneumo::LinePanel norms{"Gradient norm", "step", "|g|", {}};
  norms.y_scale = pneumo::AxisScale::log10;
  norms.series.push_back({"conv0", {1, 2, 3, 4}, {0.001, 0.1, -1, 10}, {200, 30, 30}});
  pneumo::LinePanel shares{"Dead units", "step", "share", {}};
  shares.y_range_0_to_1 = true;
  shares.series.push_back({"relu", {1, 2}, {0.25, 0.5}, {30, 30, 200}});
  std::vector<pneumo::PlotArea> areas;
  const pneumo::Picture picture = pneumo::draw_line_panels({norms, shares}, 560, 440, &areas);
  keep(picture, "lines_log.png");
  REQUIRE(areas.size() == 2);
  CHECK(areas[0].y_min == -3);  // log10(0.001), the non-positive -1 is a gap
  CHECK(areas[0].y_max == 1);   // log10(10)
  CHECK(areas[1].y_min == 0);
  CHECK(areas[1].y_max == 1);
  const pneumo::PlotArea& a = areas[0];
  const double x = a.left + (2.0 - a.x_min) / (a.x_max - a.x_min) * a.width;  // the point (2, 0.1): log10 -1
  const double y = a.top + a.height - (-1.0 - a.y_min) / (a.y_max - a.y_min) * a.height;
  CHECK(picture.get(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y))) == pneumo::Color{200, 30, 30});
  const pneumo::PlotArea& b = areas[1];
  const double y_half = b.top + b.height - 0.5 * b.height;  // the point (2, 0.5)
  CHECK(picture.get(b.left + b.width, static_cast<int>(std::lround(y_half))) == pneumo::Color{30, 30, 200});
}

TEST_CASE("explore prints the notebook's figures and writes its four charts") {
  pneumo::SynthConfig config;
  config.out_dir = "/tmp/pneumo_test_explore_" + std::to_string(::getpid());
  std::filesystem::remove_all(config.out_dir);
  config.train_images = 12;
  config.test_images = 2;
  config.image_size = 128;
  config.seed = 4;
  pneumo::write_synthetic_dataset(config);
  const pneumo::LabelSet labels = pneumo::read_labels(config.out_dir + "/stage_2_train_labels.csv");
  std::FILE* text = std::tmpfile();
  const pneumo::ExploreSummary summary = pneumo::explore_dataset(config.out_dir, config.out_dir + "/charts", text);
  std::rewind(text);
  std::string printed;
  for (int c; (c = std::fgetc(text)) != EOF;) printed += static_cast<char>(c);
  std::fclose(text);
  CHECK(summary.train_images == 12);
  CHECK(summary.test_images == 2);
  CHECK(summary.positive_images == labels.positive_count());
  CHECK(summary.frame_width == 128);
  int smallest_width = 1 << 30, smallest_height = 1 << 30;
  int64_t per_image_total = 0;
  for (const auto& [id, boxes] : labels.boxes)
    for (const pneumo::Box& box : boxes) {
      smallest_width = std::min(smallest_width, box.width);
      smallest_height = std::min(smallest_height, box.height);
    }
  for (const auto& [count, images] : summary.boxes_per_image) per_image_total += images;
  CHECK(per_image_total == labels.positive_count());
  CHECK(summary.min_box_width == smallest_width);
  CHECK(summary.min_box_height == smallest_height);
  CHECK(printed.find("Total train images: 12\n") != std::string::npos);
  CHECK(printed.find("Images with pneumonia: " + std::to_string(labels.positive_count()) + "\n") != std::string::npos);
  CHECK(printed.find("Minimum pneumonia width:  " + std::to_string(smallest_width) + "\n") != std::string::npos);
  REQUIRE(summary.charts.size() == 4);
  for (const std::string& chart : summary.charts) CHECK(std::filesystem::file_size(chart) > 1000);
  std::filesystem::remove_all(config.out_dir);
}
