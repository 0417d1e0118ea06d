#include "apps/learning_curves.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "apps/run_files.h"
#include "data/presentation/chart.h"
#include "engine/check.h"

namespace pneumo::cli {

std::string format_history_row(const EpochRecord& record) {
  std::ostringstream row;
  row << record.epoch;
  for (double value :
       {record.learning_rate, record.train_loss, record.train_accuracy, record.train_iou, record.validation_loss,
        record.validation_accuracy, record.validation_iou, record.validation_map, record.seconds})
    row << "," << exact_number(value);
  return row.str();
}

std::string format_history(const std::vector<EpochRecord>& history) {
  std::string text = std::string(kHistoryHeader) + "\n";
  for (const auto& record : history) text += format_history_row(record) + "\n";
  return text;
}

std::vector<EpochRecord> read_history(const std::string& path) {
  if (!path_exists(path)) return {};
  return parse_history(read_text(path), path);
}

std::vector<EpochRecord> parse_history(const std::string& text, const std::string& path) {
  std::vector<EpochRecord> history;
  std::istringstream file(text);
  std::string line;
  int number = 0;
  while (std::getline(file, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1) {
      if (line != kHistoryHeader) throw Error(path + ":1: unexpected header (expected " + kHistoryHeader + ")");
      continue;
    }
    if (line.empty()) continue;
    std::vector<double> values;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, ',')) {
      try {
        size_t used = 0;
        double value = std::stod(field, &used);
        if (used != field.size()) throw std::invalid_argument("trailing");
        values.push_back(value);
      } catch (const std::exception&) {
        throw Error(path + ":" + std::to_string(number) + ": field " + std::to_string(values.size() + 1) +
                    " is not a number: '" + field + "'");
      }
    }
    if (values.size() != 10)
      throw Error(path + ":" + std::to_string(number) + ": expected 10 fields, got " + std::to_string(values.size()));
    EpochRecord record;
    record.epoch = static_cast<int64_t>(values[0]);
    record.learning_rate = values[1];
    record.train_loss = values[2];
    record.train_accuracy = values[3];
    record.train_iou = values[4];
    record.validation_loss = values[5];
    record.validation_accuracy = values[6];
    record.validation_iou = values[7];
    record.validation_map = values[8];
    record.seconds = values[9];
    history.push_back(record);
  }
  return history;
}

}  // namespace pneumo::cli

namespace pneumo::cli {

void write_learning_curves(const std::string& path, const std::vector<EpochRecord>& history) {
  if (history.empty()) return;
  auto series = [&](const std::string& name, double EpochRecord::*field, Color color) {
    LineSeries line;
    line.name = name;
    line.color = color;
    for (const auto& record : history) {
      line.x.push_back(static_cast<double>(record.epoch));
      line.y.push_back(record.*field);
    }
    return line;
  };
  const Color train{66, 114, 196}, validation{221, 132, 82}, map{85, 168, 104};
  std::vector<LinePanel> panels = {
      {"Loss (0.5 BCE + 0.5 IoU loss)",
       "epoch",
       "loss",
       {series("Train loss", &EpochRecord::train_loss, train),
        series("Valid loss", &EpochRecord::validation_loss, validation)}},
      {"Pixel accuracy",
       "epoch",
       "accuracy",
       {series("Train accuracy", &EpochRecord::train_accuracy, train),
        series("Valid accuracy", &EpochRecord::validation_accuracy, validation)}},
      {"Mean IoU and validation mAP",
       "epoch",
       "IoU / mAP",
       {series("Train iou", &EpochRecord::train_iou, train),
        series("Valid iou", &EpochRecord::validation_iou, validation),
        series("Valid mAP", &EpochRecord::validation_map, map)}},
  };
  draw_line_panels(panels).save_png(path);
}

}  // namespace pneumo::cli
