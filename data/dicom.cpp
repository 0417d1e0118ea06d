// DICOM -> float image through DCMTK: load with dcmdata (which handles the uncompressed, big
// endian and deflated syntaxes), decompress encapsulated pixel data in place with the registered
// JPEG / JPEG-LS / RLE decoders, then scale the stored values to [0, 1].
#include "data/dicom.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

#include <sys/stat.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include "engine/check.h"

namespace pneumo {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  throw Error(path + ": " + reason);
}

// True when the file has the DICOM Part 10 signature "DICM" after the 128-byte preamble.
bool has_dicm_signature(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  char bytes[132];
  if (!file.read(bytes, sizeof(bytes))) return false;
  return std::memcmp(bytes + 128, "DICM", 4) == 0;
}

Uint16 required_uint16(DcmDataset* dataset, const DcmTagKey& tag, const char* name,
                       const std::string& path) {
  Uint16 value = 0;
  if (dataset->findAndGetUint16(tag, value).bad())
    fail(path, std::string("missing or unreadable ") + name);
  return value;
}

std::string transfer_syntax_text(E_TransferSyntax syntax) {
  DcmXfer xfer(syntax);
  return std::string(xfer.getXferName()) + " (" + xfer.getXferID() + ")";
}

// Stored value -> [0, 1]: raw / (2^bits_stored - 1), inverted for MONOCHROME1; only the
// bits_stored bits ending at high_bit count.
template <typename Stored>
void scale_pixels(const Stored* stored, int64_t count, int bits_stored, int high_bit,
                  bool monochrome1, float* out) {
  const int shift = high_bit + 1 - bits_stored;
  const uint32_t mask = (1u << bits_stored) - 1u;  // bits_stored <= 16
  const float maximum = static_cast<float>(mask);
  // A table of every possible stored value: one exact division each, then a lookup per pixel.
  const uint32_t table_size = sizeof(Stored) == 1 ? 256u : 65536u;
  std::vector<float> table(table_size);
  for (uint32_t raw = 0; raw < table_size; ++raw) {
    uint32_t value = (raw >> shift) & mask;
    if (monochrome1) value = mask - value;
    table[raw] = static_cast<float>(value) / maximum;
  }
  for (int64_t i = 0; i < count; ++i) out[i] = table[stored[i]];
}

}  // namespace

void register_dicom_decoders() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK reports problems through its own logger; read_dicom turns them into pneumo::Error,
    // so only fatal messages are let through to stderr.
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

Image read_dicom(const std::string& path) {
  register_dicom_decoders();
  struct stat file_status;
  if (::stat(path.c_str(), &file_status) != 0)
    fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  if (S_ISDIR(file_status.st_mode)) fail(path, "is a directory, not a DICOM file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  }
  if (!dcmDataDict.isDictionaryLoaded())
    fail(path, "DCMTK's data dictionary is not loaded (set DCMDICTPATH)");

  DcmFileFormat file;
  OFCondition status = file.loadFile(path.c_str());
  const bool signature = has_dicm_signature(path);
  if (status.bad()) {
    if (!signature) fail(path, std::string("not a DICOM file (") + status.text() + ")");
    fail(path, std::string("truncated or corrupt DICOM file (") + status.text() + ")");
  }
  DcmDataset* dataset = file.getDataset();
  if (!dataset->tagExists(DCM_PixelData) || !dataset->tagExists(DCM_Rows) ||
      !dataset->tagExists(DCM_Columns)) {
    if (!signature) fail(path, "not a DICOM file (no DICM signature and no image attributes)");
    fail(path, "no image in this DICOM file (Rows, Columns or PixelData missing)");
  }

  const int rows = required_uint16(dataset, DCM_Rows, "Rows", path);
  const int columns = required_uint16(dataset, DCM_Columns, "Columns", path);
  Uint16 samples = 1;
  dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
  OFString photometric;
  dataset->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  if (samples != 1 || (photometric != "MONOCHROME1" && photometric != "MONOCHROME2"))
    fail(path, "colour images are not supported (SamplesPerPixel=" + std::to_string(samples) +
                   ", PhotometricInterpretation=" + std::string(photometric.c_str()) +
                   "); expected one sample, MONOCHROME1 or MONOCHROME2");
  Sint32 frames = 1;
  if (dataset->tagExists(DCM_NumberOfFrames) &&
      dataset->findAndGetSint32(DCM_NumberOfFrames, frames).bad())
    fail(path, "unreadable NumberOfFrames");
  if (frames != 1)
    fail(path, "multi-frame images are not supported (NumberOfFrames=" + std::to_string(frames) + ")");
  const int bits_allocated = required_uint16(dataset, DCM_BitsAllocated, "BitsAllocated", path);
  const int bits_stored = required_uint16(dataset, DCM_BitsStored, "BitsStored", path);
  Uint16 high_bit_value = static_cast<Uint16>(bits_stored - 1);
  dataset->findAndGetUint16(DCM_HighBit, high_bit_value);
  const int high_bit = high_bit_value;
  Uint16 pixel_representation = 0;
  dataset->findAndGetUint16(DCM_PixelRepresentation, pixel_representation);
  if (bits_allocated != 8 && bits_allocated != 16)
    fail(path, "BitsAllocated=" + std::to_string(bits_allocated) + " is not supported (expected 8 or 16)");
  if (bits_stored < 1 || bits_stored > bits_allocated || high_bit < bits_stored - 1 ||
      high_bit >= bits_allocated)
    fail(path, "inconsistent BitsStored=" + std::to_string(bits_stored) + " / HighBit=" +
                   std::to_string(high_bit) + " for BitsAllocated=" + std::to_string(bits_allocated));
  if (pixel_representation != 0)
    fail(path, "signed pixel data (PixelRepresentation=1) is not supported");
  if (rows == 0 || columns == 0) fail(path, "empty image (Rows or Columns is 0)");

  const E_TransferSyntax original = dataset->getOriginalXfer();
  if (DcmXfer(original).isEncapsulated()) {
    status = dataset->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (status.bad() || !dataset->canWriteXfer(EXS_LittleEndianExplicit))
      fail(path, "cannot decode transfer syntax " + transfer_syntax_text(original) +
                     ": no decoder for it in this build (" + status.text() + ")");
  }

  DcmElement* element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr)
    fail(path, "no pixel data");
  const int64_t count = static_cast<int64_t>(rows) * columns;
  const int64_t needed = count * (bits_allocated / 8);
  if (static_cast<int64_t>(element->getLength()) < needed)
    fail(path, "pixel data is truncated (" + std::to_string(element->getLength()) +
                   " bytes, expected " + std::to_string(needed) + ")");

  Image image;
  image.width = columns;
  image.height = rows;
  image.pixels.resize(count);  // (H,W)
  const bool monochrome1 = photometric == "MONOCHROME1";
  if (bits_allocated == 8) {
    Uint8* data = nullptr;
    if (element->getUint8Array(data).bad() || data == nullptr) fail(path, "unreadable pixel data");
    scale_pixels(data, count, bits_stored, high_bit, monochrome1, image.pixels.data());
  } else {
    Uint16* data = nullptr;
    if (element->getUint16Array(data).bad() || data == nullptr) fail(path, "unreadable pixel data");
    scale_pixels(data, count, bits_stored, high_bit, monochrome1, image.pixels.data());
  }
  return image;
}

}  // namespace pneumo
