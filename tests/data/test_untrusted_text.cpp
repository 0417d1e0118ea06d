// Issue 10: label and submission files with control bytes and long ids give one clean line:
// quoted, escaped (\xNN), shortened (tests/fixtures/untrusted/*_control_bytes.csv).
#include <string>

#include "data/input/labels.h"
#include "data/evaluation/submission.h"
#include "engine/check.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

std::string error_of(void (*read)(const std::string&), const std::string& name) {
  try {
    read(pneumo::testing::fixture_path("untrusted/" + name));
  } catch (const pneumo::Error& error) {
    return error.what();
  }
  return "";
}

bool clean_line(const std::string& message) {
  for (unsigned char c : message)
    if (c < 0x20 || c == 0x7f) return false;
  return message.size() < 400;
}

}  // namespace

TEST_CASE("control bytes in a label file's fields are escaped in the error") {
  const std::string message =
      error_of([](const std::string& path) { pneumo::read_labels(path); }, "labels_control_bytes.csv");
  CHECK_MESSAGE(message.find(":2: field Target: expected 0 or 1, got '\\x1b7'") != std::string::npos, message);
  CHECK(clean_line(message));
}

TEST_CASE("control bytes in a submission's patientId are escaped and the id shortened") {
  const std::string message =
      error_of([](const std::string& path) { pneumo::read_submission(path); }, "submission_control_bytes.csv");
  CHECK_MESSAGE(message.find("got 'id\\x1b]0;owned\\x07yyy") != std::string::npos, message);
  CHECK(message.find("... (112 bytes)") != std::string::npos);
  CHECK(clean_line(message));
  pneumo::Submission submission;
  submission.patient_ids = {std::string(1 << 20, 'q') + "\x1b"};
  try {
    pneumo::check_submission_covers(submission, {"a"});
  } catch (const pneumo::Error& error) {
    CHECK(clean_line(error.what()));
  }
}
