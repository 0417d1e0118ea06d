#include "apps/inspect_record.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "apps/run_files.h"
#include "engine/check.h"

namespace pneumo::cli {

namespace {

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream stream(line);
  std::string field;
  while (std::getline(stream, field, ',')) fields.push_back(field);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

double parse_number(const std::string& text, const std::string& where, const char* field) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') throw Error(where + ": field " + field + ": expected a number, got '" + text + "'");
  return value;
}

}  // namespace

std::string format_statistics_row(const LayerStatisticsRow& row) {
  char text[512];
  if (row.has_parameters)
    std::snprintf(text, sizeof text, "%lld,%lld,%s,%s,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g",
                  static_cast<long long>(row.step), static_cast<long long>(row.epoch), row.node.c_str(),
                  row.kind.c_str(), row.activation_mean, row.activation_std, row.zero_fraction, row.dead_unit_fraction,
                  row.weight_norm, row.gradient_norm, row.update_ratio);
  else
    std::snprintf(text, sizeof text, "%lld,%lld,%s,%s,%.9g,%.9g,%.9g,%.9g,,,", static_cast<long long>(row.step),
                  static_cast<long long>(row.epoch), row.node.c_str(), row.kind.c_str(), row.activation_mean,
                  row.activation_std, row.zero_fraction, row.dead_unit_fraction);
  return text;
}

std::vector<LayerStatisticsRow> read_statistics_csv(const std::string& path) {
  std::stringstream text(read_text(path));
  std::string line;
  if (!std::getline(text, line) || line != kInspectCsvHeader)
    throw Error(path + ": line 1: expected the header '" + std::string(kInspectCsvHeader) + "'");
  std::vector<LayerStatisticsRow> rows;
  for (int number = 2; std::getline(text, line); ++number) {
    if (line.empty()) continue;
    const std::string where = path + ": line " + std::to_string(number);
    const std::vector<std::string> fields = split_fields(line);
    if (fields.size() != 11) throw Error(where + ": expected 11 fields, got " + std::to_string(fields.size()));
    LayerStatisticsRow row;
    row.step = static_cast<int64_t>(parse_number(fields[0], where, "step"));
    row.epoch = static_cast<int64_t>(parse_number(fields[1], where, "epoch"));
    row.node = fields[2];
    row.kind = fields[3];
    row.activation_mean = parse_number(fields[4], where, "activation_mean");
    row.activation_std = parse_number(fields[5], where, "activation_std");
    row.zero_fraction = parse_number(fields[6], where, "zero_fraction");
    row.dead_unit_fraction = parse_number(fields[7], where, "dead_unit_fraction");
    row.has_parameters = !fields[8].empty();
    if (row.has_parameters) {
      row.weight_norm = parse_number(fields[8], where, "weight_norm");
      row.gradient_norm = parse_number(fields[9], where, "gradient_norm");
      row.update_ratio = parse_number(fields[10], where, "update_ratio");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<LayerStatisticsRow> layer_statistics(const Network& network, const std::vector<float>& values_before,
                                                 int64_t step, int64_t epoch) {
  const ParameterStore& store = network.parameters();
  const std::vector<float> values_after = store.values().to_vector();  // (P), device -> host
  const std::vector<float> gradients = store.gradients().to_vector();  // (P)
  std::vector<LayerStatisticsRow> rows;
  for (const NetworkNode& node : network.nodes()) {
    LayerStatisticsRow row;
    row.step = step;
    row.epoch = epoch;
    row.node = node.name;
    row.kind = node.layer->kind();
    // The first image of the batch: a fixed, small share of the activations, so recording stays
    // cheap on the GPU too (one image's outputs cross to the host, not the batch's).
    const Tensor first = node.output.leading({1, node.output.H(), node.output.W(), node.output.C()});
    const std::vector<float> output = first.to_vector();  // (1,H,W,C)
    const int64_t channels = first.C();
    double sum = 0;
    int64_t zeros = 0;
    std::vector<char> alive(static_cast<size_t>(channels), 0);
    for (size_t i = 0; i < output.size(); ++i) {
      sum += output[i];
      if (output[i] == 0.0f)
        ++zeros;
      else
        alive[i % static_cast<size_t>(channels)] = 1;
    }
    const double count = static_cast<double>(output.size());
    row.activation_mean = sum / count;
    double squares = 0;
    for (float value : output) squares += (value - row.activation_mean) * (value - row.activation_mean);
    row.activation_std = std::sqrt(squares / count);
    row.zero_fraction = static_cast<double>(zeros) / count;
    int64_t dead = 0;
    for (char is_alive : alive) dead += !is_alive;
    row.dead_unit_fraction = static_cast<double>(dead) / static_cast<double>(channels);

    double weight = 0, gradient = 0, update = 0;
    const std::string prefix = node.name + ".";
    for (const ParameterEntry& entry : store.entries()) {
      if (!entry.spec.trainable || entry.spec.name.compare(0, prefix.size(), prefix) != 0) continue;
      row.has_parameters = true;
      const int64_t end = entry.offset + shape_count(entry.spec.shape);
      for (int64_t i = entry.offset; i < end; ++i) {
        const double before = values_before[i];
        weight += before * before;
        gradient += static_cast<double>(gradients[i]) * gradients[i];
        const double change = static_cast<double>(values_after[i]) - before;
        update += change * change;
      }
    }
    if (row.has_parameters) {
      row.weight_norm = std::sqrt(weight);
      row.gradient_norm = std::sqrt(gradient);
      row.update_ratio = weight > 0 ? std::sqrt(update) / row.weight_norm : 0.0;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

TrainingRecorder::TrainingRecorder(const std::string& run_dir, int64_t every, int64_t first_step)
    : path_(run_dir + "/inspect.csv"), every_(every) {
  if (every_ < 1) throw Error("--inspect-every must be >= 1, got " + std::to_string(every_));
  std::string text = std::string(kInspectCsvHeader) + "\n";
  if (first_step > 1 && path_exists(path_))
    for (const LayerStatisticsRow& row : read_statistics_csv(path_))
      if (row.step < first_step) text += format_statistics_row(row) + "\n";
  write_text_atomic(path_, text);
}

bool TrainingRecorder::due(int64_t step) const { return step == 1 || step % every_ == 0; }

void TrainingRecorder::before_step(const Network& network) {
  const auto start = std::chrono::steady_clock::now();
  const Tensor& values = network.parameters().values();
  if (values_before_.empty() || values_before_.device() != values.device())
    values_before_ = Tensor(values.device(), values.shape());
  values_before_.copy_from(values);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void TrainingRecorder::after_step(const Network& network, int64_t step, int64_t epoch) {
  const auto start = std::chrono::steady_clock::now();
  std::string text;
  for (const LayerStatisticsRow& row : layer_statistics(network, values_before_.to_vector(), step, epoch))
    text += format_statistics_row(row) + "\n";
  std::FILE* file = std::fopen(path_.c_str(), "a");
  if (!file || std::fputs(text.c_str(), file) < 0 || std::fclose(file) != 0)
    throw Error(path_ + ": cannot append the layer statistics");
  ++steps_recorded_;
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace pneumo::cli
