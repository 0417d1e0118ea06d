// pneumo evaluate: the competition metric of a submission against a label file.
#include <cstdio>
#include <unordered_set>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "data/input/labels.h"
#include "data/evaluation/metric.h"
#include "data/evaluation/submission.h"
#include "engine/check.h"

namespace pneumo::cli {

int run_evaluate(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("evaluate",
                      "Scores a Kaggle submission (patientId,PredictionString) against a label file in the\n"
                      "stage_2_train_labels.csv format with the RSNA competition metric: mean over images of\n"
                      "TP/(TP+FP+FN) averaged over IoU thresholds 0.40..0.75. Images with no ground truth and\n"
                      "no prediction are skipped. By default the submission must cover exactly the labelled\n"
                      "images; --partial scores only the images the submission lists.");
  arguments.option("labels", "CSV", "", "label file (patientId,x,y,width,height,Target)");
  arguments.option("submission", "CSV", "", "submission file to score");
  arguments.flag("partial", "score only the submission's images (each must still be labelled)");
  if (!arguments.parse(argv)) return 0;
  if (arguments.text("labels").empty()) throw Error("--labels is required");
  if (arguments.text("submission").empty()) throw Error("--submission is required");

  LabelSet labels = read_labels(arguments.text("labels"));
  Submission submission = read_submission(arguments.text("submission"));
  std::vector<std::string> scored_ids;
  if (arguments.has("partial")) {
    std::unordered_set<std::string> labelled(labels.patient_ids.begin(), labels.patient_ids.end());
    for (const auto& id : submission.patient_ids)
      if (!labelled.count(id))
        throw Error(arguments.text("submission") + ": patientId " + quoted(id) + " is not in " +
                    arguments.text("labels"));
    scored_ids = submission.patient_ids;
  } else {
    check_submission_covers(submission, labels.patient_ids);
    scored_ids = labels.patient_ids;
  }
  MetricResult result = evaluate_submission(scored_ids, labels, submission);
  std::printf("%s", metric_report(result).c_str());
  return 0;
}

}  // namespace pneumo::cli
