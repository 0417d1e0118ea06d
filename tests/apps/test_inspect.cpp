// pneumo inspect: the numbers on the page are the engine's (recomputed here naively from the
// tensors the step left in the network), the inspected step is exactly train_step, the page is
// well-formed with one section per node, and the training recorder's statistics and page.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "apps/inspect_page.h"
#include "apps/inspect_record.h"
#include "apps/inspect_step.h"
#include "engine/check.h"
#include "layers/training_step.h"

using namespace pneumo;
using namespace pneumo::cli;

namespace {

const NetworkConfig kConfig{32, 4, 1, 2, 0.0f};  // 32x32, 4 channels, 1 block, depth 2

struct Batch {
  Tensor images, masks;  // (1,32,32,1)
  Image native;          // the same image at 64x64, for the box pictures
  std::vector<Box> boxes;
};

Batch make_batch() {
  Batch batch;
  const int S = 32;
  std::vector<float> image(S * S), mask(S * S, 0.0f);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      image[y * S + x] = 0.5f + 0.4f * std::sin(0.37f * x) * std::cos(0.23f * y);
      if (x >= 8 && x < 20 && y >= 10 && y < 24) {
        mask[y * S + x] = 1.0f;
        image[y * S + x] += 0.1f;
      }
    }
  batch.images = Tensor(Device::CPU, {1, S, S, 1});
  batch.masks = Tensor(Device::CPU, {1, S, S, 1});
  batch.images.set_values(image);
  batch.masks.set_values(mask);
  batch.native.width = batch.native.height = 64;
  batch.native.pixels.resize(64 * 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) batch.native.pixels[y * 64 + x] = std::min(1.0f, image[(y / 2) * S + x / 2]);
  batch.boxes = {Box{16, 20, 24, 28}};
  return batch;
}

InspectSource make_source(const Batch& batch) {
  InspectSource source;
  source.network_description = "test network";
  source.image_description = "synthetic";
  source.device_description = "cpu";
  source.native = batch.native;
  source.true_boxes = batch.boxes;
  source.repository = PNEUMO_SOURCE_DIR;
  source.page_directory = std::string(PNEUMO_SOURCE_DIR) + "/build";
  return source;
}

// Every data-stat of every node section: section name -> key -> value.
std::map<std::string, std::map<std::string, double>> page_stats(const std::string& html) {
  std::map<std::string, std::map<std::string, double>> stats;
  const std::string open = "<section class=\"node\"";
  for (size_t at = html.find(open); at != std::string::npos; at = html.find(open, at + 1)) {
    const size_t name_at = html.find("data-node=\"", at) + 11;
    const std::string name = html.substr(name_at, html.find('"', name_at) - name_at);
    const size_t end = html.find("</section>", at);
    for (size_t key_at = html.find("data-stat=\"", at); key_at < end; key_at = html.find("data-stat=\"", key_at + 1)) {
      key_at += 11;
      const std::string key = html.substr(key_at, html.find('"', key_at) - key_at);
      const size_t value_at = html.find("data-value=\"", key_at) + 12;
      stats[name][key] = std::stod(html.substr(value_at, html.find('"', value_at) - value_at));
    }
  }
  return stats;
}

// Checks that every element is closed in order (void elements and "/>" excepted); returns the
// first problem, or "" when the page is well-formed.
std::string well_formed(const std::string& html) {
  static const std::vector<std::string> voids = {"meta", "img", "br", "hr", "input", "link"};
  std::vector<std::string> stack;
  for (size_t at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    if (html.compare(at, 2, "<!") == 0) continue;  // doctype
    const size_t end = html.find('>', at);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(at);
    const std::string tag = html.substr(at + 1, end - at - 1);
    if (tag.empty()) return "empty tag at " + std::to_string(at);
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> at " + std::to_string(at) + " closes <" + (stack.empty() ? "" : stack.back()) + ">";
      stack.pop_back();
    } else {
      const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
      const bool self_closing = tag.back() == '/';
      const bool is_void = std::find(voids.begin(), voids.end(), name) != voids.end();
      if (!self_closing && !is_void) stack.push_back(name);
      if (name == "style") {  // raw text up to </style>
        const size_t close = html.find("</style>", end);
        if (close == std::string::npos) return "unterminated <style>";
        stack.pop_back();
        at = close + 7;
        continue;
      }
    }
    at = end;
  }
  return stack.empty() ? "" : "<" + stack.back() + "> never closed";
}

double norm(const std::vector<float>& values) {
  double sum = 0;
  for (float v : values) sum += static_cast<double>(v) * v;
  return std::sqrt(sum);
}

int node_index(const Network& network, const std::string& name) {
  for (size_t i = 0; i < network.nodes().size(); ++i)
    if (network.nodes()[i].name == name) return static_cast<int>(i);
  FAIL("no node " << name);
  return -1;
}

}  // namespace

TEST_CASE("the numbers on the inspect page are recomputed from the step's tensors") {
  Context context(Device::CPU);
  Network network(Device::CPU, kConfig, 7);
  Adam adam;
  const Batch batch = make_batch();
  const std::vector<float> before = network.parameters().values().to_vector();
  const InspectedStep step = inspect_training_step(context, network, adam, batch.images, batch.masks, 1e-2f);
  const std::string html = inspect_page_html(step, make_source(batch));
  const auto stats = page_stats(html);
  auto close = [](double page, double expected) {
    return std::fabs(page - expected) <= 1e-6 * std::max(1e-12, std::fabs(expected)) + 1e-12;
  };

  // A ReLU's activation statistics, from its output tensor (untouched by backward and Adam).
  {
    const std::vector<float> output = network.nodes()[node_index(network, "down1.relu")].output.to_vector();
    double sum = 0, zeros = 0;
    for (float v : output) {
      sum += v;
      zeros += v == 0.0f;
    }
    const double mean = sum / output.size();
    double squares = 0;
    for (float v : output) squares += (v - mean) * (v - mean);
    const auto& page = stats.at("down1.relu");
    CHECK(close(page.at("activation_mean"), mean));
    CHECK(close(page.at("activation_std"), std::sqrt(squares / output.size())));
    CHECK(close(page.at("zero_fraction"), zeros / output.size()));
    CHECK(page.at("zero_fraction") > 0.05);  // a ReLU with zeros: the statistic is not trivially 0
  }
  // A convolution's weight gradient norm and Adam update ratio, from the parameter store.
  {
    const ParameterEntry& entry = network.parameters().entry("block1_1.conv1.weight");
    const std::vector<float> after = entry.value.to_vector();
    std::vector<float> weight_before(before.begin() + entry.offset, before.begin() + entry.offset + after.size());
    std::vector<float> update(after.size());
    for (size_t i = 0; i < after.size(); ++i) update[i] = after[i] - weight_before[i];
    const auto& page = stats.at("block1_1.conv1");
    CHECK(close(page.at("weight.gradient_norm"), norm(entry.gradient.to_vector())));
    CHECK(close(page.at("weight.weight_norm"), norm(weight_before)));
    CHECK(close(page.at("weight.update_ratio"), norm(update) / norm(weight_before)));
    CHECK(page.at("weight.update_ratio") > 0);
  }
  // The gradient that starts backward: d loss / d probabilities, still in the network's buffer.
  CHECK(close(stats.at("head.upsample").at("gradient_norm"), norm(network.output_gradient_buffer().to_vector())));
  // The loss split, recomputed from the (unchanged) probabilities.
  const LossValues loss = iou_bce_loss(context, network.output(), batch.masks, nullptr);
  CHECK(html.find("data-stat=\"bce\" data-value=\"") != std::string::npos);
  CHECK(step.loss.bce == doctest::Approx(loss.bce).epsilon(1e-12));
  CHECK(step.loss.iou_loss == doctest::Approx(loss.iou_loss).epsilon(1e-12));
  CHECK(std::fabs(step.loss.loss - (0.5 * step.loss.bce + 0.5 * step.loss.iou_loss)) < 1e-12);
  // Batch norm: the batch mean of channel 0 of down1.bn's input (conv0's output).
  {
    const std::vector<float> input = network.nodes()[node_index(network, "conv0")].output.to_vector();
    double sum = 0;
    for (size_t i = 0; i < input.size(); i += 4) sum += input[i];
    CHECK(close(stats.at("down1.bn").at("batch_mean.0"), sum / (input.size() / 4)));
  }
}

TEST_CASE("the inspected step is exactly train_step") {
  Context context(Device::CPU);
  Network inspected(Device::CPU, kConfig, 11), trained(Device::CPU, kConfig, 11);
  Adam adam_inspected, adam_trained;
  const Batch batch = make_batch();
  for (int repeat = 0; repeat < 2; ++repeat) {
    const InspectedStep step =
        inspect_training_step(context, inspected, adam_inspected, batch.images, batch.masks, 3e-3f);
    const StepResult result = train_step(context, trained, adam_trained, batch.images, batch.masks, 3e-3f);
    CHECK(step.loss.loss == result.loss.loss);
    CHECK(step.adam_step == adam_trained.step_count());
  }
  CHECK(inspected.parameters().values().to_vector() == trained.parameters().values().to_vector());
  CHECK(inspected.parameters().state().to_vector() == trained.parameters().state().to_vector());
  CHECK(inspected.parameters().adam_v().to_vector() == trained.parameters().adam_v().to_vector());
}

TEST_CASE("the inspect page is well-formed, self-contained and has one section per node") {
  Context context(Device::CPU);
  Network network(Device::CPU, kConfig, 3);
  Adam adam;
  const Batch batch = make_batch();
  const InspectedStep step = inspect_training_step(context, network, adam, batch.images, batch.masks, 1e-3f);
  const std::string html = inspect_page_html(step, make_source(batch));
  CHECK(well_formed(html) == "");
  std::vector<std::string> sections;
  const std::string marker = "<section class=\"node\"";
  for (size_t at = html.find(marker); at != std::string::npos; at = html.find(marker, at + 1)) {
    const size_t name_at = html.find("data-node=\"", at) + 11;
    sections.push_back(html.substr(name_at, html.find('"', name_at) - name_at));
  }
  std::vector<std::string> names;
  for (const auto& node : network.nodes()) names.push_back(node.name);
  CHECK(sections == names);
  // Every section has an output picture, a gradient picture and the function names.
  for (const std::string& name : names) {
    const size_t at = html.find("data-node=\"" + name + "\"");
    const std::string section = html.substr(at, html.find("</section>", at) - at);
    size_t pictures = 0;
    for (size_t p = section.find("src=\"data:image/png;base64,"); p != std::string::npos;
         p = section.find("src=\"data:image/png;base64,", p + 1))
      ++pictures;
    CHECK_MESSAGE(pictures == 2, name);
    CHECK_MESSAGE(section.find("forward: ") != std::string::npos, name);
    CHECK_MESSAGE(section.find("href=\"../layers/") != std::string::npos, name);
  }
  // Nothing is fetched from anywhere: no script, stylesheet link, remote source or web font.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  // The well-formedness check itself catches a broken page.
  CHECK(well_formed("<div><p>x</div>") != "");
}

TEST_CASE("each node's function chain comes from the layer that ran, a convolution's from its policy") {
  // Once a hand-written table named conv2d_backward_cpu, which does not exist, and never said
  // which algorithm ran: now each layer answers (Layer::functions), a convolution with the
  // algorithm its selector decided in the step and why.
  Context context(Device::CPU);
  const Batch batch = make_batch();
  for (const char* names : {"gemm", "winograd4,gemm", "reference"}) {
    CAPTURE(names);
    Network network(Device::CPU, kConfig, 3);
    ConvPolicy policy;
    policy.algorithms = parse_conv_algorithms(names);
    policy.origin = "--conv-algo";
    network.set_conv_policy(policy);
    Adam adam;
    const InspectedStep step = inspect_training_step(context, network, adam, batch.images, batch.masks, 1e-3f);
    const std::string html = inspect_page_html(step, make_source(batch));
    for (const NodeRecord& node : step.nodes) {
      CAPTURE(node.name);
      CHECK(node.functions.forward.rfind(node.kind + "::forward_cpu -> ", 0) == 0);
      CHECK(node.functions.backward.rfind(node.kind + "::backward_cpu -> ", 0) == 0);
      CHECK(html.find(html_escape(node.functions.forward)) != std::string::npos);
      if (node.kind != "Conv2d") continue;
      // block convs are 3x3 (Winograd runs them), down and head convs 1x1 (gemm, said why).
      const bool three = node.name.find(".conv1") != std::string::npos ||
                         node.name.find(".conv2") != std::string::npos || node.name == "conv0";
      const std::string expected = std::string(names) == "reference" ? "reference [forced (--conv-algo reference)]: "
                                   : std::string(names) == "gemm"    ? "gemm [forced (--conv-algo gemm)]: "
                                   : three ? "winograd4 [first runnable of --conv-algo winograd4,gemm]: "
                                           : "gemm [first runnable of --conv-algo winograd4,gemm (winograd4 runs 3x3";
      CHECK(node.functions.forward.find("conv2d_forward_cpu -> " + expected) != std::string::npos);
      CHECK(node.functions.backward.find("conv2d_weight_gradient_cpu -> " + expected) != std::string::npos);
      // The first convolution reads the images: no input gradient is computed, none is named.
      CHECK((node.functions.backward.find("conv2d_input_gradient_cpu") != std::string::npos) == (node.name != "conv0"));
      CHECK(node.functions.forward.find(std::string(names) == "reference"       ? "conv_reference_forward_cpu"
                                        : three && std::string(names) != "gemm" ? "conv_winograd_cpu"
                                                                                : "cpu_sgemm") != std::string::npos);
    }
  }
}

TEST_CASE("the training recorder's statistics and their page") {
  Context context(Device::CPU);
  Network network(Device::CPU, kConfig, 5);
  Adam adam;
  const Batch batch = make_batch();
  const std::vector<float> before = network.parameters().values().to_vector();
  train_step(context, network, adam, batch.images, batch.masks, 1e-2f);
  const std::vector<LayerStatisticsRow> rows = layer_statistics(network, before, 1, 1);
  REQUIRE(rows.size() == network.nodes().size());
  const int relu = node_index(network, "block1_1.relu1");
  const std::vector<float> output = network.nodes()[relu].output.to_vector();  // batch of 1: the first image
  double sum = 0, zeros = 0;
  const int64_t channels = network.nodes()[relu].output.C();
  std::vector<bool> alive(channels, false);
  for (size_t i = 0; i < output.size(); ++i) {
    sum += output[i];
    zeros += output[i] == 0.0f;
    if (output[i] != 0.0f) alive[i % channels] = true;
  }
  CHECK(rows[relu].activation_mean == doctest::Approx(sum / output.size()).epsilon(1e-9));
  CHECK(rows[relu].zero_fraction == doctest::Approx(zeros / output.size()).epsilon(1e-12));
  CHECK(rows[relu].dead_unit_fraction ==
        doctest::Approx(static_cast<double>(std::count(alive.begin(), alive.end(), false)) / channels));
  const int conv = node_index(network, "block1_1.conv2");
  const ParameterEntry& entry = network.parameters().entry("block1_1.conv2.weight");
  CHECK(rows[conv].has_parameters);
  CHECK(!rows[relu].has_parameters);
  CHECK(rows[conv].gradient_norm == doctest::Approx(norm(entry.gradient.to_vector())).epsilon(1e-9));
  std::vector<float> update = entry.value.to_vector();
  std::vector<float> weight_before(before.begin() + entry.offset, before.begin() + entry.offset + update.size());
  for (size_t i = 0; i < update.size(); ++i) update[i] -= weight_before[i];
  CHECK(rows[conv].update_ratio == doctest::Approx(norm(update) / norm(weight_before)).epsilon(1e-9));

  // The page: one polyline per node with parameters in the gradient chart, well-formed.
  const std::string html = training_statistics_page_html(rows, "run");
  CHECK(well_formed(html) == "");
  size_t lines = 0;
  for (size_t p = html.find("<polyline"); p != std::string::npos; p = html.find("<polyline", p + 1)) ++lines;
  size_t with_parameters = 0, relus = 0;
  for (const auto& row : rows) {
    with_parameters += row.has_parameters;
    relus += row.kind == "LeakyReLU";
  }
  CHECK(lines == 3 * with_parameters + relus + 2 * rows.size());
  // A CSV row reads back as written.
  const LayerStatisticsRow& row = rows[conv];
  const std::string text = format_statistics_row(row);
  CHECK(text.rfind("1,1,block1_1.conv2,Conv2d,", 0) == 0);
}

TEST_CASE("the statistics page of an inspect.csv with 1e308, -1e308 and subnormal values is drawn at once") {
  // Before: nice_ticks looped over the overflowing span (86 s, then std::bad_alloc).
  std::vector<LayerStatisticsRow> rows;
  const double means[] = {1e308, -1e308, 1e-320, 0.25, -0.5};
  for (int step = 1; step <= 5; ++step) {
    LayerStatisticsRow row;
    row.step = step;
    row.epoch = 1;
    row.node = "conv0";
    row.kind = "Conv2d";
    row.activation_mean = means[step - 1];
    row.activation_std = step == 2 ? 1e-320 : 1.0;
    rows.push_back(row);
  }
  const std::string html = training_statistics_page_html(rows, "run");
  CHECK(well_formed(html) == "");
  // Every coordinate is a finite number: no nan or inf in the polylines' points and y attributes.
  size_t polylines = 0;
  for (const char* attribute : {"points=\"", " y=\"", " y1=\""})
    for (size_t p = html.find(attribute); p != std::string::npos; p = html.find(attribute, p + 1)) {
      const size_t begin = p + std::string(attribute).size(), end = html.find('"', begin);
      const std::string value = html.substr(begin, end - begin);
      INFO(attribute << value);
      CHECK(value.find_first_not_of("0123456789.,-+e ") == std::string::npos);
      polylines += attribute[0] == 'p';
    }
  CHECK(polylines >= 2);
  CHECK(html.find("e+308") == std::string::npos);  // the absurd means are skipped, not drawn
}
