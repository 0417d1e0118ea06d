// libFuzzer target: read_labels, read_class_info and read_submission on arbitrary bytes.
#include "data/input/labels.h"
#include "data/evaluation/submission.h"
#include "engine/check.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pneumo_fuzz::input_path(".csv");
  pneumo_fuzz::write_input(path, data, size);
  try {
    pneumo::read_labels(path);
  } catch (const pneumo::Error&) {
  }
  try {
    pneumo::read_class_info(path);
  } catch (const pneumo::Error&) {
  }
  try {
    pneumo::Submission submission = pneumo::read_submission(path);
    pneumo::check_submission_covers(submission, {"a", "b"});
  } catch (const pneumo::Error&) {
  }
  return 0;
}
