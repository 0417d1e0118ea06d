// Kaggle submission files: exact text written, round trip, coverage checks, and one test per
// malformed-row case (the message must name the file, the line and the field).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/evaluation/submission.h"
#include "engine/check.h"

namespace {

using pneumo::ScoredBox;

ScoredBox scored(float confidence, pneumo::Box box) {
  ScoredBox result;
  result.confidence = confidence;
  result.box = box;
  return result;
}

std::string temporary_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("pneumo_test_submission_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
}

// The message of the pneumo::Error that reading `text` throws ("" if none).
std::string read_error(const std::string& text) {
  const std::string path = temporary_path("bad.csv");
  write_text(path, text);
  std::string message;
  try {
    pneumo::read_submission(path);
  } catch (const pneumo::Error& error) {
    message = error.what();
  }
  std::filesystem::remove(path);
  return message;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("writes the exact Kaggle text and reads it back") {
  pneumo::Submission submission;
  submission.patient_ids = {"id-b", "id-a", "id-c"};
  submission.predictions["id-b"] = {scored(0.5f, {1, 2, 30, 40}), scored(0.125f, {500, 600, 70, 80})};
  submission.predictions["id-c"] = {scored(0.87654321f, {0, 0, 1024, 1024})};
  const std::string path = temporary_path("round_trip.csv");
  pneumo::write_submission(path, submission);
  // 0.87654321f is the float 0.876543223858...; its shortest round-trip text is 0.8765432.
  CHECK(read_text(path) ==
        "patientId,PredictionString\n"
        "id-b,0.5 1 2 30 40 0.125 500 600 70 80\n"
        "id-a,\n"
        "id-c,0.8765432 0 0 1024 1024\n");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  pneumo::Submission read = pneumo::read_submission(path);
  CHECK(read.patient_ids == submission.patient_ids);
  CHECK(read.predictions_for("id-a").empty());
  REQUIRE(read.predictions_for("id-b").size() == 2);
  CHECK(read.predictions_for("id-b")[1].confidence == 0.125f);
  CHECK(read.predictions_for("id-b")[1].box == pneumo::Box{500, 600, 70, 80});
  REQUIRE(read.predictions_for("id-c").size() == 1);
  CHECK(read.predictions_for("id-c")[0].confidence == 0.87654321f);  // exact float round trip
  std::filesystem::remove(path);
}

TEST_CASE("reads the notebook's own style: float coordinates, trailing space, CRLF") {
  const std::string path = temporary_path("notebook.csv");
  write_text(path,
             "patientId,PredictionString\r\n"
             "p1,0.61234 264.0 152.0 213 379 0.5 10 20 30 40 \r\n"
             "p2,\r\n");
  pneumo::Submission read = pneumo::read_submission(path);
  CHECK(read.patient_ids == std::vector<std::string>{"p1", "p2"});
  REQUIRE(read.predictions_for("p1").size() == 2);
  CHECK(read.predictions_for("p1")[0].box == pneumo::Box{264, 152, 213, 379});
  CHECK(read.predictions_for("p1")[0].confidence == 0.61234f);
  std::filesystem::remove(path);
}

TEST_CASE("malformed submissions name file, line and field") {
  const std::string header = "patientId,PredictionString\n";
  std::string message;

  message = read_error("patientId,Prediction\n");
  CHECK(contains(message, "bad.csv:1: header"));

  message = read_error(header + "p1,0.5 1 2 3 4\np2,0.5 1 2 abc 4\n");
  CHECK(contains(message, "bad.csv:3:"));
  CHECK(contains(message, "box 1 width"));
  CHECK(contains(message, "'abc'"));

  message = read_error(header + "p1,0.5 1 2 3 4 0.7 1 2\n");  // incomplete group of five
  CHECK(contains(message, "bad.csv:2:"));
  CHECK(contains(message, "groups of five"));

  message = read_error(header + "p1,0.5 1 2 -3 4\n");  // negative width
  CHECK(contains(message, "bad.csv:2:"));
  CHECK(contains(message, "box 1 width"));
  CHECK(contains(message, "positive size"));

  message = read_error(header + "p1,0.5 1 2 3 0\n");  // zero height
  CHECK(contains(message, "box 1 height"));

  message = read_error(header + "p1,0.5 1 2 3 4 nan 1 2 3 4\n");  // confidence not finite
  CHECK(contains(message, "bad.csv:2:"));
  CHECK(contains(message, "box 2 confidence"));
  message = read_error(header + "p1,inf 1 2 3 4\n");
  CHECK(contains(message, "box 1 confidence"));

  // Decimal numbers only: strtod would read hex, "infinity" and "nan(...)" as numbers.
  message = read_error(header + "p1,0.5 0x10 2 3 4\n");
  CHECK(contains(message, "bad.csv:2: field PredictionString, box 1 x: expected a finite number, got '0x10'"));
  message = read_error(header + "p1,0x1p-1 1 2 3 4\n");
  CHECK(contains(message, "box 1 confidence: expected a finite number, got '0x1p-1'"));
  message = read_error(header + "p1,0.5 1 2 3 4 0.25 1 2 3 0X8\n");
  CHECK(contains(message, "box 2 height: expected a finite number, got '0X8'"));
  CHECK(read_error(header + "p1,5e-01 -10 +20 3E1 40.\n").empty());  // decimal forms still read

  message = read_error(header + "p1,0.5 1.5 2 3 4\n");  // fractional pixel
  CHECK(contains(message, "box 1 x"));
  CHECK(contains(message, "whole number"));

  message = read_error(header + "p1,0.5 1 2 3 4\np1,\n");  // duplicate id
  CHECK(contains(message, "bad.csv:3: field patientId"));
  CHECK(contains(message, "line 2"));

  message = read_error(header + "p1 0.5 1 2 3 4\n");  // no comma
  CHECK(contains(message, "bad.csv:2:"));

  message = read_error(header + ",0.5 1 2 3 4\n");  // empty id
  CHECK(contains(message, "bad.csv:2: field patientId"));

  message = read_error(header + "p1,0.5 1 2 3 4,extra\n");
  CHECK(contains(message, "bad.csv:2: field PredictionString"));

  message = read_error("");
  CHECK(contains(message, "empty file"));

  CHECK_THROWS_AS(pneumo::read_submission(temporary_path("does_not_exist.csv")), pneumo::Error);
}

TEST_CASE("write_submission refuses inconsistent input and leaves no file") {
  const std::string path = temporary_path("refused.csv");
  pneumo::Submission duplicate;
  duplicate.patient_ids = {"a", "a"};
  CHECK_THROWS_AS(pneumo::write_submission(path, duplicate), pneumo::Error);
  pneumo::Submission stray;
  stray.patient_ids = {"a"};
  stray.predictions["b"] = {scored(0.5f, {1, 2, 3, 4})};
  CHECK_THROWS_AS(pneumo::write_submission(path, stray), pneumo::Error);
  pneumo::Submission empty_box;
  empty_box.patient_ids = {"a"};
  empty_box.predictions["a"] = {scored(0.5f, {1, 2, 0, 4})};
  CHECK_THROWS_AS(pneumo::write_submission(path, empty_box), pneumo::Error);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("check_submission_covers names a missing or an unknown image") {
  pneumo::Submission submission;
  submission.patient_ids = {"a", "b"};
  CHECK_NOTHROW(pneumo::check_submission_covers(submission, {"b", "a"}));
  std::string message;
  try {
    pneumo::check_submission_covers(submission, {"a", "b", "c"});
  } catch (const pneumo::Error& error) {
    message = error.what();
  }
  CHECK(contains(message, "lacks patientId 'c'"));
  message.clear();
  try {
    pneumo::check_submission_covers(submission, {"a"});
  } catch (const pneumo::Error& error) {
    message = error.what();
  }
  CHECK(contains(message, "unknown patientId 'b'"));
}
