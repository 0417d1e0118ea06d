// The inspect pages' sections: what a learner reads about each node (explanation), the flow of the
// step, the boxes the step's probabilities give, one section per node, and the two pages that
// string them together. The skeleton (CSS, text, data: URIs) is apps/inspect_page_skeleton.h,
// the pictures and histograms apps/inspect_page_drawing.h.
#include "apps/inspect_page.h"

#include "apps/inspect_page_drawing.h"
#include "apps/inspect_page_skeleton.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "data/presentation/chart.h"
#include "data/presentation/picture.h"
#include "data/evaluation/postprocess.h"
#include "data/presentation/render.h"
#include "data/input/resize.h"
#include "engine/check.h"
#include "kernels/connected_components.h"

namespace pneumo::cli {

namespace {

using namespace page;

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
            "</b>" + node.kind + "<br/>" + shape_string(node.output_shape) + "<br/>" +
            with_commas(node.parameter_count) + " params<br/>" + flops_text(node.flops) + "<br/>fwd " +
            number(node.forward_ms, 3) + " ms, bwd " + number(node.backward_ms, 3) + " ms";
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
  const LayerFunctions& functions = node.functions;  // from the layer that ran (Layer::functions)
  std::string html = "<section class=\"node\" id=\"node-" + html_escape(node.name) + "\" data-node=\"" +
                     html_escape(node.name) + "\"><h3>" + html_escape(node.name) + "<span class=\"kind\">" + node.kind +
                     "</span></h3><p class=\"what\">" + explanation(node.kind) + "</p>";
  std::string inputs;
  for (int input : node.inputs)
    inputs += (inputs.empty() ? "" : " + ") +
              (input < 0 ? std::string("image") : step.nodes[static_cast<size_t>(input)].name);
  html += "<div class=\"facts\">input " + html_escape(inputs) + " &#183; output " + shape_string(node.output_shape) +
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
      html += "<tr><td>" + html_escape(parameter.name) + "</td><td>" + shape_string(parameter.shape) + "</td><td>" +
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
          teaching_link(source, "data/evaluation/postprocess.md") + ".</p>";
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
    return viridis(order.size() > 1 ? 0.92 * static_cast<double>(index) / (order.size() - 1) : 0.0);
  };
  auto series_of = [&](const std::string& kind_filter, bool need_parameters, double LayerStatisticsRow::*field) {
    std::vector<LineSeries> series;
    for (size_t i = 0; i < order.size(); ++i) {
      const auto& node_rows = by_node[order[i]];
      if (node_rows.empty() || (!kind_filter.empty() && node_rows.front()->kind != kind_filter)) continue;
      if (need_parameters && !node_rows.front()->has_parameters) continue;
      LineSeries line;
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
    LinePanel panel;
    panel.title = chart.title;
    panel.x_label = "Adam step";
    panel.y_label = chart.y_label;
    panel.series = series_of(chart.kind, chart.parameters, chart.field);
    panel.y_scale = chart.log_y ? AxisScale::log10 : AxisScale::linear;
    panel.y_range_0_to_1 = chart.field == &LayerStatisticsRow::dead_unit_fraction;  // shares: always 0..1
    html += draw_line_panel_svg(panel);
  }
  html += "</main></body></html>\n";
  return html;
}

}  // namespace pneumo::cli
