// Network diagrams as SVG (data/presentation/network_diagram.h): nodes are placed in columns and
// rows, edges are drawn from each node's inputs; escaping and colours are the charts' helpers.
#include "data/presentation/network_diagram.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <vector>

#include "data/presentation/chart.h"
#include "engine/check.h"
#include "layers/conv2d.h"

namespace pneumo {

namespace {

// One box of a diagram.
struct Box {
  std::string name, detail, shape;  // first line: name and shape; second line: kind and details
  std::string kind;                 // the layer's kind, for its colour ("" for the image input)
  int column = 0, row = 0;
};

struct Edge {
  int from = 0, to = 0;  // indices into the boxes
};

// Sizes of one diagram in SVG user units.
struct Style {
  int box_width = 220, box_height = 32, row_pitch = 44, column_gap = 70, min_width = 0;
  int left = 20, bottom = 64, font = 11, title_font = 14;
};

Color kind_color(const std::string& kind) {
  static const std::map<std::string, Color> colors = {{"Conv2d", {198, 219, 239}},    {"BatchNorm2d", {253, 230, 160}},
                                                      {"LeakyReLU", {199, 233, 192}}, {"MaxPool2d", {252, 187, 161}},
                                                      {"Add", {218, 206, 240}},       {"Dropout", {230, 230, 230}},
                                                      {"Sigmoid", {240, 240, 240}},   {"Upsample", {240, 240, 240}}};
  const auto found = colors.find(kind);
  return found == colors.end() ? Color{255, 255, 255} : found->second;
}

std::string shape_text(const Shape& shape) {  // (1,H,W,C) -> "HxWxC"
  if (shape.size() != 4) return "?";
  return std::to_string(shape[1]) + "x" + std::to_string(shape[2]) + "x" + std::to_string(shape[3]);
}

std::string detail_text(const NetworkNode& node) {
  std::string kind = node.layer->kind();
  if (const auto* conv = dynamic_cast<const Conv2d*>(node.layer.get()))
    return kind + " " + std::to_string(conv->kernel_size()) + "x" + std::to_string(conv->kernel_size()) + ", " +
           std::to_string(conv->in_channels()) + "->" + std::to_string(conv->out_channels());
  return kind;
}

Box node_box(const NetworkNode& node, int column, int row) {
  return {node.name, detail_text(node), shape_text(node.image_shape), node.layer->kind(), column, row};
}

// The depth a node belongs to, from the node names of layers/network.h: down<d>.* and
// block<d>_<b>.* are depth d, conv0 joins depth 1, head.* (and anything else) comes after.
int64_t stage_of(const std::string& name, int64_t depth) {
  for (const std::string prefix : {"down", "block"}) {
    if (name.rfind(prefix, 0) != 0) continue;
    int64_t d = 0;
    size_t at = prefix.size();
    while (at < name.size() && std::isdigit(static_cast<unsigned char>(name[at])) && d <= depth)
      d = d * 10 + (name[at++] - '0');
    if (d >= 1 && d <= depth) return d;
  }
  return name == "conv0" ? 1 : depth + 1;
}

std::string number(int value) { return std::to_string(value); }

// Draws boxes and edges. Edge rules: into the next row of the same column, a straight arrow;
// within a column over skipped rows, an arc on the column's right side (class "skip"); between
// columns, a connector down from the source, along the gap, over the top of the target column.
std::string draw(const std::vector<Box>& boxes, const std::vector<Edge>& edges, const std::vector<std::string>& title,
                 const std::string& footer, const Style& style) {
  int columns = 0, rows = 0;
  for (const Box& box : boxes) columns = std::max(columns, box.column + 1), rows = std::max(rows, box.row + 1);
  const int width = std::max(style.min_width, style.left * 2 + columns * (style.box_width + style.column_gap));
  const int line_pitch = style.font + 7;  // title lines; the boxes start below them
  const int top = 24 + static_cast<int>(title.size()) * line_pitch + 12;
  const int height = top + rows * style.row_pitch + style.bottom;
  auto x_of = [&](const Box& box) { return style.left + box.column * (style.box_width + style.column_gap); };
  auto y_of = [&](const Box& box) { return top + box.row * style.row_pitch; };
  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    number(width) + "\" height=\"" + number(height) + "\" viewBox=\"0 0 " + number(width) + " " +
                    number(height) + "\" font-family=\"monospace\" font-size=\"" + number(style.font) + "\">\n";
  svg += "<title>" + xml_escape(title.at(0)) + "</title>\n";
  svg +=
      "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" "
      "orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#444\"/></marker></defs>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t i = 0; i < title.size(); ++i)
    svg += "<text x=\"" + number(style.left) + "\" y=\"" + number(20 + static_cast<int>(i) * line_pitch) +
           "\" font-size=\"" + number(i == 0 ? style.title_font : style.font) + "\"" +
           (i == 0 ? " font-weight=\"bold\"" : "") + ">" + xml_escape(title[i]) + "</text>\n";
  for (const Edge& edge : edges) {
    const Box& from = boxes.at(static_cast<size_t>(edge.from));
    const Box& to = boxes.at(static_cast<size_t>(edge.to));
    const int from_center = x_of(from) + style.box_width / 2, to_center = x_of(to) + style.box_width / 2;
    const int from_bottom = y_of(from) + style.box_height, to_top = y_of(to);
    std::string path, kind = "edge";
    if (from.column == to.column && to.row == from.row + 1) {
      path = "M" + number(from_center) + "," + number(from_bottom) + " V" + number(to_top);
    } else if (from.column == to.column && to.row > from.row) {
      kind = "skip";
      const int right = x_of(from) + style.box_width, out = right + style.column_gap / 3;
      path = "M" + number(right) + "," + number(y_of(from) + style.box_height / 2 + 4) + " H" + number(out) + " V" +
             number(y_of(to) + style.box_height / 2 - 4) + " H" + number(right);
    } else {
      const int gap = x_of(from) + style.box_width + style.column_gap * 2 / 3;
      const int above = top - 12;
      path = "M" + number(from_center) + "," + number(from_bottom) + " V" + number(from_bottom + 12) + " H" +
             number(gap) + " V" + number(above) + " H" + number(to_center) + " V" + number(to_top);
    }
    svg += "<path class=\"" + kind + "\" d=\"" + path + "\" fill=\"none\" stroke=\"" +
           (kind == "skip" ? "#7b4fc9" : "#444") + "\" stroke-width=\"" + (kind == "skip" ? "1.6" : "1") +
           "\" marker-end=\"url(#arrow)\"><title>" + xml_escape(from.name + " -> " + to.name) + "</title></path>\n";
  }
  for (const Box& box : boxes) {
    const int x = x_of(box), y = y_of(box);
    svg += "<g class=\"node\"><title>" + xml_escape(box.name) + "</title><rect x=\"" + number(x) + "\" y=\"" +
           number(y) + "\" width=\"" + number(style.box_width) + "\" height=\"" + number(style.box_height) +
           "\" rx=\"4\" fill=\"" + css_color(kind_color(box.kind)) + "\" stroke=\"#555\"/>";
    const int line1 = y + style.box_height / 2 - 3, line2 = y + style.box_height - 5;
    svg += "<text x=\"" + number(x + 6) + "\" y=\"" + number(line1) + "\" font-weight=\"bold\">" +
           xml_escape(box.name) + "</text>";
    svg += "<text x=\"" + number(x + style.box_width - 6) + "\" y=\"" + number(line1) + "\" text-anchor=\"end\">" +
           xml_escape(box.shape) + "</text>";
    svg += "<text x=\"" + number(x + 6) + "\" y=\"" + number(line2) + "\">" + xml_escape(box.detail) + "</text></g>\n";
  }
  svg += "<text x=\"" + number(style.left) + "\" y=\"" + number(height - 16) + "\">" + xml_escape(footer) + "</text>\n";
  return svg + "</svg>\n";
}

std::string config_text(const NetworkConfig& config) {
  return "create_network(input_size=" + std::to_string(config.input_size) +
         ", channels=" + std::to_string(config.channels) + ", n_blocks=" + std::to_string(config.n_blocks) +
         ", depth=" + std::to_string(config.depth) + ")";
}

Box image_box(const NetworkConfig& config, int column, int row) {
  return {"images",
          "input, grey levels in [0,1]",
          std::to_string(config.input_size) + "x" + std::to_string(config.input_size) + "x1",
          "",
          column,
          row};
}

}  // namespace

std::string draw_network_svg(const Network& network) {
  const NetworkConfig& config = network.config();
  const std::vector<NetworkNode>& nodes = network.nodes();
  std::vector<Box> boxes = {image_box(config, 0, 0)};  // box 0: the images; node i is box i + 1
  std::vector<int> next_row(static_cast<size_t>(config.depth + 1), 0);
  next_row[0] = 1;
  for (const NetworkNode& node : nodes) {
    const int column = static_cast<int>(stage_of(node.name, config.depth) - 1);
    boxes.push_back(node_box(node, column, next_row[static_cast<size_t>(column)]++));
  }
  std::vector<Edge> edges;
  int skips = 0;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int input : nodes[i].inputs) {
      edges.push_back({input + 1, static_cast<int>(i) + 1});
      const size_t from_box = input < 0 ? 0 : static_cast<size_t>(input) + 1;  // box 0: the images
      const Box &from = boxes[from_box], &to = boxes[i + 1];
      if (from.column == to.column && to.row > from.row + 1) ++skips;
    }
  const std::vector<std::string> title = {
      "The network pneumo builds: " + config_text(config),
      std::to_string(nodes.size()) + " nodes, " + std::to_string(network.trainable_parameter_count()) +
          " trainable parameters; columns: the stem and depth 1, depths 2.." + std::to_string(config.depth) +
          ", the head. Boxes: node name, output HxWxC of one image, layer.",
      "Purple arcs: the " + std::to_string(skips) +
          " residual skip paths (block input -> add). Generated by `pneumo summary --svg` from Network::nodes()."};
  return draw(boxes, edges, title, "head.upsample's output: the probabilities, one per pixel.", Style{});
}

std::string draw_residual_block_svg(const Network& network, const std::string& block) {
  const std::vector<NetworkNode>& nodes = network.nodes();
  std::vector<int> members;  // node indices of the block, in order
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name.rfind(block + ".", 0) == 0) members.push_back(static_cast<int>(i));
  if (members.empty()) throw Error("residual block diagram: the network has no block named " + block);
  // The block's input: whatever its first node reads (the previous add, or the pool of its depth).
  const int input = nodes[static_cast<size_t>(members.front())].inputs.at(0);
  std::vector<Box> boxes;
  std::map<int, int> box_of;  // node index -> box index
  if (input >= 0) {
    boxes.push_back(node_box(nodes[static_cast<size_t>(input)], 0, 0));
    boxes.back().detail = "block input x (" + boxes.back().detail + ")";
  } else {
    boxes.push_back(image_box(network.config(), 0, 0));
  }
  box_of[input] = 0;
  for (int i : members) {
    box_of[i] = static_cast<int>(boxes.size());
    boxes.push_back(node_box(nodes[static_cast<size_t>(i)], 0, static_cast<int>(boxes.size())));
  }
  std::vector<Edge> edges;
  for (int i : members)
    for (int from : nodes[static_cast<size_t>(i)].inputs)
      if (box_of.count(from) != 0) edges.push_back({box_of[from], box_of[i]});
  Style style;
  style.box_width = 300, style.box_height = 38, style.row_pitch = 56, style.font = 13, style.title_font = 15;
  style.column_gap = 120, style.min_width = 640;
  const std::vector<std::string> title = {"Residual block " + block, "of " + config_text(network.config()),
                                          "Branch: batch norm, ReLU, 3x3 conv, twice; the add sums the branch",
                                          "and the block input x (purple: the skip path).",
                                          "Boxes: node name, output HxWxC of one image, layer."};
  return draw(boxes, edges, title, "Generated by `pneumo summary --block-svg` from Network::nodes().", style);
}

}  // namespace pneumo
