// Training history: one EpochRecord per finished epoch, history.csv (read back on --resume), and
// the learning-curve picture (the notebook's three panels: loss, accuracy, IoU; train and
// validation).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo::cli {

struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  double learning_rate = 0;
  double train_loss = 0, train_accuracy = 0, train_iou = 0;
  double validation_loss = 0, validation_accuracy = 0, validation_iou = 0, validation_map = 0;
  double seconds = 0;
};

constexpr const char* kHistoryHeader =
    "epoch,learning_rate,train_loss,train_accuracy,train_iou,validation_loss,validation_accuracy,"
    "validation_iou,validation_map,seconds";

std::string format_history_row(const EpochRecord& record);
// Reads history.csv (missing file: empty history); errors name the file and line.
std::vector<EpochRecord> read_history(const std::string& path);
// The same from the text of a history.csv (a checkpoint carries its run's history this way);
// `path` names the source in errors.
std::vector<EpochRecord> parse_history(const std::string& text, const std::string& path);
// history.csv's text: the header and one row per record.
std::string format_history(const std::vector<EpochRecord>& history);

// Three panels side by side (loss, accuracy, IoU), train and validation series, plus the mAP
// in the IoU panel.
void write_learning_curves(const std::string& path, const std::vector<EpochRecord>& history);

}  // namespace pneumo::cli
