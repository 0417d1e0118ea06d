// The pages of `pneumo inspect`: an InspectedStep (apps/inspect_step.h) -> one self-contained
// HTML page (pictures inside as data: URIs, charts as inline SVG, no script, no external font)
// that shows one training step layer by layer; and the statistics recorded during training
// (apps/inspect_record.h) -> a page of per-layer lines over the steps.
//
// Machine-readable hooks (the tests read them): each node is <section class="node"
// data-node="NAME">, and every number derived from the step's tensors sits in an element with
// data-stat="KEY" holding the value printed with 9 significant digits.
#pragma once
#include <string>
#include <vector>

#include "apps/inspect_record.h"
#include "apps/inspect_page_skeleton.h"  // html_escape
#include "apps/inspect_step.h"
#include "data/input/dicom.h"
#include "data/input/labels.h"

namespace pneumo::cli {

struct InspectSource {
  std::string network_description;  // "checkpoint runs/x/best.safetensors" / "fresh network, seed 1"
  std::string image_description;    // "DICOM data/x.dcm (patientId x), 2 boxes in labels.csv"
  std::string device_description;   // describe_device()
  Image native;                     // the X-ray at its own size, for the box pictures
  std::vector<Box> true_boxes;      // in native pixels
  double threshold = 0.5;           // of the post-processing
  std::string repository;           // absolute path of the repository (teaching pages)
  std::string page_directory;       // absolute path of the folder the page is written to
};

// The page; boxes are found from the step's probability map as `pneumo predict` finds them.
std::string inspect_page_html(const InspectedStep& step, const InspectSource& source);

// The over-training page of a run's inspect.csv rows.
std::string training_statistics_page_html(const std::vector<LayerStatisticsRow>& rows, const std::string& run_dir);

}  // namespace pneumo::cli
