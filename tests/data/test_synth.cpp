// Synthetic dataset: same seed -> byte-identical files; the files have the real RSNA format
// (labels parse with read_labels, JPEG-baseline 8-bit DICOMs that read_dicom decodes, the
// header attributes of the Kaggle files), boxes in the real size ranges inside the image.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include "data/input/dataset.h"
#include "data/input/dicom.h"
#include "data/input/labels.h"
#include "data/input/synth.h"
#include "engine/check.h"
#include "tests/third_party/doctest/doctest.h"

namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  std::string path = "/tmp/pneumo_test_synth_" + std::to_string(::getpid()) + "_" + name;
  fs::remove_all(path);
  return path;
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream file(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  return lines;
}

// Every file under `root`, relative path -> contents.
std::map<std::string, std::string> all_files(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) files[fs::relative(entry.path(), root).string()] = read_file(entry.path());
  return files;
}

}  // namespace

TEST_CASE("the same seed writes byte-identical datasets; another seed does not") {
  pneumo::SynthConfig config;
  config.train_images = 5;
  config.test_images = 2;
  config.image_size = 128;
  config.seed = 11;
  const std::string dir_a = temp_dir("a"), dir_b = temp_dir("b"), dir_c = temp_dir("c");
  config.out_dir = dir_a;
  pneumo::write_synthetic_dataset(config);
  config.out_dir = dir_b;
  pneumo::write_synthetic_dataset(config);
  const auto first = all_files(dir_a);
  const auto second = all_files(dir_b);
  REQUIRE(first.size() == 5 + 2 + 4);  // 7 DICOMs and 4 CSVs
  CHECK(first == second);
  config.seed = 12;
  config.out_dir = dir_c;
  pneumo::write_synthetic_dataset(config);
  const auto third = all_files(config.out_dir);
  CHECK(third.size() == first.size());
  CHECK(third != first);
  for (const std::string& dir : {dir_a, dir_b, dir_c}) fs::remove_all(dir);
}

TEST_CASE("synthetic files have the RSNA layout and format at 1024x1024") {
  pneumo::SynthConfig config;
  config.out_dir = temp_dir("format");
  config.train_images = 7;
  config.test_images = 3;
  config.seed = 3;
  pneumo::write_synthetic_dataset(config);
  const pneumo::DatasetLayout layout = pneumo::find_dataset(config.out_dir);
  CHECK(layout.train_labels == config.out_dir + "/stage_2_train_labels.csv");
  CHECK(layout.test_labels == config.out_dir + "/synthetic_test_labels.csv");

  const std::vector<std::string> label_lines = lines_of(layout.train_labels);
  REQUIRE(!label_lines.empty());
  CHECK(label_lines[0] == "patientId,x,y,width,height,Target");
  bool saw_negative = false, saw_positive = false;
  for (size_t i = 1; i < label_lines.size(); ++i) {
    const std::string& line = label_lines[i];
    REQUIRE(line.size() > 37);
    CHECK(line[8] == '-');  // UUID-like id: 8-4-4-4-12 hex
    CHECK(line[13] == '-');
    CHECK(line[18] == '-');
    CHECK(line[23] == '-');
    CHECK(line[36] == ',');
    if (line.substr(36) == ",,,,,0") saw_negative = true;
    if (line.back() == '1') {
      saw_positive = true;
      CHECK(line.find(".0,") != std::string::npos);  // values written as floats: "264.0"
    }
  }
  CHECK(saw_negative);
  CHECK(saw_positive);

  const pneumo::LabelSet labels = pneumo::read_labels(layout.train_labels);
  CHECK(labels.image_count() == 7);
  CHECK(labels.positive_count() == 2);  // round(0.32 * 7)
  const std::vector<std::string> train_ids = pneumo::list_dicom_ids(layout.train_images);
  std::vector<std::string> label_ids = labels.patient_ids;
  std::sort(label_ids.begin(), label_ids.end());
  CHECK(train_ids == label_ids);
  for (const auto& [id, boxes] : labels.boxes) {
    CHECK(boxes.size() >= 1);
    CHECK(boxes.size() <= 4);
    for (const pneumo::Box& box : boxes) {
      CHECK(box.x >= 0);
      CHECK(box.y >= 0);
      CHECK(box.x + box.width <= 1024);
      CHECK(box.y + box.height <= 1024);
      CHECK(box.width >= 40);
      CHECK(box.width <= 528);
      CHECK(box.height >= 45);
      CHECK(box.height <= 942);
    }
  }
  const pneumo::ClassInfo classes = pneumo::read_class_info(layout.class_info);
  CHECK(classes.row_count == labels.row_count);
  for (const std::string& id : labels.patient_ids)
    CHECK((classes.classes.at(id) == pneumo::ImageClass::LungOpacity) == (labels.boxes.count(id) == 1));

  const pneumo::LabelSet test_labels = pneumo::read_labels(layout.test_labels);
  CHECK(test_labels.image_count() == 3);
  const std::vector<std::string> submission = lines_of(layout.sample_submission);
  REQUIRE(submission.size() == 4);
  CHECK(submission[0] == "patientId,PredictionString");
  CHECK(submission[1].substr(36) == ",0.5 0 0 100 100");
  CHECK(pneumo::list_dicom_ids(layout.test_images).size() == 3);

  for (const std::string& id : train_ids) {
    const std::string path = pneumo::dicom_path(layout.train_images, id);
    const pneumo::Image image = pneumo::read_dicom(path);
    CHECK(image.width == 1024);
    CHECK(image.height == 1024);
    const auto bytes = fs::file_size(path);
    CHECK(bytes > 60000);
    CHECK(bytes < 300000);
    DcmFileFormat file;
    REQUIRE(file.loadFile(path.c_str()).good());
    OFString syntax, modality, view, sex, age, photometric, sop_class;
    file.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, syntax);
    CHECK(std::string(syntax.c_str()) == "1.2.840.10008.1.2.4.50");
    DcmDataset* dataset = file.getDataset();
    CHECK(dataset->getOriginalXfer() == EXS_JPEGProcess1);
    dataset->findAndGetOFString(DCM_Modality, modality);
    dataset->findAndGetOFString(DCM_ViewPosition, view);
    dataset->findAndGetOFString(DCM_PatientSex, sex);
    dataset->findAndGetOFString(DCM_PatientAge, age);
    dataset->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
    dataset->findAndGetOFString(DCM_SOPClassUID, sop_class);
    CHECK(std::string(modality.c_str()) == "CR");
    CHECK((view == "PA" || view == "AP"));
    CHECK((sex == "M" || sex == "F"));
    CHECK(!age.empty());
    CHECK(std::string(photometric.c_str()) == "MONOCHROME2");
    CHECK(std::string(sop_class.c_str()) == "1.2.840.10008.5.1.4.1.1.7");  // Secondary Capture
    Uint16 bits = 0, samples = 0;
    dataset->findAndGetUint16(DCM_BitsStored, bits);
    dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
    CHECK(bits == 8);
    CHECK(samples == 1);
  }
  fs::remove_all(config.out_dir);
}

TEST_CASE("rendered images look like chest X-rays: dark background, dark lungs, bright opacities") {
  pneumo::SynthConfig config;
  config.train_images = 12;
  config.image_size = 256;
  config.seed = 5;
  int positives = 0;
  for (int index = 0; index < config.train_images; ++index) {
    const pneumo::SynthImage image = pneumo::render_synthetic_image(config, index);
    REQUIRE(image.pixels.size() == 256u * 256u);
    auto mean = [&](int x, int y, int width, int height) {
      double sum = 0;
      for (int r = y; r < y + height; ++r)
        for (int c = x; c < x + width; ++c) sum += image.pixels[r * 256 + c];
      return sum / (width * height);
    };
    // The corners are background, darker than the body below the lungs.
    CHECK(mean(0, 0, 8, 8) < mean(100, 230, 56, 20) - 40);
    if (image.boxes.empty()) continue;
    ++positives;
    // The middle of an opacity is brighter than the same spot would be in the clear lung: it
    // is at least as bright as the body's soft tissue near the bottom.
    for (const pneumo::Box& box : image.boxes) {
      const double inside =
          mean(box.x + box.width / 3, box.y + box.height / 3, std::max(1, box.width / 3), std::max(1, box.height / 3));
      CHECK(inside > mean(0, 0, 8, 8) + 60);
    }
  }
  CHECK(positives == 4);  // round(0.32 * 12)
}

TEST_CASE("synth refuses a non-empty output folder and leaves it as it was; an empty one is fine") {
  pneumo::SynthConfig config;
  config.train_images = 2;
  config.test_images = 1;
  config.image_size = 64;
  config.seed = 2;
  const std::string out = temp_dir("refused");
  config.out_dir = out;
  fs::create_directories(config.out_dir);
  std::ofstream(config.out_dir + "/stage_2_train_labels.csv") << "an older dataset's labels\n";
  std::string message;
  try {
    pneumo::write_synthetic_dataset(config);
  } catch (const pneumo::Error& error) {
    message = error.what();
  }
  CHECK(message == "'" + config.out_dir +
                       "': exists and is not empty; synth writes a dataset only into a new or "
                       "empty folder (choose another --out or remove this one first)");
  CHECK(all_files(config.out_dir) ==
        std::map<std::string, std::string>{{"stage_2_train_labels.csv", "an older dataset's labels\n"}});
  // An empty folder (given with a trailing slash) receives the dataset; no partial folder is left.
  fs::remove(config.out_dir + "/stage_2_train_labels.csv");
  config.out_dir += "/";
  pneumo::write_synthetic_dataset(config);
  CHECK(all_files(out).size() == 3 + 4);
  for (const auto& entry : fs::directory_iterator("/tmp"))
    CHECK(entry.path().filename().string().rfind(fs::path(out).filename().string() + ".partial-", 0) != 0);
  fs::remove_all(out);
}

TEST_CASE("synth writes into <out>.partial-<pid> and removes the partial folders of killed runs") {
  pneumo::SynthConfig config;
  config.train_images = 3;
  config.test_images = 0;
  config.image_size = 64;
  config.out_dir = temp_dir("partial");
  // A killed run's folder (pid of a finished child) and a running writer's (this test's parent).
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = config.out_dir + ".partial-" + std::to_string(dead);
  const std::string live = config.out_dir + ".partial-" + std::to_string(::getppid());
  fs::create_directories(stale + "/stage_2_train_images");
  fs::create_directories(live);
  pneumo::write_synthetic_dataset(config);
  CHECK(!fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(!fs::exists(config.out_dir + ".partial-" + std::to_string(::getpid())));
  CHECK(pneumo::read_labels(config.out_dir + "/stage_2_train_labels.csv").image_count() == 3);
  fs::remove_all(live);
  fs::remove_all(config.out_dir);
}
