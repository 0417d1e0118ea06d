// read_dicom against the arrays the fixtures were generated from (tests/data/make_dicom_fixtures.py):
// exact for lossless syntaxes, stated tolerances for lossy ones, and one-line errors for files
// that cannot be read.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "data/dicom.h"
#include "engine/check.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

std::string dicom_path(const std::string& name) {
  return pneumo::testing::fixture_path("data/dicom/" + name);
}

struct Stored {
  int height = 0, width = 0;
  std::vector<uint16_t> values;  // (H,W) stored values
};

// Test-only reader of the .arr files (uint16 arrays; format in make_resize_reference.py).
Stored read_expected(const std::string& name) {
  std::ifstream file(dicom_path(name), std::ios::binary);
  REQUIRE_MESSAGE(file.good(), "missing fixture " << name);
  char magic[4];
  uint32_t header[4];
  file.read(magic, 4);
  file.read(reinterpret_cast<char*>(header), sizeof(header));
  REQUIRE(std::memcmp(magic, "PNA1", 4) == 0);
  REQUIRE(header[0] == 5);  // uint16
  REQUIRE(header[1] == 2);
  Stored stored;
  stored.height = header[2];
  stored.width = header[3];
  stored.values.resize(static_cast<size_t>(stored.height) * stored.width);
  file.read(reinterpret_cast<char*>(stored.values.data()), stored.values.size() * 2);
  REQUIRE(file.good());
  return stored;
}

// The expected [0,1] value of one stored value: raw / (2^bits - 1), inverted for MONOCHROME1.
float expected_value(uint16_t raw, int bits, bool monochrome1) {
  const float maximum = static_cast<float>((1u << bits) - 1u);
  return static_cast<float>(monochrome1 ? (1u << bits) - 1u - raw : raw) / maximum;
}

// Largest |decoded - expected| in units of stored values.
double max_error_levels(const pneumo::Image& image, const Stored& expected, int bits) {
  REQUIRE(image.height == expected.height);
  REQUIRE(image.width == expected.width);
  REQUIRE(image.pixels.size() == expected.values.size());
  const double maximum = (1u << bits) - 1u;
  double worst = 0.0;
  for (size_t i = 0; i < image.pixels.size(); ++i)
    worst = std::max(worst, std::fabs(image.pixels[i] * maximum - expected.values[i]));
  return worst;
}

std::string error_of(const std::string& path) {
  try {
    pneumo::read_dicom(path);
  } catch (const pneumo::Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("lossless transfer syntaxes decode to the generated stored values exactly") {
  struct Case {
    const char* file;
    const char* expected;
    int bits;
    bool monochrome1;
  };
  const Case cases[] = {
      {"u8_implicit_le.dcm", "expected_u8.arr", 8, false},
      {"u8_explicit_le.dcm", "expected_u8.arr", 8, false},
      {"u8_explicit_be.dcm", "expected_u8.arr", 8, false},
      {"u8_deflated.dcm", "expected_u8.arr", 8, false},
      {"u8_rle.dcm", "expected_u8.arr", 8, false},
      {"u8_jpeg_lossless_sv1.dcm", "expected_u8.arr", 8, false},
      {"u8_jpegls_lossless.dcm", "expected_u8.arr", 8, false},
      {"u8_monochrome1.dcm", "expected_u8.arr", 8, true},
      {"u8_odd_explicit_le.dcm", "expected_u8_odd.arr", 8, false},
      {"u8_odd_rle.dcm", "expected_u8_odd.arr", 8, false},
      {"u12_explicit_le.dcm", "expected_u12.arr", 12, false},
      {"u12_jpeg_lossless.dcm", "expected_u12.arr", 12, false},
      {"u12_monochrome1.dcm", "expected_u12.arr", 12, true},
      {"u16_explicit_le.dcm", "expected_u16.arr", 16, false},
      {"u16_explicit_be.dcm", "expected_u16.arr", 16, false},
      {"u16_rle.dcm", "expected_u16.arr", 16, false},
      {"u16_jpeg_lossless_sv1.dcm", "expected_u16.arr", 16, false},
      {"u16_jpegls_lossless.dcm", "expected_u16.arr", 16, false},
  };
  for (const Case& test : cases) {
    INFO(test.file);
    pneumo::Image image = pneumo::read_dicom(dicom_path(test.file));
    Stored expected = read_expected(test.expected);
    REQUIRE(image.height == expected.height);
    REQUIRE(image.width == expected.width);
    int mismatches = 0;
    for (size_t i = 0; i < expected.values.size(); ++i)
      mismatches += image.pixels[i] != expected_value(expected.values[i], test.bits, test.monochrome1);
    CHECK(mismatches == 0);
    CHECK(image.pixels.size() == static_cast<size_t>(expected.height) * expected.width);
  }
  // Spot values: 8-bit /255, 16-bit /65535, MONOCHROME1 inverted.
  pneumo::Image u8 = pneumo::read_dicom(dicom_path("u8_explicit_le.dcm"));
  CHECK(u8.width == 64);
  CHECK(u8.height == 48);
  CHECK(u8.pixels[1] == 7.0f / 255.0f);
  CHECK(pneumo::read_dicom(dicom_path("u8_monochrome1.dcm")).pixels[1] == 248.0f / 255.0f);
  CHECK(pneumo::read_dicom(dicom_path("u16_explicit_le.dcm")).pixels[1] == 20011.0f / 65535.0f);
}

TEST_CASE("lossy syntaxes: JPEG baseline (the RSNA syntax), JPEG extended 12-bit, JPEG-LS near") {
  // Baseline: pydicom's decode (Pillow, libjpeg's islow IDCT) is the reference, and DCMTK's IJG
  // decoder gives the identical stored values (measured: 0 levels). The loss against the source
  // of the smooth q95 fixture is at most one level.
  pneumo::Image baseline = pneumo::read_dicom(dicom_path("u8_jpeg_baseline.dcm"));
  double versus_pydicom = max_error_levels(baseline, read_expected("expected_u8_jpeg_baseline.arr"), 8);
  double versus_source = max_error_levels(baseline, read_expected("expected_u8_smooth.arr"), 8);
  MESSAGE("JPEG baseline: max error vs pydicom " << versus_pydicom << ", vs source " << versus_source << " levels");
  CHECK(versus_pydicom <= 1e-3);  // identical
  CHECK(versus_source <= 1.0 + 1e-3);
  pneumo::Image textured = pneumo::read_dicom(dicom_path("u8_jpeg_baseline_q75.dcm"));
  double textured_versus_pydicom =
      max_error_levels(textured, read_expected("expected_u8_jpeg_baseline_q75.arr"), 8);
  double textured_loss = max_error_levels(textured, read_expected("expected_u8.arr"), 8);
  MESSAGE("JPEG baseline q75 texture: max error vs pydicom " << textured_versus_pydicom
          << ", vs source " << textured_loss << " levels");
  CHECK(textured_versus_pydicom <= 1e-3);  // identical
  CHECK(textured_loss > 4.0);  // the fixture really is lossy
  // Extended 12-bit at quality 95 on a smooth ramp: within 2 of 4095 levels of the source.
  pneumo::Image extended = pneumo::read_dicom(dicom_path("u12_jpeg_extended.dcm"));
  double extended_error = max_error_levels(extended, read_expected("expected_u12_smooth.arr"), 12);
  MESSAGE("JPEG extended 12-bit: max error vs source " << extended_error << " levels");
  CHECK(extended_error <= 2.0 + 1e-3);
  // JPEG-LS near-lossless guarantees |error| <= NEAR = 2.
  pneumo::Image near = pneumo::read_dicom(dicom_path("u8_jpegls_near2.dcm"));
  CHECK(max_error_levels(near, read_expected("expected_u8.arr"), 8) <= 2.0 + 1e-3);
}

TEST_CASE("unreadable files give one-line errors naming the file and the reason") {
  struct Case {
    const char* file;
    const char* reason;
  };
  const Case cases[] = {
      {"error_rgb.dcm", "colour images are not supported (SamplesPerPixel=3, PhotometricInterpretation=RGB)"},
      {"error_multiframe.dcm", "multi-frame images are not supported (NumberOfFrames=2)"},
      {"error_signed.dcm", "signed pixel data"},
      {"error_truncated.dcm", "truncated"},
      {"error_not_dicom.dcm", "not a DICOM file"},
      {"error_jpeg2000.dcm", "cannot decode transfer syntax JPEG 2000"},
      {"does_not_exist.dcm", "cannot open (No such file or directory)"},
  };
  for (const Case& test : cases) {
    std::string message = error_of(dicom_path(test.file));
    INFO(test.file << ": " << message);
    CHECK(message.rfind(dicom_path(test.file) + ": ", 0) == 0);
    CHECK(message.find(test.reason) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("concurrent reads from many threads give the same pixels") {
  const char* files[] = {"u8_jpeg_baseline.dcm", "u8_rle.dcm", "u16_jpegls_lossless.dcm",
                         "u12_jpeg_lossless.dcm", "u8_deflated.dcm", "error_jpeg2000.dcm"};
  std::vector<std::vector<float>> sequential;
  for (const char* file : files) {
    try {
      sequential.push_back(pneumo::read_dicom(dicom_path(file)).pixels);
    } catch (const pneumo::Error&) {
      sequential.push_back({});
    }
  }
  std::vector<int> differences(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t f = 0; f < sequential.size(); ++f) {
          std::vector<float> pixels;
          try {
            pixels = pneumo::read_dicom(dicom_path(files[(f + t) % sequential.size()])).pixels;
          } catch (const pneumo::Error&) {
          }
          differences[t] += pixels != sequential[(f + t) % sequential.size()];
        }
    });
  for (auto& thread : threads) thread.join();
  for (int count : differences) CHECK(count == 0);
  CHECK(sequential[0].size() == 64 * 48);
  CHECK(sequential.back().empty());
}
