// Labels: reads the RSNA label CSVs (stage_1/stage_2_train_labels.csv and
// stage_2_detailed_class_info.csv) into memory, checking every row. File -> LabelSet / ClassInfo.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pneumo {

// A box in pixels of the image it belongs to (the 1024x1024 frame for RSNA labels);
// (x, y) is the top-left corner.
struct Box {
  int x = 0, y = 0, width = 0, height = 0;
};
inline bool operator==(const Box& a, const Box& b) {
  return a.x == b.x && a.y == b.y && a.width == b.width && a.height == b.height;
}

// A predicted box with its confidence in [0, 1].
struct ScoredBox {
  float confidence = 0.0f;
  Box box;
};

struct LabelSet {
  std::vector<std::string> patient_ids;                     // every image (negatives too), order of first appearance
  std::unordered_map<std::string, std::vector<Box>> boxes;  // positives only, boxes in file order
  int64_t row_count = 0;                                    // data rows (header excluded)

  int64_t image_count() const { return static_cast<int64_t>(patient_ids.size()); }
  int64_t positive_count() const { return static_cast<int64_t>(boxes.size()); }
  int64_t box_count() const;
  // The boxes of one image; empty for a negative image or an unknown id.
  const std::vector<Box>& boxes_for(const std::string& patient_id) const;
};

// Whether `text` is a plain decimal number: [+-] digits [. digits] [(e|E) [+-] digits], with a
// digit before the exponent. The CSV readers check this first: strtod alone also reads hex
// ("0x10", "0x1p4"), "inf" and "nan".
bool is_decimal_number(const std::string& text);

// Reads a train-labels CSV: header `patientId,x,y,width,height,Target` (UTF-8 BOM, CRLF and
// blank lines tolerated). A negative image is one row with empty x,y,width,height and Target 0;
// a positive image has one row per box with Target 1. Numbers may be written as floats
// ("264.0") but must be whole. Any malformed row throws pneumo::Error naming file, line, field.
LabelSet read_labels(const std::string& path);

// stage_2_detailed_class_info.csv: header `patientId,class`, one row per label row.
enum class ImageClass { LungOpacity, NoLungOpacityNotNormal, Normal };
const char* image_class_name(ImageClass image_class);  // the CSV spelling

struct ClassInfo {
  std::vector<std::string> patient_ids;  // order of first appearance
  std::unordered_map<std::string, ImageClass> classes;
  int64_t row_count = 0;
};

// Reads the class file; an unknown class name or one image with two different classes throws
// pneumo::Error naming file, line and field.
ClassInfo read_class_info(const std::string& path);

}  // namespace pneumo
