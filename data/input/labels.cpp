// Strict readers of the RSNA label CSVs: every row is checked, and the first bad one stops the
// read with "<file>:<line>: <field>: <what was expected>".
#include "data/input/labels.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "engine/check.h"

namespace pneumo {

namespace {

[[noreturn]] void fail(const std::string& path, int64_t line, const std::string& message) {
  throw Error(path + ":" + std::to_string(line) + ": " + message);
}

std::string shown(const std::string& value) { return quoted(value); }

// Reads lines, dropping a UTF-8 BOM on the first and a trailing '\r' on each.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), file_(path, std::ios::binary) {
    if (!file_) throw Error(path + ": cannot open the label file");
  }
  bool next(std::string& line) {
    if (!std::getline(file_, line)) {
      if (file_.bad()) throw Error(path_ + ": read error after line " + std::to_string(number_));
      return false;
    }
    ++number_;
    if (number_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }
  int64_t number() const { return number_; }

 private:
  std::string path_;
  std::ifstream file_;
  int64_t number_ = 0;
};

// Splits one CSV line; a field may be double-quoted ("" inside quotes is a quote).
std::vector<std::string> split_csv(const std::string& line, const std::string& path, int64_t line_number) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) fail(path, line_number, "unterminated quoted field");
  return fields;
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t") == std::string::npos; }

// A whole number written as an integer or a float ("264", "264.0").
int parse_whole_number(const std::string& text, const std::string& path, int64_t line, const char* field) {
  const std::string expected = std::string("field ") + field + ": expected a whole number, got ";
  if (text.empty() || text.find_first_of(" \t") != std::string::npos) fail(path, line, expected + shown(text));
  if (!is_decimal_number(text)) fail(path, line, expected + shown(text));
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value))
    fail(path, line, expected + shown(text));
  if (value != std::floor(value)) fail(path, line, expected + shown(text) + " (not integral)");
  if (std::fabs(value) > 1e9) fail(path, line, expected + shown(text) + " (out of range)");
  return static_cast<int>(value);
}

}  // namespace

bool is_decimal_number(const std::string& text) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i - start;
  };
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  size_t mantissa = digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

int64_t LabelSet::box_count() const {
  int64_t count = 0;
  for (const auto& entry : boxes) count += static_cast<int64_t>(entry.second.size());
  return count;
}

const std::vector<Box>& LabelSet::boxes_for(const std::string& patient_id) const {
  static const std::vector<Box> none;
  auto found = boxes.find(patient_id);
  return found == boxes.end() ? none : found->second;
}

LabelSet read_labels(const std::string& path) {
  LineReader reader(path);
  std::string line;
  if (!reader.next(line)) throw Error(path + ": empty file, expected the header line");
  if (line != "patientId,x,y,width,height,Target")
    fail(path, 1, "header: expected 'patientId,x,y,width,height,Target', got " + shown(line));

  LabelSet labels;
  std::unordered_map<std::string, int64_t> negative_line;  // patient -> its negative row's line
  std::unordered_map<std::string, int64_t> positive_line;  // patient -> its first box's line
  static const char* names[] = {"patientId", "x", "y", "width", "height", "Target"};
  while (reader.next(line)) {
    if (is_blank(line)) continue;
    const int64_t number = reader.number();
    std::vector<std::string> fields = split_csv(line, path, number);
    if (fields.size() != 6)
      fail(path, number, "expected 6 fields (patientId,x,y,width,height,Target), got " + std::to_string(fields.size()));
    ++labels.row_count;
    const std::string& id = fields[0];
    if (id.empty()) fail(path, number, "field patientId: empty");
    const std::string& target = fields[5];
    if (target != "0" && target != "1" && target != "0.0" && target != "1.0")
      fail(path, number, "field Target: expected 0 or 1, got " + shown(target));
    const bool positive = target[0] == '1';

    int empty = 0;
    for (int f = 1; f <= 4; ++f) empty += fields[f].empty();
    if (empty != 0 && empty != 4)
      for (int f = 1; f <= 4; ++f)
        if (fields[f].empty())
          fail(path, number, std::string("field ") + names[f] + ": empty while other box fields are set");
    const bool has_box = empty == 0;
    if (positive && !has_box) fail(path, number, "field x: Target is 1 but the box (x,y,width,height) is empty");
    if (!positive && has_box)
      fail(path, number, "field Target: 0 but the row has a box; a negative row has empty x,y,width,height");

    const bool seen = negative_line.count(id) || positive_line.count(id);
    if (!positive) {
      if (negative_line.count(id))
        fail(path, number,
             "field patientId: " + shown(id) + " already has a negative row (line " +
                 std::to_string(negative_line[id]) + ")");
      if (positive_line.count(id))
        fail(path, number,
             "field patientId: " + shown(id) + " is negative here but has a box on line " +
                 std::to_string(positive_line[id]));
      negative_line[id] = number;
    } else {
      if (negative_line.count(id))
        fail(path, number,
             "field patientId: " + shown(id) + " has a box here but a negative row on line " +
                 std::to_string(negative_line[id]));
      Box box;
      box.x = parse_whole_number(fields[1], path, number, "x");
      box.y = parse_whole_number(fields[2], path, number, "y");
      box.width = parse_whole_number(fields[3], path, number, "width");
      box.height = parse_whole_number(fields[4], path, number, "height");
      if (box.width <= 0) fail(path, number, "field width: expected a positive size, got " + shown(fields[3]));
      if (box.height <= 0) fail(path, number, "field height: expected a positive size, got " + shown(fields[4]));
      if (!positive_line.count(id)) positive_line[id] = number;
      labels.boxes[id].push_back(box);
    }
    if (!seen) labels.patient_ids.push_back(id);
  }
  return labels;
}

const char* image_class_name(ImageClass image_class) {
  switch (image_class) {
    case ImageClass::LungOpacity: return "Lung Opacity";
    case ImageClass::NoLungOpacityNotNormal: return "No Lung Opacity / Not Normal";
    case ImageClass::Normal: return "Normal";
  }
  return "?";
}

ClassInfo read_class_info(const std::string& path) {
  LineReader reader(path);
  std::string line;
  if (!reader.next(line)) throw Error(path + ": empty file, expected the header line");
  if (line != "patientId,class") fail(path, 1, "header: expected 'patientId,class', got " + shown(line));
  ClassInfo info;
  std::unordered_map<std::string, int64_t> first_line;
  while (reader.next(line)) {
    if (is_blank(line)) continue;
    const int64_t number = reader.number();
    std::vector<std::string> fields = split_csv(line, path, number);
    if (fields.size() != 2)
      fail(path, number, "expected 2 fields (patientId,class), got " + std::to_string(fields.size()));
    ++info.row_count;
    const std::string& id = fields[0];
    if (id.empty()) fail(path, number, "field patientId: empty");
    ImageClass image_class;
    if (fields[1] == "Lung Opacity")
      image_class = ImageClass::LungOpacity;
    else if (fields[1] == "No Lung Opacity / Not Normal")
      image_class = ImageClass::NoLungOpacityNotNormal;
    else if (fields[1] == "Normal")
      image_class = ImageClass::Normal;
    else
      fail(path, number,
           "field class: expected 'Lung Opacity', 'No Lung Opacity / Not Normal' or "
           "'Normal', got " +
               shown(fields[1]));
    auto found = info.classes.find(id);
    if (found == info.classes.end()) {
      info.classes.emplace(id, image_class);
      info.patient_ids.push_back(id);
      first_line[id] = number;
    } else if (found->second != image_class) {
      fail(path, number,
           "field class: " + shown(id) + " is '" + image_class_name(image_class) + "' here but '" +
               image_class_name(found->second) + "' on line " + std::to_string(first_line[id]));
    }
  }
  return info;
}

}  // namespace pneumo
