// read_labels / read_class_info: the real file layout (head of stage_2_train_labels.csv), BOM and
// CRLF, and every kind of malformed row rejected with file, line and field in the message.
#include <cstdio>
#include <fstream>
#include <unistd.h>
#include <string>

#include "data/input/labels.h"
#include "engine/check.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

const char* kHeader = "patientId,x,y,width,height,Target\n";

// Writes `text` to a fresh temporary file and returns its path.
std::string write_temp(const std::string& text, const std::string& name = "labels.csv") {
  std::string path = "/tmp/pneumo_test_labels_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The message of the pneumo::Error that reading `text` throws ("" when it does not throw).
std::string label_error(const std::string& text) {
  std::string path = write_temp(text);
  try {
    pneumo::read_labels(path);
  } catch (const pneumo::Error& error) {
    std::remove(path.c_str());
    return error.what();
  }
  std::remove(path.c_str());
  return "";
}

}  // namespace

TEST_CASE("the head of stage_2_train_labels.csv") {
  pneumo::LabelSet labels = pneumo::read_labels(pneumo::testing::fixture_path("data/train_labels_head.csv"));
  CHECK(labels.row_count == 10);
  REQUIRE(labels.patient_ids.size() == 8);
  CHECK(labels.patient_ids[0] == "0004cfab-14fd-4e49-80ba-63a80b6bddd6");
  CHECK(labels.patient_ids[4] == "00436515-870c-4b36-a041-de91049b9ab4");
  CHECK(labels.patient_ids[7] == "00704310-78a8-4b38-8475-49f4573b2dbb");
  CHECK(labels.positive_count() == 2);
  CHECK(labels.box_count() == 4);
  const auto& boxes = labels.boxes_for("00436515-870c-4b36-a041-de91049b9ab4");
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0] == pneumo::Box{264, 152, 213, 379});
  CHECK(boxes[1] == pneumo::Box{562, 152, 256, 453});
  CHECK(labels.boxes_for("0004cfab-14fd-4e49-80ba-63a80b6bddd6").empty());
  CHECK(labels.boxes_for("unknown").empty());
}

TEST_CASE("BOM, CRLF, integer-written numbers and blank lines are accepted") {
  std::string text = std::string("\xEF\xBB\xBF") +
                     "patientId,x,y,width,height,Target\r\n"
                     "a,,,,,0\r\n"
                     "b,10,20,30,40,1\r\n"
                     "\r\n"
                     "b,1.0,2.0,3.0,4.0,1\r\n"
                     "c,-5.0,0.0,7.0,8.0,1";  // no final newline
  std::string path = write_temp(text);
  pneumo::LabelSet labels = pneumo::read_labels(path);
  std::remove(path.c_str());
  CHECK(labels.row_count == 4);
  CHECK(labels.patient_ids == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(labels.boxes_for("b").size() == 2);
  CHECK(labels.boxes_for("b")[0] == pneumo::Box{10, 20, 30, 40});
  CHECK(labels.boxes_for("b")[1] == pneumo::Box{1, 2, 3, 4});
  CHECK(labels.boxes_for("c")[0] == pneumo::Box{-5, 0, 7, 8});
}

TEST_CASE("malformed rows name the file, the line and the field") {
  struct Case {
    std::string rows;
    std::string expected;  // a part of the message
  };
  const Case cases[] = {
      {"a,1,2,3,4\n", ":2: expected 6 fields"},
      {"a,1,2,3,4,1,9\n", ":2: expected 6 fields"},
      {"a,,,,,0\nb,1,2,x3,4,1\n", ":3: field width: expected a whole number, got 'x3'"},
      {"a,1.5,2,3,4,1\n", ":2: field x: expected a whole number, got '1.5' (not integral)"},
      {"a,1,2,-3,4,1\n", ":2: field width: expected a positive size"},
      {"a,1,2,3,0,1\n", ":2: field height: expected a positive size"},
      {"a,1,2,0,4,1\n", ":2: field width: expected a positive size"},
      {"a,1,2,3,4,2\n", ":2: field Target: expected 0 or 1, got '2'"},
      {"a,1,2,3,4,\n", ":2: field Target: expected 0 or 1"},
      {"a,1,2,3,4,0\n", ":2: field Target: 0 but the row has a box"},
      {"a,,,,,1\n", ":2: field x: Target is 1 but the box"},
      {"a,1,,3,4,1\n", ":2: field y: empty while other box fields are set"},
      {"a,,,,,0\na,1,2,3,4,1\n", ":3: field patientId: 'a' has a box here but a negative row on line 2"},
      {"a,1,2,3,4,1\na,,,,,0\n", ":3: field patientId: 'a' is negative here but has a box on line 2"},
      {"a,,,,,0\na,,,,,0\n", ":3: field patientId: 'a' already has a negative row (line 2)"},
      {",,,,,0\n", ":2: field patientId: empty"},
      {"a,1,2,3,nan,1\n", ":2: field height: expected a whole number, got 'nan'"},
      {"a,1,2,3,1e99,1\n", ":2: field height: expected a whole number"},
      // Decimal numbers only: strtod would read hex, inf and nan.
      {"a,0x10,2,3,4,1\n", ":2: field x: expected a whole number, got '0x10'"},
      {"a,1,2,0X1p4,4,1\n", ":2: field width: expected a whole number, got '0X1p4'"},
      {"a,1,2,3,inf,1\n", ":2: field height: expected a whole number, got 'inf'"},
  };
  for (const Case& test : cases) {
    std::string message = label_error(kHeader + test.rows);
    INFO("rows: " << test.rows << "message: " << message);
    CHECK(message.find(test.expected) != std::string::npos);
    CHECK(message.find("pneumo_test_labels_") != std::string::npos);  // names the file
    CHECK(message.find('\n') == std::string::npos);                   // one line
  }
  CHECK(label_error("patientId,x,y,w,h,Target\n").find(":1: header: expected") != std::string::npos);
  CHECK(label_error("").find("empty file") != std::string::npos);
  CHECK_THROWS_AS(pneumo::read_labels("/nonexistent/labels.csv"), pneumo::Error);
}

TEST_CASE("detailed class info") {
  std::string path = write_temp(
      "\xEF\xBB\xBFpatientId,class\r\n"
      "a,No Lung Opacity / Not Normal\r\n"
      "b,Lung Opacity\r\n"
      "b,Lung Opacity\r\n"
      "c,Normal\r\n",
      "classes.csv");
  pneumo::ClassInfo info = pneumo::read_class_info(path);
  CHECK(info.row_count == 4);
  CHECK(info.patient_ids == std::vector<std::string>{"a", "b", "c"});
  CHECK(info.classes.at("a") == pneumo::ImageClass::NoLungOpacityNotNormal);
  CHECK(info.classes.at("b") == pneumo::ImageClass::LungOpacity);
  CHECK(info.classes.at("c") == pneumo::ImageClass::Normal);
  CHECK(std::string(pneumo::image_class_name(pneumo::ImageClass::NoLungOpacityNotNormal)) ==
        "No Lung Opacity / Not Normal");

  auto error_of = [&](const std::string& text) -> std::string {
    std::ofstream(path, std::ios::binary) << text;
    try {
      pneumo::read_class_info(path);
    } catch (const pneumo::Error& error) {
      return error.what();
    }
    return "";
  };
  CHECK(error_of("patientId,class\na,Pneumonia\n").find(":2: field class: expected") != std::string::npos);
  CHECK(error_of("patientId,class\na,Normal\na,Lung Opacity\n")
            .find(":3: field class: 'a' is 'Lung Opacity' here but 'Normal' on line 2") != std::string::npos);
  CHECK(error_of("patientId,class\na,Normal,x\n").find(":2: expected 2 fields") != std::string::npos);
  CHECK(error_of("patientId,label\n").find(":1: header") != std::string::npos);
  std::remove(path.c_str());
}
