// Kaggle submission files for the RSNA challenge: Submission (boxes per patientId, in row order)
// -> CSV `patientId,PredictionString` (atomic write), and CSV -> Submission (strict read).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "data/input/labels.h"

namespace pneumo {

struct Submission {
  std::vector<std::string> patient_ids;                                 // one row per image, in this order
  std::unordered_map<std::string, std::vector<ScoredBox>> predictions;  // absent = no boxes
  // The boxes of one image; empty when it has none (or the id is not in the submission).
  const std::vector<ScoredBox>& predictions_for(const std::string& patient_id) const;
};

// `conf x y width height` per box, single spaces, no trailing space; "" for no boxes.
// Confidences use the shortest text that reads back as the same float.
std::string prediction_string(const std::vector<ScoredBox>& boxes);

// Writes header `patientId,PredictionString` then one row per patient id in order (`id,` with
// nothing after the comma for no boxes) atomically (engine/files.h), so a failed write never
// leaves a half file. Throws pneumo::Error on a duplicate or malformed id, a
// prediction for an id not in patient_ids, a non-finite confidence or a non-positive size.
void write_submission(const std::string& path, const Submission& submission);

// Whether `id` can be a submission's patientId: a plain CSV field, non-empty, without comma,
// quote, whitespace or control byte (predict checks its file names with it before any work).
bool is_plain_id(const std::string& id);

// Reads a submission strictly (UTF-8 BOM, CRLF and blank lines tolerated). Errors name the file,
// line and field: wrong header, missing comma, empty or duplicate patientId, a box value that is
// not a number, coordinates that are not whole numbers, an incomplete group of five, a width or
// height <= 0, a confidence that is not finite.
Submission read_submission(const std::string& path);

// Throws pneumo::Error naming the first image of patient_ids missing from the submission, or the
// first submission row whose patientId is not in patient_ids.
void check_submission_covers(const Submission& submission, const std::vector<std::string>& patient_ids);

}  // namespace pneumo
