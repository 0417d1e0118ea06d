// The competition metric on hand-worked cases; every expected number is derived in the comments.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "data/evaluation/metric.h"
#include "engine/check.h"

namespace {

using pneumo::Box;
using pneumo::ScoredBox;

ScoredBox scored(float confidence, Box box) {
  ScoredBox result;
  result.confidence = confidence;
  result.box = box;
  return result;
}

double image_average(const std::vector<Box>& truth, const std::vector<ScoredBox>& predictions) {
  auto score = pneumo::score_image(truth, predictions);
  REQUIRE(score.has_value());
  return score->average;
}

}  // namespace

TEST_CASE("IoU of pixel boxes") {
  // [0,10)x[0,10) and [5,15)x[0,10): intersection 5*10 = 50, union 100 + 100 - 50 = 150.
  CHECK(pneumo::box_iou({0, 0, 10, 10}, {5, 0, 10, 10}) == doctest::Approx(50.0 / 150.0));
  CHECK(pneumo::box_iou({0, 0, 10, 10}, {10, 0, 10, 10}) == 0.0);  // edges touch: no shared pixel
  CHECK(pneumo::box_iou({0, 0, 10, 10}, {30, 30, 5, 5}) == 0.0);
  CHECK(pneumo::box_iou({0, 0, 10, 10}, {2, 2, 5, 5}) == doctest::Approx(25.0 / 100.0));  // inside
  CHECK(pneumo::box_iou({3, 4, 7, 9}, {3, 4, 7, 9}) == 1.0);
}

TEST_CASE("image with no ground truth and no prediction is skipped") {
  CHECK_FALSE(pneumo::score_image({}, {}).has_value());
}

TEST_CASE("false positives only, or misses only, score 0") {
  // No ground truth, one prediction: TP 0, FP 1, FN 0 at every threshold -> 0.
  CHECK(image_average({}, {scored(0.9f, {0, 0, 10, 10})}) == 0.0);
  // Ground truth, no prediction: TP 0, FP 0, FN 1 -> 0.
  CHECK(image_average({{0, 0, 10, 10}}, {}) == 0.0);
}

TEST_CASE("IoU exactly at a threshold counts as a match (>=)") {
  // Truth: a 100 x 1 strip (area 100). A prediction (0,0,k,1) lies inside it, so IoU = k / 100,
  // computed as k.0 / 100.0: the correctly rounded double of k/100, the same double as the
  // threshold literal when k/100 is a threshold.
  const Box truth{0, 0, 100, 1};
  auto average_for = [&](int k) { return image_average({truth}, {scored(0.9f, {0, 0, k, 1})}); };
  CHECK(average_for(40) == 1.0 / 8.0);  // IoU 0.40 matches t = 0.40 only
  CHECK(average_for(39) == 0.0);        // 0.39 matches nothing
  CHECK(average_for(50) == 3.0 / 8.0);  // 0.40, 0.45, 0.50
  CHECK(average_for(55) == 4.0 / 8.0);  // 0.40 .. 0.55
  CHECK(average_for(65) == 6.0 / 8.0);  // 0.40 .. 0.65
  CHECK(average_for(70) == 7.0 / 8.0);  // 0.40 .. 0.70
  CHECK(average_for(74) == 7.0 / 8.0);  // 0.74 < 0.75
  CHECK(average_for(75) == 1.0);        // all 8

  auto score = pneumo::score_image({truth}, {scored(0.9f, {0, 0, 50, 1})});
  REQUIRE(score.has_value());
  // t <= 0.50: TP 1 -> 1 / (1 + 0 + 0) = 1; t > 0.50: TP 0, FP 1, FN 1 -> 0 / 2 = 0.
  const std::array<double, 8> expected = {1, 1, 1, 0, 0, 0, 0, 0};
  CHECK(score->per_threshold == expected);
}

TEST_CASE("several boxes: a worked example") {
  // Truth A = (0,0,100,100), B = (200,200,50,50).
  // p1 (0.9) = (0,0,100,80): IoU with A = 8000 / 10000 = 0.80        -> matches A at every t.
  // p2 (0.8) = (210,200,50,50): with B, overlap 40*50 = 2000, union 2500 + 2500 - 2000 = 3000,
  //            IoU = 0.6667                                         -> matches B for t <= 0.65.
  // p3 (0.3) = (500,500,10,10): overlaps nothing                    -> always FP.
  // t = 0.40 .. 0.65 (6 thresholds): TP 2, FP 1, FN 0 -> 2/3.
  // t = 0.70, 0.75 (2 thresholds):   TP 1, FP 2, FN 1 -> 1/4.
  // Average = (6 * 2/3 + 2 * 1/4) / 8 = 4.5 / 8 = 0.5625.
  const std::vector<Box> truth = {{0, 0, 100, 100}, {200, 200, 50, 50}};
  const std::vector<ScoredBox> predictions = {scored(0.3f, {500, 500, 10, 10}), scored(0.9f, {0, 0, 100, 80}),
                                              scored(0.8f, {210, 200, 50, 50})};
  CHECK(image_average(truth, predictions) == doctest::Approx(0.5625).epsilon(1e-12));
}

TEST_CASE("confidence order decides matches; ties keep submission order") {
  // Truth G1 = (0,0,10,10), G2 = (0,5,10,10), visited in that order.
  // P1 = (0,2,10,10): IoU(G1) = 80 / 120 = 0.667, IoU(G2) = 70 / 130 = 0.538.
  // P2 = (0,0,10,10): IoU(G1) = 1,                IoU(G2) = 50 / 150 = 0.333.
  // Ranked [P1, P2]: at every t, G1 takes P1 (or P2 for t >= 0.70, where P1's 0.667 fails),
  //   G2 finds nothing (P1 taken or below t, P2 0.333 below t): TP 1, FP 1, FN 1 -> 1/3 each,
  //   average 1/3.
  // Ranked [P2, P1]: G1 takes P2; G2 takes P1 where 0.538 >= t, i.e. t = 0.40, 0.45, 0.50 -> 1;
  //   other 5 thresholds 1/3. Average = (3 + 5/3) / 8 = 7/12.
  const std::vector<Box> truth = {{0, 0, 10, 10}, {0, 5, 10, 10}};
  const Box p1{0, 2, 10, 10}, p2{0, 0, 10, 10};
  // Equal confidences: the submission order is the rank.
  CHECK(image_average(truth, {scored(0.5f, p1), scored(0.5f, p2)}) == doctest::Approx(1.0 / 3.0));
  CHECK(image_average(truth, {scored(0.5f, p2), scored(0.5f, p1)}) == doctest::Approx(7.0 / 12.0));
  // Higher confidence first, whatever the listing order.
  CHECK(image_average(truth, {scored(0.5f, p1), scored(0.6f, p2)}) == doctest::Approx(7.0 / 12.0));
  CHECK(image_average(truth, {scored(0.6f, p1), scored(0.5f, p2)}) == doctest::Approx(1.0 / 3.0));
}

TEST_CASE("evaluate_submission averages scored images and counts skipped ones") {
  pneumo::LabelSet truth;
  truth.patient_ids = {"a", "b", "c", "unused"};
  truth.boxes["a"] = {{0, 0, 100, 100}, {200, 200, 50, 50}};
  pneumo::Submission submission;
  submission.patient_ids = {"a", "b", "c"};
  submission.predictions["a"] = {scored(0.3f, {500, 500, 10, 10}), scored(0.9f, {0, 0, 100, 80}),
                                 scored(0.8f, {210, 200, 50, 50})};  // 0.5625 (worked example)
  // b: negative, no prediction -> skipped. c: negative with a prediction -> 0.
  submission.predictions["c"] = {scored(0.7f, {1, 1, 5, 5})};
  pneumo::MetricResult result = pneumo::evaluate_submission({"a", "b", "c"}, truth, submission);
  CHECK(result.images_scored == 2);
  CHECK(result.images_skipped == 1);
  CHECK(result.mean_average_precision == doctest::Approx(0.5625 / 2));
  // Per threshold: a gives 2/3 (t <= 0.65) or 1/4 (t >= 0.70); c gives 0; mean over 2 images.
  for (int t = 0; t < 6; ++t) CHECK(result.per_threshold[t] == doctest::Approx(1.0 / 3.0));
  CHECK(result.per_threshold[6] == doctest::Approx(0.125));
  CHECK(result.per_threshold[7] == doctest::Approx(0.125));
  CHECK(pneumo::metric_report(result).find("mAP 0.28125") != std::string::npos);

  CHECK_THROWS_AS(pneumo::evaluate_submission({"a", "zzz"}, truth, submission), pneumo::Error);
  // Nothing scored: mean 0, everything skipped.
  pneumo::MetricResult empty = pneumo::evaluate_submission({"b", "unused"}, truth, submission);
  CHECK(empty.images_scored == 0);
  CHECK(empty.images_skipped == 2);
  CHECK(empty.mean_average_precision == 0.0);
}
