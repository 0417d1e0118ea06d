// pneumo show: one DICOM rendered to PNG, with label boxes and/or a submission's boxes drawn.
#include <cstdio>

#include "apps/arguments.h"
#include "apps/commands.h"
#include "data/input/labels.h"
#include "data/presentation/render.h"
#include "data/evaluation/submission.h"
#include "engine/check.h"
#include "engine/files.h"

namespace pneumo::cli {

namespace {
// "<dir>/<id>.dcm" -> "<id>"
std::string patient_id_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(0, dot);
}
}  // namespace

int run_show(const std::vector<std::string>& argv, const ConvPolicy&) {
  Arguments arguments("show",
                      "Renders a DICOM to PNG (optionally resized), with the boxes of a label file (green)\n"
                      "and/or a submission (orange, with confidences) for that image drawn on it.");
  arguments.option("dicom", "FILE", "", "the DICOM file (<patientId>.dcm)");
  arguments.option("out", "PNG", "", "output PNG path (default: <patientId>.png)");
  arguments.option("size", "PIXELS", "0", "longer side of the picture; 0 = native size");
  arguments.option("labels", "CSV", "", "label file whose boxes for this image are drawn");
  arguments.option("submission", "CSV", "", "submission whose boxes for this image are drawn");
  arguments.option("patient-id", "ID", "", "patientId to look up (default: the DICOM's file name)");
  if (!arguments.parse(argv)) return 0;
  const std::string dicom = arguments.text("dicom");
  if (dicom.empty()) throw Error("--dicom is required");
  const int64_t size = arguments.integer("size");
  if (size < 0 || size > 16384) throw Error("--size: expected 0..16384, got " + std::to_string(size));
  const std::string id = arguments.text("patient-id").empty() ? patient_id_of(dicom) : arguments.text("patient-id");
  const std::string out = arguments.text("out").empty() ? id + ".png" : arguments.text("out");

  require_outputs_distinct(
      {{"--out", out}},
      {{"--dicom", dicom}, {"--labels", arguments.text("labels")}, {"--submission", arguments.text("submission")}});
  std::vector<Box> label_boxes;
  std::vector<ScoredBox> predicted_boxes;
  if (!arguments.text("labels").empty()) {
    LabelSet labels = read_labels(arguments.text("labels"));
    auto found = labels.boxes.find(id);
    if (found != labels.boxes.end()) label_boxes = found->second;
  }
  if (!arguments.text("submission").empty())
    predicted_boxes = read_submission(arguments.text("submission")).predictions_for(id);
  render_dicom(dicom, out, static_cast<int>(size), label_boxes, predicted_boxes);
  std::printf("wrote %s (%zu label box%s, %zu predicted box%s)\n", out.c_str(), label_boxes.size(),
              label_boxes.size() == 1 ? "" : "es", predicted_boxes.size(), predicted_boxes.size() == 1 ? "" : "es");
  return 0;
}

}  // namespace pneumo::cli
