// The competition metric (see data/evaluation/metric.h and data/evaluation/metric.md).
#include "data/evaluation/metric.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <unordered_set>

#include "engine/check.h"

namespace pneumo {

const std::array<double, kMetricThresholdCount> kMetricThresholds = {0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75};

double box_iou(const Box& a, const Box& b) {
  const int64_t left = std::max(a.x, b.x), right = std::min<int64_t>(int64_t{a.x} + a.width, int64_t{b.x} + b.width);
  const int64_t top = std::max(a.y, b.y), bottom = std::min<int64_t>(int64_t{a.y} + a.height, int64_t{b.y} + b.height);
  if (right <= left || bottom <= top) return 0.0;
  const double intersection = static_cast<double>((right - left) * (bottom - top));
  const double area_a = static_cast<double>(a.width) * a.height;
  const double area_b = static_cast<double>(b.width) * b.height;
  return intersection / (area_a + area_b - intersection);
}

std::optional<ImageScore> score_image(const std::vector<Box>& truth, const std::vector<ScoredBox>& predictions) {
  if (truth.empty() && predictions.empty()) return std::nullopt;
  // Rank: descending confidence; stable, so equal confidences keep their submission order.
  std::vector<size_t> rank(predictions.size());
  std::iota(rank.begin(), rank.end(), size_t{0});
  std::stable_sort(rank.begin(), rank.end(),
                   [&](size_t i, size_t j) { return predictions[i].confidence > predictions[j].confidence; });
  // iou[g][r]: ground truth g against the prediction of rank r.
  std::vector<std::vector<double>> iou(truth.size(), std::vector<double>(rank.size()));
  for (size_t g = 0; g < truth.size(); ++g)
    for (size_t r = 0; r < rank.size(); ++r) iou[g][r] = box_iou(truth[g], predictions[rank[r]].box);

  ImageScore score;
  std::vector<char> matched(rank.size());
  for (int t = 0; t < kMetricThresholdCount; ++t) {
    std::fill(matched.begin(), matched.end(), 0);
    int64_t true_positives = 0;
    for (size_t g = 0; g < truth.size(); ++g) {
      for (size_t r = 0; r < rank.size(); ++r) {
        if (!matched[r] && iou[g][r] >= kMetricThresholds[static_cast<size_t>(t)]) {
          matched[r] = 1;
          ++true_positives;
          break;
        }
      }
    }
    const int64_t false_negatives = static_cast<int64_t>(truth.size()) - true_positives;
    const int64_t false_positives = static_cast<int64_t>(rank.size()) - true_positives;
    score.per_threshold[static_cast<size_t>(t)] =
        static_cast<double>(true_positives) / static_cast<double>(true_positives + false_positives + false_negatives);
  }
  score.average = std::accumulate(score.per_threshold.begin(), score.per_threshold.end(), 0.0) / kMetricThresholdCount;
  return score;
}

MetricResult evaluate_submission(const std::vector<std::string>& patient_ids, const LabelSet& truth,
                                 const Submission& submission) {
  std::unordered_set<std::string> known(truth.patient_ids.begin(), truth.patient_ids.end());
  MetricResult result;
  double sum = 0.0;
  std::array<double, kMetricThresholdCount> threshold_sums{};
  for (const std::string& id : patient_ids) {
    if (!known.count(id)) throw Error("metric: patientId '" + id + "' is not in the ground-truth labels");
    std::optional<ImageScore> score = score_image(truth.boxes_for(id), submission.predictions_for(id));
    if (!score) {
      ++result.images_skipped;
      continue;
    }
    ++result.images_scored;
    sum += score->average;
    for (int t = 0; t < kMetricThresholdCount; ++t)
      threshold_sums[static_cast<size_t>(t)] += score->per_threshold[static_cast<size_t>(t)];
  }
  if (result.images_scored > 0) {
    const double scored = static_cast<double>(result.images_scored);
    result.mean_average_precision = sum / scored;
    for (int t = 0; t < kMetricThresholdCount; ++t)
      result.per_threshold[static_cast<size_t>(t)] = threshold_sums[static_cast<size_t>(t)] / scored;
  }
  return result;
}

std::string metric_report(const MetricResult& result) {
  char line[128];
  std::snprintf(line, sizeof(line), "mAP %.5f over %lld images (%lld skipped: no boxes in truth or prediction)\n",
                result.mean_average_precision, static_cast<long long>(result.images_scored),
                static_cast<long long>(result.images_skipped));
  std::string text = line;
  for (int t = 0; t < kMetricThresholdCount; ++t) {
    std::snprintf(line, sizeof(line), "  IoU >= %.2f: %.5f\n", kMetricThresholds[static_cast<size_t>(t)],
                  result.per_threshold[static_cast<size_t>(t)]);
    text += line;
  }
  return text;
}

}  // namespace pneumo
