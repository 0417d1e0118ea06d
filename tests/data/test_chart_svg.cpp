// The SVG renderer of line panels (data/presentation/chart.h, chart_svg.cpp): values land on the
// pixel coordinates the data area maps them to, ticks come from nice_ticks (or whole decades on a
// log axis), points that cannot be drawn are gaps, and text is escaped.
#include <cmath>
#include <string>

#include "data/presentation/chart.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

// The points="..." attribute of the n-th polyline.
std::string polyline_points(const std::string& svg, int n = 0) {
  size_t at = svg.find("<polyline");
  for (int i = 0; i < n && at != std::string::npos; ++i) at = svg.find("<polyline", at + 1);
  REQUIRE(at != std::string::npos);
  const size_t begin = svg.find("points=\"", at) + 8;
  return svg.substr(begin, svg.find('"', begin) - begin);
}

size_t count(const std::string& text, const std::string& part) {
  size_t found = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++found;
  return found;
}

}  // namespace

TEST_CASE("an SVG line panel maps each point to the pixel its value stands for") {
  // 920 x 340 with margins left 70, right 20, top 28, bottom 40: the data area is 830 x 272 at
  // (70, 28); x in [0, 2] and y in [0, 2] (no padding), so 1 is the middle of both axes.
  pneumo::LinePanel panel;
  panel.title = "loss";
  panel.x_label = "Adam step";
  panel.y_label = "BCE";
  panel.series.push_back({"train", {0, 1, 2}, {0, 1, 2}, {255, 0, 0}});
  panel.series.push_back({"validation", {0, 2}, {2, 2}, {0, 128, 255}});
  pneumo::PlotArea area;
  const std::string svg = pneumo::draw_line_panel_svg(panel, 920, 340, &area);
  CHECK(area.left == 70);
  CHECK(area.top == 28);
  CHECK(area.width == 830);
  CHECK(area.height == 272);
  CHECK(area.x_min == 0);
  CHECK(area.x_max == 2);
  CHECK(area.y_min == 0);
  CHECK(area.y_max == 2);
  CHECK(svg.rfind("<svg class=\"lines\" width=\"920\" height=\"340\" viewBox=\"0 0 920 340\"", 0) == 0);
  CHECK(svg.substr(svg.size() - 6) == "</svg>");
  CHECK(count(svg, "<polyline") == 2);
  CHECK(polyline_points(svg, 0) == "70,300 485,164 900,28 ");
  CHECK(polyline_points(svg, 1) == "70,28 900,28 ");
  CHECK(svg.find("stroke=\"#ff0000\" stroke-width=\"1.3\" points=\"70,300") != std::string::npos);
  CHECK(svg.find("stroke=\"#0080ff\"") != std::string::npos);
  CHECK(svg.find("<title>train</title></polyline>") != std::string::npos);
  // y ticks: nice_ticks(0, 2, 6) = 0, 0.5, ..., 2; tick 1.5 sits at y = 300 - 272 * 0.75 = 96,
  // its label 4 pixels lower, right-aligned 6 pixels left of the axis.
  CHECK(svg.find("<line x1=\"70\" y1=\"96\" x2=\"900\" y2=\"96\" stroke=\"#e4e4e4\"/>") != std::string::npos);
  CHECK(svg.find("<text x=\"64\" y=\"100\" class=\"a\" text-anchor=\"end\">1.5</text>") != std::string::npos);
  // x ticks: nice_ticks(0, 2, 8) steps by 0.25; 0.25 is at 70 + 830 / 8 = 173.75, under the axis.
  CHECK(svg.find("<text x=\"173.75\" y=\"316\" class=\"a\" text-anchor=\"middle\">0.25</text>") != std::string::npos);
  CHECK(svg.find(">Adam step</text>") != std::string::npos);
  CHECK(svg.find("transform=\"rotate(-90 14 164)\">BCE</text>") != std::string::npos);
}

TEST_CASE("an SVG log10 panel draws whole decades and skips non-positive values") {
  pneumo::LinePanel panel;
  panel.title = "gradient norm";
  panel.y_scale = pneumo::AxisScale::log10;
  panel.series.push_back({"conv0", {1, 2, 3, 4}, {0.001, 0.1, -1, 10}, {0, 0, 0}});
  pneumo::PlotArea area;
  const std::string svg = pneumo::draw_line_panel_svg(panel, 920, 340, &area);
  // log10: -3, -1, (gap), 1 -> y from 1e-3 to 1e1; the skipped point's x is not in the range.
  CHECK(area.y_min == -3);
  CHECK(area.y_max == 1);
  CHECK(area.x_min == 1);
  CHECK(area.x_max == 4);
  CHECK(polyline_points(svg) == "70,300 346.667,164 900,28 ");
  for (const char* tick : {">1e-3</text>", ">1e-2</text>", ">1e-1</text>", ">1e0</text>", ">1e1</text>"})
    CHECK(svg.find(tick) != std::string::npos);
}

TEST_CASE("an SVG panel leaves out values beyond +-1e300 and non-finite ones, and can span 0..1") {
  pneumo::LinePanel panel;
  panel.title = "dead units";
  panel.y_range_0_to_1 = true;
  panel.series.push_back({"relu", {0, 0.5, 1, 2, NAN}, {0.25, NAN, 0.5, 1e301, 0.75}, {0, 0, 0}});
  pneumo::PlotArea area;
  const std::string svg = pneumo::draw_line_panel_svg(panel, 920, 340, &area);
  CHECK(area.x_min == 0);
  CHECK(area.x_max == 1);
  CHECK(area.y_min == 0);
  CHECK(area.y_max == 1);
  CHECK(polyline_points(svg) == "70,232 900,164 ");
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);

  pneumo::LinePanel empty;
  empty.title = "nothing";
  empty.series.push_back({"only gaps", {0, 1}, {NAN, INFINITY}, {0, 0, 0}});
  const std::string no_data = pneumo::draw_line_panel_svg(empty);
  CHECK(no_data.find(">no data</text></svg>") != std::string::npos);
  CHECK(no_data.find("<polyline") == std::string::npos);
}

TEST_CASE("SVG text is escaped: title, labels and series names") {
  CHECK(pneumo::xml_escape("a<b & \"c\" >") == "a&lt;b &amp; &quot;c&quot; &gt;");
  CHECK(pneumo::css_color({255, 16, 0}) == "#ff1000");
  pneumo::LinePanel panel;
  panel.title = "<&\"";
  panel.y_label = "|w| < 1 & \"small\"";
  panel.series.push_back({"block1_1.conv1 <x>", {0, 1}, {0, 1}, {0, 0, 0}});
  const std::string svg = pneumo::draw_line_panel_svg(panel);
  CHECK(svg.find("role=\"img\"><title>&lt;&amp;&quot;</title>") != std::string::npos);
  CHECK(svg.find("class=\"t\">&lt;&amp;&quot;</text>") != std::string::npos);
  CHECK(svg.find(">|w| &lt; 1 &amp; &quot;small&quot;</text>") != std::string::npos);
  CHECK(svg.find("<title>block1_1.conv1 &lt;x&gt;</title></polyline>") != std::string::npos);
  CHECK(svg.find("<&\"") == std::string::npos);
}
