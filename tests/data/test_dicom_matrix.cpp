// read_dicom on the syntax matrix (tests/fixtures/data/dicom_matrix/, written by
// tests/data/make_dicom_fixtures.py with DCMTK's and OpenJPEG's command-line tools): every supported
// transfer syntax x unsigned/signed 8/12/16-bit, MONOCHROME1, modality rescale and VOI windows.
// Each file's expected [0,1] pixels come from an independent decoder (pydicom, or DCMTK's dcmdjpeg /
// dcmdjpls where pydicom has none) mapped by the script's own implementation of data/input/decoding.md;
// manifest.txt gives the allowed error (0 for lossless). Then damaged copies of every file
// (truncated, bytes flipped) must give a one-line error or a valid image: never a signal or a hang.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "data/input/dicom.h"
#include "engine/check.h"
#include "tests/support/fixture_array.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

std::string matrix_path(const std::string& name) { return pneumo::testing::fixture_path("data/dicom_matrix/" + name); }

struct Entry {
  std::string file;
  double tolerance = 0;  // allowed |error| in [0,1] units
  std::string decoder, description;
};

std::vector<Entry> read_manifest() {
  std::ifstream file(matrix_path("manifest.txt"));
  REQUIRE_MESSAGE(file.good(), "missing dicom_matrix/manifest.txt");
  std::vector<Entry> entries;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Entry entry;
    fields >> entry.file >> entry.tolerance >> entry.decoder;
    std::getline(fields, entry.description);
    REQUIRE_MESSAGE(!fields.bad(), line);
    entries.push_back(entry);
  }
  return entries;
}

struct Expected {
  uint32_t height = 0, width = 0;
  std::vector<float> pixels;  // (H,W) in [0,1]
};

// The reference pixels: a (H,W) float32 .arr (tests/support/fixture_array.h).
Expected read_expected(const std::string& name) {
  const pneumo::testing::FixtureArray array = pneumo::testing::read_fixture_array(matrix_path(name));
  REQUIRE(array.dtype == 1);  // float32
  REQUIRE(array.shape.size() == 2);
  Expected expected;
  expected.height = array.shape[0];
  expected.width = array.shape[1];
  expected.pixels = array.as<float>();
  return expected;
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<char>& bytes, size_t length) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(length));
}

}  // namespace

TEST_CASE("every supported syntax and pixel kind equals an independent decoder, mapped to [0,1]") {
  const std::vector<Entry> entries = read_manifest();
  CHECK(entries.size() >= 60);
  int lossless = 0, lossy = 0;
  double worst_lossy = 0, worst_lossless = 0;
  for (const Entry& entry : entries) {
    INFO(entry.file << " (" << entry.description << ", reference: " << entry.decoder << ")");
    const pneumo::Image image = pneumo::read_dicom(matrix_path(entry.file));
    const Expected expected = read_expected(entry.file.substr(0, entry.file.size() - 4) + ".arr");
    REQUIRE(image.height == static_cast<int>(expected.height));
    REQUIRE(image.width == static_cast<int>(expected.width));
    REQUIRE(image.pixels.size() == expected.pixels.size());
    double worst = 0;
    float lowest = 1, highest = 0;
    for (size_t i = 0; i < expected.pixels.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(image.pixels[i] - expected.pixels[i])));
      lowest = std::min(lowest, image.pixels[i]);
      highest = std::max(highest, image.pixels[i]);
    }
    CHECK(lowest >= 0.0f);
    CHECK(highest <= 1.0f);
    // Lossless: the same float (1e-7 allows for the last bit of float32 rounding, far below one
    // 16-bit level = 1.5e-5). Lossy: one stored level against the reference decoder of the same
    // stream (measured: 0 everywhere; pydicom's Pillow and pneumo share libjpeg-turbo / OpenJPEG).
    CHECK(worst <= entry.tolerance + 1e-7);
    (entry.tolerance == 0 ? lossless : lossy) += 1;
    double& worst_of_kind = entry.tolerance == 0 ? worst_lossless : worst_lossy;
    worst_of_kind = std::max(worst_of_kind, worst);
  }
  MESSAGE(lossless << " lossless and " << lossy << " lossy fixtures checked; largest |pneumo - reference| "
                   << worst_lossless << " (lossless), " << worst_lossy << " (lossy)");
}

TEST_CASE("the documented [0,1] mapping, by hand on the matrix's extremes") {
  // The generator puts the kind's smallest and largest stored value in pixels 0 and 1.
  auto first_two = [](const char* file) {
    const pneumo::Image image = pneumo::read_dicom(matrix_path(file));
    return std::pair<float, float>(image.pixels[0], image.pixels[1]);
  };
  // Plain unsigned: v / (2^b - 1) exactly; MONOCHROME1 inverts.
  CHECK(first_two("u12_j2k_lossless.dcm") == std::pair<float, float>(0.0f, 1.0f));
  CHECK(first_two("u8_monochrome1.dcm") == std::pair<float, float>(1.0f, 0.0f));
  // Signed without rescale or window: the stored range -2^(b-1) .. 2^(b-1)-1 to 0 .. 1.
  CHECK(first_two("s16_rle.dcm") == std::pair<float, float>(0.0f, 1.0f));
  CHECK(first_two("s8_jpegls_lossless.dcm") == std::pair<float, float>(0.0f, 1.0f));
  CHECK(first_two("s12_monochrome1.dcm") == std::pair<float, float>(1.0f, 0.0f));
  // A middle value: stored 0 of s12 is (0 + 2048) / 4095.
  const pneumo::Image s12 = pneumo::read_dicom(matrix_path("s12_explicit_le.dcm"));
  const pneumo::Image u12 = pneumo::read_dicom(matrix_path("u12_explicit_le.dcm"));
  // u12 and s12 hold the same pattern shifted by 2048, so their [0,1] values agree.
  double worst = 0;
  for (size_t i = 0; i < u12.pixels.size(); ++i)
    worst = std::max(worst, std::fabs(double(u12.pixels[i]) - s12.pixels[i]));
  CHECK(worst < 1e-7);
  // Rescale 0.5 x - 1024 alone still spans the stored range: extremes 0 and 1.
  CHECK(first_two("s16_rescale.dcm") == std::pair<float, float>(0.0f, 1.0f));
  // Window C=40 W=400 after the rescale: -32768 * 0.5 - 1024 is far below, 32767 * 0.5 - 1024 far above.
  CHECK(first_two("s16_rescale_window.dcm") == std::pair<float, float>(0.0f, 1.0f));
  // Window C=1500 W=1200 (LINEAR) on u12: 0 -> 0, 4095 -> 1, and a value inside by the formula.
  const pneumo::Image window = pneumo::read_dicom(matrix_path("u12_window.dcm"));
  for (size_t i = 0; i < u12.pixels.size(); ++i) {
    const double stored = std::round(u12.pixels[i] * 4095.0);
    const double y = std::clamp((stored - (1500 - 0.5)) / (1200 - 1) + 0.5, 0.0, 1.0);
    REQUIRE(std::fabs(window.pixels[i] - y) < 1e-6);
  }
}

TEST_CASE("damaged copies of every matrix file: a one-line error or a valid image, never a crash or hang") {
  const std::vector<Entry> entries = read_manifest();
  const std::string damaged = "/tmp/pneumo_test_dicom_matrix_" + std::to_string(::getpid()) + ".dcm";
  int errors = 0, images = 0;
  for (const Entry& entry : entries) {
    const std::vector<char> whole = read_bytes(matrix_path(entry.file));
    REQUIRE(whole.size() > 400);
    std::vector<std::pair<std::string, std::vector<char>>> copies;
    for (size_t keep : {whole.size() / 8, whole.size() / 3, whole.size() / 2, whole.size() * 3 / 4, whole.size() - 64,
                        whole.size() - 7, whole.size() - 1}) {
      copies.emplace_back("truncated to " + std::to_string(keep),
                          std::vector<char>(whole.begin(), whole.begin() + keep));
    }
    // Flipped bytes: in the header (tags, lengths), at the start of the pixel data (codec headers
    // sit there) and inside it; a 64-byte run of 0xff in the middle of the pixel data.
    const size_t tail = std::min<size_t>(whole.size() / 2, 1200);
    const size_t pixel_start = whole.size() - tail;
    for (size_t position : {size_t{140}, size_t{200}, size_t{300}, pixel_start, pixel_start + 4, pixel_start + 17,
                            pixel_start + 40, whole.size() - tail / 2, whole.size() - 3}) {
      std::vector<char> copy = whole;
      copy[position] = static_cast<char>(copy[position] ^ 0x5a);
      copies.emplace_back("byte " + std::to_string(position) + " flipped", copy);
    }
    std::vector<char> run = whole;
    std::fill(run.begin() + pixel_start + tail / 4, run.begin() + pixel_start + tail / 4 + 64, static_cast<char>(0xff));
    copies.emplace_back("64 bytes of 0xff", run);
    for (const auto& copy : copies) {
      const std::string& what = copy.first;  // (INFO keeps a reference: no structured binding)
      const auto& bytes = copy.second;
      INFO(entry.file << ", " << what);
      write_bytes(damaged, bytes, bytes.size());
      const auto start = std::chrono::steady_clock::now();
      try {
        const pneumo::Image image = pneumo::read_dicom(damaged);
        // A flip inside uncompressed pixels is still a valid image: it must still be one.
        REQUIRE(image.pixels.size() == static_cast<size_t>(image.width) * image.height);
        for (float value : image.pixels) REQUIRE((value >= 0.0f && value <= 1.0f));
        ++images;
      } catch (const pneumo::Error& error) {
        const std::string message = error.what();
        CHECK(message.find('\n') == std::string::npos);
        CHECK(message.rfind(damaged + ": ", 0) == 0);
        ++errors;
      }
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    }
  }
  std::remove(damaged.c_str());
  MESSAGE(errors << " damaged copies refused with one-line errors, " << images << " still valid images");
  CHECK(errors > images);  // truncation is always noticed
}
