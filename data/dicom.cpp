// DICOM -> float image: load with DCMTK's dcmdata (which handles the uncompressed, big endian and
// deflated syntaxes); 8-bit JPEG baseline / extended pixel data (the RSNA files) goes, still
// compressed, straight from DCMTK's pixel sequence to libjpeg-turbo; other encapsulated pixel data
// is decompressed in place with DCMTK's registered JPEG / JPEG-LS / RLE decoders. The stored
// values are then scaled to [0, 1].
#include "data/dicom.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <type_traits>
#include <utility>

#include <sys/stat.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <jpeglib.h>

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
// bits_stored bits ending at high_bit count. One exact float division per pixel (vectorised);
// the inversion max - v is written max ^ v, the same for v <= max = 2^bits - 1.
template <typename Stored>
void scale_pixels(const Stored* stored, int64_t count, int bits_stored, int high_bit,
                  bool monochrome1, float* out) {
  const int shift = high_bit + 1 - bits_stored;
  const int32_t mask = static_cast<int32_t>((1u << bits_stored) - 1u);  // bits_stored <= 16
  const int32_t flip = monochrome1 ? mask : 0;
  const float maximum = static_cast<float>(mask);
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<float>(((static_cast<int32_t>(stored[i]) >> shift) & mask) ^ flip) / maximum;
}

// ---- the libjpeg-turbo fast path ----------------------------------------------------------------

// One libjpeg decompression with its error manager. libjpeg reports errors through error_exit,
// which must not return: it formats the message and longjmps back to decode_jpeg_grey.
// Standard layout with `decompress` first, so libjpeg's j_common_ptr leads back to it.
struct JpegDecoding {
  jpeg_decompress_struct decompress;  // first member
  jpeg_error_mgr errors;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 160];
};
static_assert(std::is_standard_layout<JpegDecoding>::value, "j_common_ptr -> JpegDecoding cast");

void jpeg_error_exit(j_common_ptr common) {
  JpegDecoding* decoding = reinterpret_cast<JpegDecoding*>(common);
  (*common->err->format_message)(common, decoding->message);
  std::longjmp(decoding->jump, 1);
}

// msg_level -1 is libjpeg's "Corrupt JPEG data: ..." warning (truncated stream, bad Huffman code,
// extraneous bytes), after which it would carry on with made-up pixels: an error here. Trace
// messages (msg_level >= 0) are dropped.
void jpeg_emit_message(j_common_ptr common, int msg_level) {
  if (msg_level < 0) jpeg_error_exit(common);
}

void jpeg_output_message(j_common_ptr) {}

// How many decoded rows pass through the small 8-bit buffer at a time (one or two iMCU rows).
constexpr int kJpegRowsPerCall = 16;

// Decodes one 8-bit single-component JPEG stream with the accurate integer IDCT (JDCT_ISLOW, as
// DCMTK's IJG decoder and pydicom's Pillow use) and scales it into `out`, (H,W) = (rows, columns)
// floats, kJpegRowsPerCall rows at a time through `row_buffer` (kJpegRowsPerCall x columns bytes).
// Returns false with decoding->message set when libjpeg fails or reports corrupt data, or when
// the stream's size or component count differs from the tags. Only trivially destructible
// objects live here, so the longjmp out of libjpeg is well defined in C++.
bool decode_jpeg_grey(const unsigned char* data, unsigned long size, int rows, int columns,
                      int bits_stored, int high_bit, bool monochrome1, unsigned char* row_buffer,
                      float* out, JpegDecoding* decoding) {
  jpeg_decompress_struct* decompress = &decoding->decompress;
  std::memset(decompress, 0, sizeof(*decompress));  // jpeg_destroy_decompress is a no-op on it
  decompress->err = jpeg_std_error(&decoding->errors);
  decoding->errors.error_exit = jpeg_error_exit;
  decoding->errors.emit_message = jpeg_emit_message;
  decoding->errors.output_message = jpeg_output_message;
  decoding->message[0] = '\0';
  if (setjmp(decoding->jump)) {
    jpeg_destroy_decompress(decompress);
    return false;
  }
  jpeg_create_decompress(decompress);
  jpeg_mem_src(decompress, data, size);
  jpeg_read_header(decompress, TRUE);
  if (decompress->image_width != static_cast<JDIMENSION>(columns) ||
      decompress->image_height != static_cast<JDIMENSION>(rows) || decompress->num_components != 1) {
    std::snprintf(decoding->message, sizeof(decoding->message),
                  "the JPEG stream is %ux%u with %d component(s), but the tags say %dx%d "
                  "(Columns x Rows) with 1 sample",
                  decompress->image_width, decompress->image_height, decompress->num_components,
                  columns, rows);
    jpeg_destroy_decompress(decompress);
    return false;
  }
  decompress->out_color_space = JCS_GRAYSCALE;
  decompress->dct_method = JDCT_ISLOW;
  jpeg_start_decompress(decompress);
  JSAMPROW row_pointers[kJpegRowsPerCall];
  for (int i = 0; i < kJpegRowsPerCall; ++i) row_pointers[i] = row_buffer + static_cast<size_t>(i) * columns;
  while (decompress->output_scanline < decompress->output_height) {
    const int first = static_cast<int>(decompress->output_scanline);
    const int count = static_cast<int>(jpeg_read_scanlines(
        decompress, row_pointers, static_cast<JDIMENSION>(std::min(kJpegRowsPerCall, rows - first))));
    scale_pixels(row_buffer, static_cast<int64_t>(count) * columns, bits_stored, high_bit,
                 monochrome1, out + static_cast<int64_t>(first) * columns);
  }
  jpeg_finish_decompress(decompress);  // reads up to EOI: a stream cut short is reported here too
  jpeg_destroy_decompress(decompress);
  return true;
}

// The single frame's compressed bytes: the fragments of the encapsulated pixel data after the
// basic offset table item. One fragment (the usual case) is used in place; several are joined
// into `joined`. Returns {data, size}.
std::pair<const unsigned char*, size_t> jpeg_frame_bytes(DcmDataset* dataset, const std::string& path,
                                                         std::vector<unsigned char>& joined) {
  DcmElement* element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr)
    fail(path, "no pixel data");
  DcmPixelData* pixel_data = dynamic_cast<DcmPixelData*>(element);
  if (pixel_data == nullptr) fail(path, "pixel data is not a DcmPixelData element");
  E_TransferSyntax representation = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  pixel_data->getOriginalRepresentationKey(representation, parameter);
  DcmPixelSequence* sequence = nullptr;
  if (pixel_data->getEncapsulatedRepresentation(representation, parameter, sequence).bad() ||
      sequence == nullptr)
    fail(path, "the transfer syntax is encapsulated (JPEG) but the pixel data is not");
  const unsigned long items = sequence->card();
  if (items < 2) fail(path, "encapsulated pixel data has no fragments after the offset table");
  std::vector<std::pair<const unsigned char*, size_t>> fragments;
  size_t total = 0;
  for (unsigned long i = 1; i < items; ++i) {
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (sequence->getItem(item, i).bad() || item == nullptr)
      fail(path, "unreadable pixel data fragment " + std::to_string(i));
    const size_t length = item->getLength();
    if (length == 0) continue;
    if (item->getUint8Array(bytes).bad() || bytes == nullptr)
      fail(path, "unreadable pixel data fragment " + std::to_string(i));
    fragments.emplace_back(bytes, length);
    total += length;
  }
  if (total == 0) fail(path, "the JPEG pixel data fragments are empty");
  if (fragments.size() == 1) return fragments[0];
  joined.reserve(total);
  for (const auto& fragment : fragments)
    joined.insert(joined.end(), fragment.first, fragment.first + fragment.second);
  return {joined.data(), joined.size()};
}

std::atomic<int64_t> max_pixels{kDefaultMaxImagePixels};

}  // namespace

void set_max_image_pixels(int64_t pixels) {
  if (pixels < 1 || pixels > (int64_t{1} << 31))
    throw Error("--max-image-pixels: expected 1.." + std::to_string(int64_t{1} << 31) + ", got " +
                std::to_string(pixels));
  max_pixels.store(pixels);
}

int64_t max_image_pixels() { return max_pixels.load(); }

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

Image read_dicom(const std::string& path, JpegDecoder jpeg_decoder) {
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

  const int64_t count = static_cast<int64_t>(rows) * columns;
  const bool monochrome1 = photometric == "MONOCHROME1";
  Image image;
  image.width = columns;
  image.height = rows;
  const E_TransferSyntax original = dataset->getOriginalXfer();
  if (jpeg_decoder == JpegDecoder::libjpeg_turbo && bits_allocated == 8 &&
      (original == EXS_JPEGProcess1 || original == EXS_JPEGProcess2_4)) {
    std::vector<unsigned char> joined;
    const auto frame = jpeg_frame_bytes(dataset, path, joined);
    std::vector<unsigned char> row_buffer(static_cast<size_t>(kJpegRowsPerCall) * columns);
    image.pixels.resize(count);  // (H,W)
    JpegDecoding decoding;
    if (!decode_jpeg_grey(frame.first, frame.second, rows, columns, bits_stored, high_bit,
                          monochrome1, row_buffer.data(), image.pixels.data(), &decoding))
      fail(path, std::string("cannot decode the JPEG pixel data: ") + decoding.message);
    return image;
  }

  if (DcmXfer(original).isEncapsulated()) {
    status = dataset->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (status.bad() || !dataset->canWriteXfer(EXS_LittleEndianExplicit))
      fail(path, "cannot decode transfer syntax " + transfer_syntax_text(original) +
                     ": no decoder for it in this build (" + status.text() + ")");
  }

  DcmElement* element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr)
    fail(path, "no pixel data");
  const int64_t needed = count * (bits_allocated / 8);
  if (static_cast<int64_t>(element->getLength()) < needed)
    fail(path, "pixel data is truncated (" + std::to_string(element->getLength()) +
                   " bytes, expected " + std::to_string(needed) + ")");

  image.pixels.resize(count);  // (H,W)
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
