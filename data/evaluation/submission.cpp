// Kaggle submission CSV: atomic writer and strict reader.
#include "data/evaluation/submission.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unordered_set>

#include "engine/check.h"
#include "engine/files.h"

namespace pneumo {
namespace {

const char* const kHeader = "patientId,PredictionString";
const char* const kBoxFields[5] = {"confidence", "x", "y", "width", "height"};

[[noreturn]] void fail(const std::string& path, int64_t line, const std::string& message) {
  throw Error(path + ":" + std::to_string(line) + ": " + message);
}

std::string shown(const std::string& value) { return quoted(value); }

// Parses the whole token as a finite decimal double; false when it is not one (hex, inf, nan).
bool parse_number(const std::string& token, double& value) {
  if (!is_decimal_number(token)) return false;
  const char* begin = token.c_str();
  char* end = nullptr;
  value = std::strtod(begin, &end);
  return end == begin + token.size() && std::isfinite(value);
}

std::vector<std::string> split_on_whitespace(const std::string& text) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  return tokens;
}

std::vector<ScoredBox> parse_prediction_string(const std::string& text, const std::string& path, int64_t line) {
  std::vector<std::string> tokens = split_on_whitespace(text);
  if (tokens.size() % 5 != 0)
    fail(path, line,
         "field PredictionString: " + std::to_string(tokens.size()) +
             " values, expected groups of five (confidence x y width height); the last group has " +
             std::to_string(tokens.size() % 5));
  std::vector<ScoredBox> boxes;
  for (size_t group = 0; group < tokens.size() / 5; ++group) {
    double values[5];
    for (int field = 0; field < 5; ++field) {
      const std::string& token = tokens[group * 5 + static_cast<size_t>(field)];
      const std::string where =
          "field PredictionString, box " + std::to_string(group + 1) + " " + kBoxFields[field] + ": ";
      if (!parse_number(token, values[field]))
        fail(path, line, where + "expected a finite number, got " + shown(token));
      if (field > 0) {
        if (values[field] != std::floor(values[field]) || std::fabs(values[field]) > 1e9)
          fail(path, line, where + "expected a whole number of pixels, got " + shown(token));
        if (field >= 3 && values[field] <= 0) fail(path, line, where + "expected a positive size, got " + shown(token));
      }
    }
    ScoredBox scored;
    scored.confidence = static_cast<float>(values[0]);
    if (!std::isfinite(scored.confidence))
      fail(path, line,
           "field PredictionString, box " + std::to_string(group + 1) +
               " confidence: out of float range: " + shown(tokens[group * 5]));
    scored.box = Box{static_cast<int>(values[1]), static_cast<int>(values[2]), static_cast<int>(values[3]),
                     static_cast<int>(values[4])};
    boxes.push_back(scored);
  }
  return boxes;
}

}  // namespace

bool is_plain_id(const std::string& id) {
  if (id.empty()) return false;
  for (unsigned char c : id)
    if (c <= ' ' || c == ',' || c == '"' || c == 127) return false;
  return true;
}

const std::vector<ScoredBox>& Submission::predictions_for(const std::string& patient_id) const {
  static const std::vector<ScoredBox> kNone;
  auto found = predictions.find(patient_id);
  return found == predictions.end() ? kNone : found->second;
}

std::string prediction_string(const std::vector<ScoredBox>& boxes) {
  std::string text;
  for (const ScoredBox& scored : boxes) {
    if (!text.empty()) text += ' ';
    char buffer[64];
    auto written = std::to_chars(buffer, buffer + sizeof(buffer), scored.confidence);
    text.append(buffer, written.ptr);
    text += ' ' + std::to_string(scored.box.x) + ' ' + std::to_string(scored.box.y) + ' ' +
            std::to_string(scored.box.width) + ' ' + std::to_string(scored.box.height);
  }
  return text;
}

void write_submission(const std::string& path, const Submission& submission) {
  std::unordered_set<std::string> ids;
  for (const std::string& id : submission.patient_ids) {
    if (!is_plain_id(id))
      throw Error("write_submission " + path + ": patientId " + shown(id) +
                  " is empty or has a comma, quote or whitespace");
    if (!ids.insert(id).second) throw Error("write_submission " + path + ": patientId " + shown(id) + " listed twice");
  }
  for (const auto& [id, boxes] : submission.predictions) {
    if (!ids.count(id))
      throw Error("write_submission " + path + ": predictions for patientId " + shown(id) +
                  " which is not in the submission's patient_ids");
    for (const ScoredBox& scored : boxes) {
      if (!std::isfinite(scored.confidence) || scored.box.width <= 0 || scored.box.height <= 0)
        throw Error("write_submission " + path + ": patientId " + shown(id) +
                    " has a box with a non-finite confidence or a size <= 0");
    }
  }
  std::string text = std::string(kHeader) + '\n';
  for (const std::string& id : submission.patient_ids)
    text += id + ',' + prediction_string(submission.predictions_for(id)) + '\n';
  write_file_atomic(path, text);
}

Submission read_submission(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open the submission file");
  Submission submission;
  std::unordered_map<std::string, int64_t> first_line;  // patientId -> its line
  std::string line;
  int64_t number = 0;
  bool header_seen = false;
  while (std::getline(file, line)) {
    ++number;
    if (number == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!header_seen) {
      if (line != kHeader) fail(path, number, std::string("header: expected '") + kHeader + "', got " + shown(line));
      header_seen = true;
      continue;
    }
    if (line.empty()) continue;
    const size_t comma = line.find(',');
    if (comma == std::string::npos)
      fail(path, number, "expected 'patientId,PredictionString', found no comma in " + shown(line));
    if (line.find(',', comma + 1) != std::string::npos)
      fail(path, number, "field PredictionString: expected no comma, got " + shown(line.substr(comma + 1)));
    const std::string id = line.substr(0, comma);
    if (!is_plain_id(id))
      fail(path, number, "field patientId: expected a non-empty id without spaces or quotes, got " + shown(id));
    auto [previous, inserted] = first_line.emplace(id, number);
    if (!inserted)
      fail(path, number,
           "field patientId: " + shown(id) + " already appears on line " + std::to_string(previous->second));
    std::vector<ScoredBox> boxes = parse_prediction_string(line.substr(comma + 1), path, number);
    submission.patient_ids.push_back(id);
    if (!boxes.empty()) submission.predictions.emplace(id, std::move(boxes));
  }
  if (file.bad()) throw Error(path + ": read error after line " + std::to_string(number));
  if (!header_seen) throw Error(path + ": empty file, expected the header line '" + kHeader + "'");
  return submission;
}

void check_submission_covers(const Submission& submission, const std::vector<std::string>& patient_ids) {
  std::unordered_set<std::string> expected(patient_ids.begin(), patient_ids.end());
  std::unordered_set<std::string> present(submission.patient_ids.begin(), submission.patient_ids.end());
  int64_t missing = 0;
  std::string first_missing;
  for (const std::string& id : patient_ids) {
    if (present.count(id)) continue;
    if (missing++ == 0) first_missing = id;
  }
  if (missing > 0)
    throw Error("submission lacks patientId " + shown(first_missing) + " (" + std::to_string(missing) + " of " +
                std::to_string(expected.size()) + " images missing)");
  for (const std::string& id : submission.patient_ids)
    if (!expected.count(id))
      throw Error("submission has unknown patientId " + shown(id) + " (not among the " +
                  std::to_string(expected.size()) + " expected images)");
}

}  // namespace pneumo
