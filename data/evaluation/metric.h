// The RSNA Pneumonia Detection Challenge metric: mean over images of the average, over IoU
// thresholds 0.40..0.75 (step 0.05), of TP / (TP + FP + FN). Ground-truth boxes and scored
// predictions in; the score, a per-threshold table and image counts out. See data/evaluation/metric.md.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "data/input/labels.h"
#include "data/evaluation/submission.h"

namespace pneumo {

constexpr int kMetricThresholdCount = 8;
// The literal thresholds {0.40, 0.45, ..., 0.75} (as double literals, not accumulated sums).
extern const std::array<double, kMetricThresholdCount> kMetricThresholds;

// IoU of two pixel boxes: each covers [x, x + width) x [y, y + height); intersection and union
// are pixel areas, so IoU = |A & B| / (|A| + |B| - |A & B|), computed in double. (For whole
// numbers this equals the public kernel's continuous-coordinate formula.) 0 when disjoint.
double box_iou(const Box& a, const Box& b);

// One image's score: per threshold TP / (TP + FP + FN) and their mean.
struct ImageScore {
  std::array<double, kMetricThresholdCount> per_threshold{};
  double average = 0.0;
};

// Scores one image, or std::nullopt when it has neither ground truth nor predictions (skipped).
// Predictions are ranked by descending confidence, ties keeping their given (submission) order.
// At each threshold t, ground-truth boxes are visited in their given order and each takes the
// first still-unmatched prediction in rank order whose IoU with it is >= t (TP); ground truth
// left without one is FN, predictions left unmatched are FP.
std::optional<ImageScore> score_image(const std::vector<Box>& truth, const std::vector<ScoredBox>& predictions);

struct MetricResult {
  double mean_average_precision = 0.0;                        // mean of the scored images' averages (0 if none)
  std::array<double, kMetricThresholdCount> per_threshold{};  // mean over scored images at each t
  int64_t images_scored = 0;
  int64_t images_skipped = 0;  // no ground truth and no prediction
};

// Scores the images `patient_ids` (e.g. a validation split): ground truth from `truth`
// (absent = negative image), predictions from `submission` (absent = no boxes). Throws
// pneumo::Error when an id is not among truth.patient_ids.
MetricResult evaluate_submission(const std::vector<std::string>& patient_ids, const LabelSet& truth,
                                 const Submission& submission);

// Formats the result as a few lines: mAP, images scored/skipped, one line per threshold.
std::string metric_report(const MetricResult& result);

}  // namespace pneumo
