// read_dicom against the arrays the fixtures were generated from (tests/data/make_dicom_fixtures.py):
// exact for lossless syntaxes, stated tolerances for lossy ones, and one-line errors for files
// that cannot be read. The libjpeg-turbo JPEG path is checked against DCMTK's own decoder and
// pydicom, on the fixtures and on a 1024x1024 image this test encodes with DCMTK in fragments,
// and on JPEG streams this test damages.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrploss.h>

#include "data/input/dicom.h"
#include "engine/check.h"
#include "tests/support/fixture_array.h"
#include "tests/support/fixtures.h"
#include "tests/third_party/doctest/doctest.h"

namespace {

std::string dicom_path(const std::string& name) { return pneumo::testing::fixture_path("data/dicom/" + name); }

struct Stored {
  int height = 0, width = 0;
  std::vector<uint16_t> values;  // (H,W) stored values
};

// The pydicom reference values: a (H,W) uint16 .arr (tests/support/fixture_array.h).
Stored read_expected(const std::string& name) {
  const pneumo::testing::FixtureArray array = pneumo::testing::read_fixture_array(dicom_path(name));
  REQUIRE(array.dtype == 5);  // uint16
  REQUIRE(array.shape.size() == 2);
  Stored stored;
  stored.height = static_cast<int>(array.shape[0]);
  stored.width = static_cast<int>(array.shape[1]);
  stored.values = array.as<uint16_t>();
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

std::string error_of(const std::string& path, pneumo::JpegDecoder decoder = pneumo::JpegDecoder::libjpeg_turbo) {
  try {
    pneumo::read_dicom(path, decoder);
  } catch (const pneumo::Error& error) {
    return error.what();
  }
  return "";
}

std::string temporary_path(const std::string& name) {
  return "/tmp/pneumo_test_dicom_" + std::to_string(::getpid()) + "_" + name;
}

// Deterministic pseudo-random bytes (64-bit LCG, high byte).
struct Random {
  uint64_t state;
  uint8_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint8_t>(state >> 56);
  }
};

// A chest-X-ray-like 8-bit image: two bright lobes, stripes and noise. (H,W)
std::vector<uint8_t> xray_like(int height, int width) {
  std::vector<uint8_t> pixels(static_cast<size_t>(height) * width);  // (H,W)
  Random random{12345};
  for (int r = 0; r < height; ++r)
    for (int c = 0; c < width; ++c) {
      const double y = static_cast<double>(r) / height, x = static_cast<double>(c) / width;
      double value = 60 + 120 * std::exp(-((x - 0.3) * (x - 0.3) / 0.02 + (y - 0.5) * (y - 0.5) / 0.1)) +
                     120 * std::exp(-((x - 0.7) * (x - 0.7) / 0.02 + (y - 0.5) * (y - 0.5) / 0.1)) +
                     40 * std::sin(40 * y) * x + (random.next() % 9) - 4.0;
      pixels[static_cast<size_t>(r) * width + c] = static_cast<uint8_t>(std::clamp(value, 0.0, 255.0));
    }
  return pixels;
}

// DCMTK's lossy JPEG encoders, registered once for this test binary: fragments of at most 16 KB,
// a basic offset table, no rescaling of the stored values (dcmcjpeg +sr).
void register_jpeg_encoders() {
  static std::once_flag once;
  std::call_once(once, [] {
    DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never, OFFalse, 0, 0,
                                          /*fragment size, KB*/ 16, /*offset table*/ OFTrue, ESS_444, OFFalse, OFFalse,
                                          0, 0, 0.0, 0.0, 0, 0, 0, 0,
                                          /*use pixel values (+sp)*/ OFFalse);
  });
}

// Writes an 8-bit MONOCHROME2 image as a JPEG (baseline or extended) DICOM with DCMTK's encoder.
void write_jpeg_dicom(const std::string& path, const std::vector<uint8_t>& pixels, int height, int width,
                      E_TransferSyntax syntax, int quality) {
  register_jpeg_encoders();
  DcmFileFormat file;
  DcmDataset* dataset = file.getDataset();
  REQUIRE(dataset->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage).good());
  REQUIRE(dataset->putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.1.1").good());
  REQUIRE(dataset->putAndInsertString(DCM_Modality, "CR").good());
  REQUIRE(dataset->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2").good());
  REQUIRE(dataset->putAndInsertUint16(DCM_SamplesPerPixel, 1).good());
  REQUIRE(dataset->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(height)).good());
  REQUIRE(dataset->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(width)).good());
  REQUIRE(dataset->putAndInsertUint16(DCM_BitsAllocated, 8).good());
  REQUIRE(dataset->putAndInsertUint16(DCM_BitsStored, 8).good());
  REQUIRE(dataset->putAndInsertUint16(DCM_HighBit, 7).good());
  REQUIRE(dataset->putAndInsertUint16(DCM_PixelRepresentation, 0).good());
  REQUIRE(dataset->putAndInsertUint8Array(DCM_PixelData, pixels.data(), pixels.size()).good());
  DJ_RPLossy parameters(quality);
  REQUIRE(dataset->chooseRepresentation(syntax, &parameters).good());
  REQUIRE(dataset->canWriteXfer(syntax));
  REQUIRE(file.saveFile(path.c_str(), syntax).good());
}

// The fragments (without the offset table item) of a JPEG DICOM's pixel data, as DCMTK reads them.
std::vector<std::vector<uint8_t>> jpeg_fragments(DcmFileFormat& file) {
  DcmElement* element = nullptr;
  REQUIRE(file.getDataset()->findAndGetElement(DCM_PixelData, element).good());
  DcmPixelData* pixel_data = dynamic_cast<DcmPixelData*>(element);
  REQUIRE(pixel_data != nullptr);
  E_TransferSyntax syntax = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  pixel_data->getOriginalRepresentationKey(syntax, parameter);
  DcmPixelSequence* sequence = nullptr;
  REQUIRE(pixel_data->getEncapsulatedRepresentation(syntax, parameter, sequence).good());
  std::vector<std::vector<uint8_t>> fragments;
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    REQUIRE(sequence->getItem(item, i).good());
    REQUIRE(item->getUint8Array(bytes).good());
    fragments.emplace_back(bytes, bytes + item->getLength());
  }
  return fragments;
}

// Copies a single-fragment JPEG DICOM with its fragment replaced by change(fragment) (padded to
// an even length) and then `dataset_change` applied to the dataset.
void write_damaged_copy(const std::string& source, const std::string& destination,
                        const std::function<std::vector<uint8_t>(std::vector<uint8_t>)>& change,
                        const std::function<void(DcmDataset*)>& dataset_change = {}) {
  DcmFileFormat file;
  REQUIRE(file.loadFile(source.c_str()).good());
  const E_TransferSyntax syntax = file.getDataset()->getOriginalXfer();
  std::vector<std::vector<uint8_t>> fragments = jpeg_fragments(file);
  REQUIRE(fragments.size() == 1);
  std::vector<uint8_t> bytes = change(fragments[0]);
  if (bytes.size() % 2) bytes.push_back(0);
  DcmElement* element = nullptr;
  REQUIRE(file.getDataset()->findAndGetElement(DCM_PixelData, element).good());
  DcmPixelData* pixel_data = dynamic_cast<DcmPixelData*>(element);
  E_TransferSyntax original = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  pixel_data->getOriginalRepresentationKey(original, parameter);
  DcmPixelSequence* sequence = nullptr;
  REQUIRE(pixel_data->getEncapsulatedRepresentation(original, parameter, sequence).good());
  DcmPixelItem* item = nullptr;
  REQUIRE(sequence->getItem(item, 1).good());
  REQUIRE(item->putUint8Array(bytes.data(), static_cast<unsigned long>(bytes.size())).good());
  if (dataset_change) dataset_change(file.getDataset());
  REQUIRE(file.saveFile(destination.c_str(), syntax).good());
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
  // Baseline (the default, libjpeg-turbo path): pydicom's decode (Pillow, libjpeg's islow IDCT)
  // is the reference (0 levels; the DCMTK path is compared in a test below). The loss against
  // the source of the smooth q95 fixture is at most one level.
  pneumo::Image baseline = pneumo::read_dicom(dicom_path("u8_jpeg_baseline.dcm"));
  double versus_pydicom = max_error_levels(baseline, read_expected("expected_u8_jpeg_baseline.arr"), 8);
  double versus_source = max_error_levels(baseline, read_expected("expected_u8_smooth.arr"), 8);
  MESSAGE("JPEG baseline: max error vs pydicom " << versus_pydicom << ", vs source " << versus_source << " levels");
  CHECK(versus_pydicom <= 1e-3);  // identical
  CHECK(versus_source <= 1.0 + 1e-3);
  pneumo::Image textured = pneumo::read_dicom(dicom_path("u8_jpeg_baseline_q75.dcm"));
  double textured_versus_pydicom = max_error_levels(textured, read_expected("expected_u8_jpeg_baseline_q75.arr"), 8);
  double textured_loss = max_error_levels(textured, read_expected("expected_u8.arr"), 8);
  MESSAGE("JPEG baseline q75 texture: max error vs pydicom " << textured_versus_pydicom << ", vs source "
                                                             << textured_loss << " levels");
  CHECK(textured_versus_pydicom <= 1e-3);  // identical
  CHECK(textured_loss > 4.0);              // the fixture really is lossy
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
      {"error_truncated.dcm", "truncated"},
      {"error_not_dicom.dcm", "not a DICOM file"},
      {"error_jpeg2000.dcm", "cannot decode the JPEG 2000 pixel data"},
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
  const char* files[] = {"u8_jpeg_baseline.dcm",  "u8_rle.dcm",      "u16_jpegls_lossless.dcm",
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

TEST_CASE("JPEG baseline fixtures: the libjpeg-turbo path equals DCMTK's decoder and pydicom exactly") {
  const char* files[][2] = {{"u8_jpeg_baseline.dcm", "expected_u8_jpeg_baseline.arr"},
                            {"u8_jpeg_baseline_q75.dcm", "expected_u8_jpeg_baseline_q75.arr"}};
  for (const auto& file : files) {
    INFO(file[0]);
    pneumo::Image fast = pneumo::read_dicom(dicom_path(file[0]), pneumo::JpegDecoder::libjpeg_turbo);
    pneumo::Image dcmtk = pneumo::read_dicom(dicom_path(file[0]), pneumo::JpegDecoder::dcmtk);
    Stored pydicom = read_expected(file[1]);
    REQUIRE(fast.width == 64);
    REQUIRE(fast.height == 48);
    REQUIRE(dcmtk.width == 64);
    REQUIRE(dcmtk.height == 48);
    CHECK(fast.pixels == dcmtk.pixels);
    int mismatches = 0;
    for (size_t i = 0; i < pydicom.values.size(); ++i)
      mismatches += fast.pixels[i] != expected_value(pydicom.values[i], 8, false);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("1024x1024 JPEG baseline in several fragments and 8-bit JPEG extended: fast path == DCMTK") {
  const std::vector<uint8_t> source = xray_like(1024, 1024);
  const std::string baseline = temporary_path("xray_baseline.dcm");
  write_jpeg_dicom(baseline, source, 1024, 1024, EXS_JPEGProcess1, 90);
  {
    DcmFileFormat file;
    REQUIRE(file.loadFile(baseline.c_str()).good());
    CHECK(file.getDataset()->getOriginalXfer() == EXS_JPEGProcess1);
    size_t fragment_count = jpeg_fragments(file).size();
    MESSAGE("1024x1024 baseline file: " << fragment_count << " fragments");
    CHECK(fragment_count > 2);  // the concatenation of fragments is exercised
  }
  pneumo::Image fast = pneumo::read_dicom(baseline, pneumo::JpegDecoder::libjpeg_turbo);
  pneumo::Image dcmtk = pneumo::read_dicom(baseline, pneumo::JpegDecoder::dcmtk);
  REQUIRE(fast.width == 1024);
  REQUIRE(fast.height == 1024);
  CHECK(fast.pixels == dcmtk.pixels);
  // Sanity against the source: lossy at quality 90, but close.
  double total = 0.0, worst = 0.0;
  for (size_t i = 0; i < source.size(); ++i) {
    const double error = std::fabs(fast.pixels[i] * 255.0 - source[i]);
    total += error;
    worst = std::max(worst, error);
  }
  MESSAGE("1024x1024 q90: mean |error| " << total / source.size() << ", max " << worst << " levels");
  CHECK(total / source.size() < 2.0);
  CHECK(worst < 24.0);
  std::remove(baseline.c_str());

  // 8-bit JPEG extended (process 2, transfer syntax .4.51) takes the same fast path.
  const std::vector<uint8_t> small = xray_like(48, 64);
  const std::string extended = temporary_path("xray_extended.dcm");
  write_jpeg_dicom(extended, small, 48, 64, EXS_JPEGProcess2_4, 80);
  pneumo::Image extended_fast = pneumo::read_dicom(extended, pneumo::JpegDecoder::libjpeg_turbo);
  pneumo::Image extended_dcmtk = pneumo::read_dicom(extended, pneumo::JpegDecoder::dcmtk);
  CHECK(extended_fast.pixels.size() == small.size());
  CHECK(extended_fast.pixels == extended_dcmtk.pixels);
  std::remove(extended.c_str());
}

TEST_CASE("corrupt JPEG streams give one-line errors naming the file, never a crash") {
  const std::string source = dicom_path("u8_jpeg_baseline_q75.dcm");
  struct Case {
    const char* name;
    std::function<std::vector<uint8_t>(std::vector<uint8_t>)> change;
    std::function<void(DcmDataset*)> dataset_change;
    const char* reason;
  };
  const Case cases[] = {
      {"truncated.dcm",
       [](std::vector<uint8_t> bytes) {
         bytes.resize(bytes.size() / 2);
         return bytes;
       },
       {},
       "Premature end of JPEG file"},
      {"garbage_all.dcm",
       [](std::vector<uint8_t> bytes) {
         Random random{7};
         for (uint8_t& byte : bytes) byte = random.next();
         return bytes;
       },
       {},
       "Not a JPEG file"},
      {"garbage_entropy.dcm",
       [](std::vector<uint8_t> bytes) {
         Random random{99};
         for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = random.next();
         return bytes;
       },
       {},
       "Corrupt JPEG data"},
      {"only_header.dcm",
       [](std::vector<uint8_t> bytes) {
         bytes.resize(8);
         return bytes;
       },
       {},
       "cannot decode the JPEG pixel data"},
      {"wrong_rows.dcm", [](std::vector<uint8_t> bytes) { return bytes; },
       [](DcmDataset* dataset) { REQUIRE(dataset->putAndInsertUint16(DCM_Rows, 32).good()); },
       "the JPEG stream is 64x48 with 1 component(s), but the tags say 64x32"},
  };
  for (const Case& test : cases) {
    const std::string path = temporary_path(test.name);
    write_damaged_copy(source, path, test.change, test.dataset_change);
    std::string message = error_of(path);
    INFO(test.name << ": " << message);
    CHECK(message.rfind(path + ": cannot decode the JPEG pixel data: ", 0) == 0);
    CHECK(message.find(test.reason) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
    std::remove(path.c_str());
  }
  // A file still decodes normally after the failures (no state left behind).
  CHECK(pneumo::read_dicom(source).pixels.size() == 64 * 48);
}

TEST_CASE("the libjpeg-turbo path is thread-safe: 8 threads, good and corrupt files, both decoders") {
  const std::string big = temporary_path("threads_big.dcm");
  write_jpeg_dicom(big, xray_like(256, 320), 256, 320, EXS_JPEGProcess1, 85);
  const std::string truncated = temporary_path("threads_truncated.dcm");
  write_damaged_copy(dicom_path("u8_jpeg_baseline.dcm"), truncated, [](std::vector<uint8_t> bytes) {
    bytes.resize(bytes.size() * 2 / 3);
    return bytes;
  });
  const std::vector<std::string> files = {dicom_path("u8_jpeg_baseline.dcm"), dicom_path("u8_jpeg_baseline_q75.dcm"),
                                          big, truncated};
  struct Result {
    std::vector<float> pixels;
    std::string error;
    bool operator==(const Result& other) const { return pixels == other.pixels && error == other.error; }
  };
  auto decode = [](const std::string& path, pneumo::JpegDecoder decoder) {
    Result result;
    try {
      result.pixels = pneumo::read_dicom(path, decoder).pixels;
    } catch (const pneumo::Error& error) {
      result.error = error.what();
    }
    return result;
  };
  std::vector<Result> sequential;
  for (const std::string& file : files) sequential.push_back(decode(file, pneumo::JpegDecoder::libjpeg_turbo));
  CHECK(sequential[2].pixels.size() == 256 * 320);
  CHECK(sequential[3].error.find("cannot decode the JPEG pixel data") != std::string::npos);
  std::vector<int> differences(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round)
        for (size_t f = 0; f < files.size(); ++f) {
          const size_t index = (f + t) % files.size();
          differences[t] += !(decode(files[index], pneumo::JpegDecoder::libjpeg_turbo) == sequential[index]);
          if (index < 3)  // DCMTK's decoder at the same time: the same pixels
            differences[t] += decode(files[index], pneumo::JpegDecoder::dcmtk).pixels != sequential[index].pixels;
        }
    });
  for (auto& thread : threads) thread.join();
  for (int count : differences) CHECK(count == 0);
  std::remove(big.c_str());
  std::remove(truncated.c_str());
}

TEST_CASE("issue 10: tags claiming 65535 x 65535 are refused before any allocation, for every codec") {
  for (const char* name : {"huge_jpeg_baseline.dcm", "huge_jpegls.dcm", "huge_rle.dcm", "huge_uncompressed.dcm"}) {
    const std::string path = pneumo::testing::fixture_path(std::string("untrusted/") + name);
    const auto start = std::chrono::steady_clock::now();
    const std::string message = error_of(path);
    INFO(name << ": " << message);
    CHECK(message.find("65535x65535 = 4294836225 pixels is above the limit of 67108864") != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  }
  // Under a lowered limit an ordinary 64x48 file is refused the same way, then read again.
  pneumo::set_max_image_pixels(1000);
  CHECK(
      error_of(dicom_path("u8_jpeg_baseline.dcm")).find("above the limit of 1000 (raise it with --max-image-pixels)") !=
      std::string::npos);
  pneumo::set_max_image_pixels(pneumo::kDefaultMaxImagePixels);
  CHECK(pneumo::read_dicom(dicom_path("u8_jpeg_baseline.dcm")).pixels.size() == 64 * 48);
  CHECK_THROWS_AS(pneumo::set_max_image_pixels(0), pneumo::Error);
}

TEST_CASE("signed 12-bit pixels map through the stored range: (v + 2048) / 4095") {
  const Stored expected = read_expected("expected_u12.arr");  // the file holds u12 - 2048
  const pneumo::Image image = pneumo::read_dicom(dicom_path("error_signed.dcm"));
  REQUIRE(image.pixels.size() == expected.values.size());
  double worst = 0;
  for (size_t i = 0; i < expected.values.size(); ++i)
    worst = std::max(worst, std::fabs(image.pixels[i] - expected.values[i] / 4095.0));
  CHECK(worst < 1e-7);
}

TEST_CASE("issue 10 fuzz finding: a deflated dataset claiming a 2 GB element is refused before DCMTK allocates") {
  // 961 bytes found by fuzz_dicom: an element of length 2088070759 inside the zlib stream, where
  // DCMTK cannot defer the value, so it allocated 2 GB before noticing the end of the data.
  const std::string path = pneumo::testing::fixture_path("untrusted/deflated_huge_element.dcm");
  const std::string message = error_of(path);
  CHECK(message.find("claims 2088070759 bytes") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
  // The honest deflated fixture still decodes exactly.
  CHECK(pneumo::read_dicom(dicom_path("u8_deflated.dcm")).pixels[1] == 7.0f / 255.0f);
}

TEST_CASE("fuzz finding: a damaged meta header whose element claims 3.5 GB is refused before DCMTK allocates") {
  // 917 bytes found by fuzz_dicom in CI: after an invalid meta element DCMTK went on reading and
  // allocated an element's claimed 1.2 GB at once; every defined length is now checked first.
  const std::string message = error_of(pneumo::testing::fixture_path("untrusted/meta_huge_element.dcm"));
  CHECK(message.find("claims 3526612016 bytes, 551 follow") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
}
