// DICOM -> float image: load with DCMTK's dcmdata (which handles the uncompressed, big endian and
// deflated syntaxes); 8-bit JPEG baseline / extended pixel data (the RSNA files) goes, still
// compressed, straight from DCMTK's pixel sequence to libjpeg-turbo; other encapsulated pixel data
// is decompressed in place with DCMTK's registered JPEG / JPEG-LS / RLE decoders. The stored
// values are then scaled to [0, 1].
#include "data/input/dicom.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
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
#include <openjpeg.h>
#include <zlib.h>

#include "engine/check.h"

namespace pneumo {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& reason) { throw Error(path + ": " + reason); }

// Walks explicit VR little endian elements in bytes[begin, end) and fails when a defined length
// claims more than the bytes that follow. Items and sequences are walked into; the fragments of
// encapsulated pixel data (items after an undefined-length OB/OW/UN) are skipped whole.
void check_explicit_lengths(const std::string& path, const std::vector<unsigned char>& bytes, size_t begin, size_t end,
                            const char* what) {
  bool in_fragments = false;
  size_t position = begin;
  while (position + 8 <= end) {
    const uint16_t group = bytes[position] | (bytes[position + 1] << 8);
    const uint16_t element = bytes[position + 2] | (bytes[position + 3] << 8);
    uint32_t length = 0;
    size_t value = 0;
    if (group == 0xfffe) {  // item / delimiters: no VR, 4-byte length
      std::memcpy(&length, bytes.data() + position + 4, 4);
      if (element == 0xe0dd) in_fragments = false;
      if (in_fragments && element == 0xe000 && length != 0xffffffffu) {
        if (length > end - (position + 8))
          fail(path, "truncated or corrupt DICOM file (a pixel data fragment claims " + std::to_string(length) +
                         " bytes, " + std::to_string(end - (position + 8)) + " follow)");
        position += 8 + length;
      } else {
        position += 8;  // walk into items
      }
      continue;
    }
    const char* vr = reinterpret_cast<const char*>(bytes.data() + position + 4);
    // VRs with a 2-byte length; every other one (OB, OW, SQ, UN, ... and, like DCMTK, an unknown VR)
    // has 2 reserved bytes and a 4-byte length.
    static const char* const short_vrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                            "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"};
    bool long_form = true;
    for (const char* candidate : short_vrs) long_form = long_form && std::memcmp(vr, candidate, 2) != 0;
    if (long_form) {
      if (position + 12 > end) break;
      std::memcpy(&length, bytes.data() + position + 8, 4);
      value = position + 12;
    } else {
      length = bytes[position + 6] | (bytes[position + 7] << 8);
      value = position + 8;
    }
    if (length == 0xffffffffu && std::memcmp(vr, "SQ", 2) != 0) in_fragments = true;
    if (std::memcmp(vr, "SQ", 2) == 0 || length == 0xffffffffu) {  // walk into sequences / undefined lengths
      position = value;
      continue;
    }
    if (length > end - value)
      fail(path, std::string("truncated or corrupt DICOM file (an element of the ") + what + " claims " +
                     std::to_string(length) + " bytes, " + std::to_string(end - value) + " follow)");
    position = value + length;
  }
}

// True when the file has the DICOM Part 10 signature "DICM" after the 128-byte preamble.
// Deflated explicit VR little endian (.1.2.1.99): DCMTK reads the dataset from a zlib stream, where
// it cannot defer large values or know the bytes left, so it allocates whatever length an element
// claims (a 961-byte file asked for 2 GB: tests/fixtures/untrusted/deflated_huge_element.dcm). So
// the dataset is inflated here first (at most `limit` bytes) and every element's defined length is
// checked against the bytes that follow it; items and sequences are walked into, not skipped.
void check_deflated_lengths(const std::string& path, int64_t limit) {
  std::ifstream file(path, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.size() < 132 || std::memcmp(bytes.data() + 128, "DICM", 4) != 0) return;
  size_t at = 132;
  std::string syntax;
  while (at + 8 <= bytes.size() && bytes[at] == 0x02 && bytes[at + 1] == 0x00) {  // group 0002
    const bool long_form =
        std::memcmp(bytes.data() + at + 4, "OB", 2) == 0 || std::memcmp(bytes.data() + at + 4, "UN", 2) == 0;
    uint32_t length = 0;
    size_t value = 0;
    if (long_form) {
      if (at + 12 > bytes.size()) return;
      std::memcpy(&length, bytes.data() + at + 8, 4);
      value = at + 12;
    } else {
      length = bytes[at + 6] | (bytes[at + 7] << 8);
      value = at + 8;
    }
    if (length > bytes.size() - value) return;  // DCMTK reports the bad meta header itself
    if (bytes[at + 2] == 0x10 && bytes[at + 3] == 0x00)
      syntax.assign(reinterpret_cast<const char*>(bytes.data() + value), length);
    at = value + length;
  }
  while (!syntax.empty() && (syntax.back() == '\0' || syntax.back() == ' ')) syntax.pop_back();
  if (syntax != "1.2.840.10008.1.2.1.99") {
    // Not deflated: DCMTK reads the file directly, but a value it loads at once (in a damaged meta
    // header, say) is still allocated at the length it claims. Walk the file as explicit VR
    // little endian (the meta header always is; so is every syntax but implicit VR and big
    // endian, whose datasets are left to DCMTK) and check each length against the bytes left.
    const bool explicit_little = syntax != "1.2.840.10008.1.2" && syntax != "1.2.840.10008.1.2.2";
    check_explicit_lengths(path, bytes, 132, explicit_little ? bytes.size() : at, "file");
    return;
  }
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail(path, "cannot start zlib");
  std::vector<unsigned char> dataset;
  stream.next_in = bytes.data() + at;
  stream.avail_in = static_cast<uInt>(bytes.size() - at);
  int result = Z_OK;
  while (result == Z_OK) {
    if (static_cast<int64_t>(dataset.size()) >= limit) {
      inflateEnd(&stream);
      fail(path, "deflated dataset is larger than " + std::to_string(limit) + " bytes (raise --max-image-pixels)");
    }
    const size_t before = dataset.size();
    dataset.resize(before + 65536);
    stream.next_out = dataset.data() + before;
    stream.avail_out = 65536;
    result = inflate(&stream, Z_NO_FLUSH);
    dataset.resize(before + 65536 - stream.avail_out);
    if (result == Z_BUF_ERROR && stream.avail_in == 0) break;  // truncated: DCMTK reports it
  }
  inflateEnd(&stream);
  check_explicit_lengths(path, dataset, 0, dataset.size(), "deflated dataset");
}

bool has_dicm_signature(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  char bytes[132];
  if (!file.read(bytes, sizeof(bytes))) return false;
  return std::memcmp(bytes + 128, "DICM", 4) == 0;
}

Uint16 required_uint16(DcmDataset* dataset, const DcmTagKey& tag, const char* name, const std::string& path) {
  Uint16 value = 0;
  if (dataset->findAndGetUint16(tag, value).bad()) fail(path, std::string("missing or unreadable ") + name);
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
void scale_pixels(const Stored* stored, int64_t count, int bits_stored, int high_bit, bool monochrome1, float* out) {
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
bool decode_jpeg_grey(const unsigned char* data, unsigned long size, int rows, int columns, int bits_stored,
                      int high_bit, bool monochrome1, unsigned char* row_buffer, float* out, JpegDecoding* decoding) {
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
                  decompress->image_width, decompress->image_height, decompress->num_components, columns, rows);
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
    scale_pixels(row_buffer, static_cast<int64_t>(count) * columns, bits_stored, high_bit, monochrome1,
                 out + static_cast<int64_t>(first) * columns);
  }
  jpeg_finish_decompress(decompress);  // reads up to EOI: a stream cut short is reported here too
  jpeg_destroy_decompress(decompress);
  return true;
}

// The single frame's compressed bytes: the fragments of the encapsulated pixel data after the
// basic offset table item. One fragment (the usual case) is used in place; several are joined
// into `joined`. Returns {data, size}.
std::pair<const unsigned char*, size_t> encapsulated_frame_bytes(DcmDataset* dataset, const std::string& path,
                                                                 std::vector<unsigned char>& joined) {
  DcmElement* element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) fail(path, "no pixel data");
  DcmPixelData* pixel_data = dynamic_cast<DcmPixelData*>(element);
  if (pixel_data == nullptr) fail(path, "pixel data is not a DcmPixelData element");
  E_TransferSyntax representation = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  pixel_data->getOriginalRepresentationKey(representation, parameter);
  DcmPixelSequence* sequence = nullptr;
  if (pixel_data->getEncapsulatedRepresentation(representation, parameter, sequence).bad() || sequence == nullptr)
    fail(path, "the transfer syntax is encapsulated (compressed) but the pixel data is not");
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
  if (total == 0) fail(path, "the compressed pixel data fragments are empty");
  if (fragments.size() == 1) return fragments[0];
  joined.reserve(total);
  for (const auto& fragment : fragments) joined.insert(joined.end(), fragment.first, fragment.first + fragment.second);
  return {joined.data(), joined.size()};
}

std::atomic<int64_t> max_pixels{kDefaultMaxImagePixels};

// ---- codec headers, read before anything is allocated ---------------------------------------

uint16_t big_endian16(const unsigned char* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// The frame header (SOFn, or JPEG-LS SOF55) of a JPEG / JPEG-LS stream: {width, height, components}.
// Fails with a one-line reason when the stream does not start with SOI or ends before a frame header.
struct CodecFrame {
  int64_t width = 0, height = 0, components = 0;
};
CodecFrame jpeg_frame_header(const unsigned char* data, size_t size, const std::string& path) {
  if (size < 4 || data[0] != 0xFF || data[1] != 0xD8)
    fail(path, "cannot decode the JPEG pixel data: Not a JPEG file (no SOI marker)");
  size_t position = 2;
  while (position + 4 <= size) {
    if (data[position] != 0xFF)
      fail(path, "cannot decode the JPEG pixel data: corrupt stream, no marker at byte " + std::to_string(position));
    const unsigned char marker = data[position + 1];
    if (marker == 0xFF) {
      ++position;
      continue;
    }  // fill byte
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      position += 2;
      continue;
    }
    const size_t length = big_endian16(data + position + 2);
    if (length < 2 || length > size - position - 2)
      fail(path, "cannot decode the JPEG pixel data: corrupt stream, a marker segment runs past the end");
    const bool frame =
        (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) || marker == 0xF7;
    if (frame) {
      if (length < 8) fail(path, "cannot decode the JPEG pixel data: frame header too short");
      const unsigned char* p = data + position + 4;
      return {big_endian16(p + 3), big_endian16(p + 1), p[5]};
    }
    if (marker == 0xDA || marker == 0xD9) break;
    position += 2 + length;
  }
  fail(path, "cannot decode the JPEG pixel data: no frame header (SOF) before the scan");
}

void check_frame_against_tags(const CodecFrame& frame, int rows, int columns, const char* codec,
                              const std::string& path) {
  if (frame.width != columns || frame.height != rows || frame.components != 1)
    fail(path, std::string("cannot decode the ") + codec + " pixel data: the " + codec + " stream is " +
                   std::to_string(frame.width) + "x" + std::to_string(frame.height) + " with " +
                   std::to_string(frame.components) + " component(s), but the tags say " + std::to_string(columns) +
                   "x" + std::to_string(rows) + " (Columns x Rows) with 1 sample");
}

// RLE (PS3.5 G): a 64-byte header of segment offsets; a byte segment expands at most 64-fold
// (2 bytes -> a run of 128), so the decoded size is bounded by the compressed size.
void check_rle_header(const unsigned char* data, size_t size, int64_t decoded_bytes, int bytes_per_sample,
                      const std::string& path) {
  if (size < 64) fail(path, "corrupt RLE data: shorter than its 64-byte header");
  uint32_t segments = 0;
  std::memcpy(&segments, data, 4);
  if (static_cast<int>(segments) != bytes_per_sample)
    fail(path,
         "corrupt RLE data: " + std::to_string(segments) + " segments, expected " + std::to_string(bytes_per_sample));
  if (decoded_bytes > static_cast<int64_t>(size) * 64)
    fail(path, "corrupt RLE data: " + std::to_string(size) + " compressed bytes cannot hold " +
                   std::to_string(decoded_bytes) + " bytes of pixels");
}

// ---- JPEG 2000 through OpenJPEG ----------------------------------------------------------------

struct OpenJpegSource {
  const unsigned char* data;
  size_t size, position;
};
OPJ_SIZE_T openjpeg_read(void* buffer, OPJ_SIZE_T bytes, void* user) {
  OpenJpegSource* source = static_cast<OpenJpegSource*>(user);
  if (source->position >= source->size) return static_cast<OPJ_SIZE_T>(-1);
  const size_t count = std::min<size_t>(bytes, source->size - source->position);
  std::memcpy(buffer, source->data + source->position, count);
  source->position += count;
  return count;
}
OPJ_OFF_T openjpeg_skip(OPJ_OFF_T bytes, void* user) {
  OpenJpegSource* source = static_cast<OpenJpegSource*>(user);
  if (bytes < 0) return -1;
  const size_t count = std::min<size_t>(static_cast<size_t>(bytes), source->size - source->position);
  source->position += count;
  return static_cast<OPJ_OFF_T>(count);
}
OPJ_BOOL openjpeg_seek(OPJ_OFF_T offset, void* user) {
  OpenJpegSource* source = static_cast<OpenJpegSource*>(user);
  if (offset < 0 || static_cast<size_t>(offset) > source->size) return OPJ_FALSE;
  source->position = static_cast<size_t>(offset);
  return OPJ_TRUE;
}
void openjpeg_error(const char* message, void* user) {
  std::string* text = static_cast<std::string*>(user);
  if (text->empty()) {
    *text = message;
    while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  }
}
void openjpeg_quiet(const char*, void*) {}

// Decodes one JPEG 2000 frame (a raw J2K codestream, or a JP2 file) into stored values (H,W):
// the SIZ header is read and checked against the tags and the size limit before decoding.
std::vector<int32_t> decode_jpeg2000(const unsigned char* data, size_t size, int rows, int columns, int bits_stored,
                                     bool is_signed, const std::string& path) {
  const bool jp2 = size >= 12 && std::memcmp(data + 4, "jP  ", 4) == 0;
  std::string message;
  struct Owner {  // OpenJPEG objects, released on every exit
    opj_codec_t* codec = nullptr;
    opj_stream_t* stream = nullptr;
    opj_image_t* image = nullptr;
    ~Owner() {
      if (image) opj_image_destroy(image);
      if (stream) opj_stream_destroy(stream);
      if (codec) opj_destroy_codec(codec);
    }
  } owner;
  OpenJpegSource source{data, size, 0};
  owner.codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  owner.stream = opj_stream_create(1 << 16, OPJ_TRUE);
  if (!owner.codec || !owner.stream) fail(path, "cannot create a JPEG 2000 decoder");
  opj_stream_set_user_data(owner.stream, &source, nullptr);
  opj_stream_set_user_data_length(owner.stream, size);
  opj_stream_set_read_function(owner.stream, openjpeg_read);
  opj_stream_set_skip_function(owner.stream, openjpeg_skip);
  opj_stream_set_seek_function(owner.stream, openjpeg_seek);
  opj_set_error_handler(owner.codec, openjpeg_error, &message);
  opj_set_warning_handler(owner.codec, openjpeg_quiet, nullptr);
  opj_set_info_handler(owner.codec, openjpeg_quiet, nullptr);
  opj_dparameters_t parameters;
  opj_set_default_decoder_parameters(&parameters);
  if (!opj_setup_decoder(owner.codec, &parameters) || !opj_read_header(owner.stream, owner.codec, &owner.image) ||
      owner.image == nullptr)
    fail(path, "cannot decode the JPEG 2000 pixel data: " + (message.empty() ? "bad header" : message));
  const opj_image_t& image = *owner.image;
  const CodecFrame frame{static_cast<int64_t>(image.x1) - image.x0, static_cast<int64_t>(image.y1) - image.y0,
                         static_cast<int64_t>(image.numcomps)};
  check_frame_against_tags(frame, rows, columns, "JPEG 2000", path);
  if (image.comps[0].dx != 1 || image.comps[0].dy != 1 || image.comps[0].prec > 16 ||
      static_cast<int>(image.comps[0].prec) > bits_stored + 8)
    fail(path, "the JPEG 2000 stream's component (precision " + std::to_string(image.comps[0].prec) +
                   ") does not fit BitsStored=" + std::to_string(bits_stored));
  if (!opj_decode(owner.codec, owner.stream, owner.image) || !opj_end_decompress(owner.codec, owner.stream))
    fail(path, "cannot decode the JPEG 2000 pixel data: " + (message.empty() ? "corrupt stream" : message));
  const opj_image_comp_t& component = owner.image->comps[0];
  if (component.data == nullptr || component.w != static_cast<OPJ_UINT32>(columns) ||
      component.h != static_cast<OPJ_UINT32>(rows))
    fail(path, "cannot decode the JPEG 2000 pixel data: incomplete image");
  (void)is_signed;
  return std::vector<int32_t>(component.data, component.data + static_cast<int64_t>(rows) * columns);
}

// ---- stored values -> [0, 1] -----------------------------------------------------------------

// How stored values become the network's input (data/input/decoding.md): the modality rescale
// (slope, intercept), then the VOI window when the file has one, else the stored range; inverted
// for MONOCHROME1. Only used when the file is signed, rescaled or windowed: plain unsigned files
// (the RSNA set) keep scale_pixels' exact v / (2^bits - 1).
struct PixelMapping {
  bool is_signed = false;
  int bits_stored = 8;
  double slope = 1, intercept = 0;
  bool windowed = false;
  double center = 0, width = 0;
  enum class Function { Linear, LinearExact, Sigmoid } function = Function::Linear;
  bool monochrome1 = false;

  float operator()(int32_t stored) const {
    const double x = stored * slope + intercept;
    double y;
    if (!windowed) {
      const double lowest = is_signed ? -std::ldexp(1.0, bits_stored - 1) : 0.0;
      const double highest = lowest + std::ldexp(1.0, bits_stored) - 1;
      const double a = lowest * slope + intercept, b = highest * slope + intercept;
      y = (x - std::min(a, b)) / std::fabs(b - a);
    } else if (function == Function::Sigmoid) {
      y = 1.0 / (1.0 + std::exp(-4.0 * (x - center) / width));
    } else if (function == Function::LinearExact) {
      y = (x - (center - width / 2)) / width;
    } else {  // PS3.3 C.11.2.1.2.1
      y = (x - (center - 0.5)) / (width - 1) + 0.5;
    }
    y = std::min(1.0, std::max(0.0, y));
    return static_cast<float>(monochrome1 ? 1.0 - y : y);
  }
};

// Raw sample -> stored value: the bits_stored bits ending at high_bit, sign-extended when signed.
inline int32_t stored_value(uint32_t raw, int shift, int bits_stored, bool is_signed) {
  const uint32_t value = (raw >> shift) & ((1u << bits_stored) - 1u);
  if (!is_signed) return static_cast<int32_t>(value);
  const uint32_t sign = 1u << (bits_stored - 1);
  return static_cast<int32_t>(value ^ sign) - static_cast<int32_t>(sign);
}

template <typename Raw>
void map_pixels(const Raw* raw, int64_t count, int high_bit, const PixelMapping& mapping, float* out) {
  const int shift = high_bit + 1 - mapping.bits_stored;
  for (int64_t i = 0; i < count; ++i)
    out[i] = mapping(stored_value(static_cast<uint32_t>(raw[i]), shift, mapping.bits_stored, mapping.is_signed));
}

double optional_number(DcmDataset* dataset, const DcmTagKey& tag, double fallback, const char* name,
                       const std::string& path) {
  if (!dataset->tagExistsWithValue(tag)) return fallback;
  Float64 value = 0;
  if (dataset->findAndGetFloat64(tag, value, 0).bad() || !std::isfinite(value))
    fail(path, std::string("unreadable ") + name);
  return value;
}

PixelMapping pixel_mapping(DcmDataset* dataset, bool is_signed, int bits_stored, bool monochrome1,
                           const std::string& path) {
  PixelMapping mapping;
  mapping.is_signed = is_signed;
  mapping.bits_stored = bits_stored;
  mapping.monochrome1 = monochrome1;
  mapping.slope = optional_number(dataset, DCM_RescaleSlope, 1.0, "RescaleSlope", path);
  mapping.intercept = optional_number(dataset, DCM_RescaleIntercept, 0.0, "RescaleIntercept", path);
  if (mapping.slope == 0) fail(path, "RescaleSlope is 0");
  if (dataset->tagExistsWithValue(DCM_WindowCenter) && dataset->tagExistsWithValue(DCM_WindowWidth)) {
    mapping.windowed = true;
    mapping.center = optional_number(dataset, DCM_WindowCenter, 0, "WindowCenter", path);
    mapping.width = optional_number(dataset, DCM_WindowWidth, 0, "WindowWidth", path);
    OFString function;
    dataset->findAndGetOFString(DCM_VOILUTFunction, function);
    if (function == "SIGMOID")
      mapping.function = PixelMapping::Function::Sigmoid;
    else if (function == "LINEAR_EXACT")
      mapping.function = PixelMapping::Function::LinearExact;
    const double minimum_width = mapping.function == PixelMapping::Function::Linear ? 1.0 : 0.0;
    if (!(mapping.width > minimum_width) && !(minimum_width == 1.0 && mapping.width == 1.0))
      fail(path, "WindowWidth=" + std::to_string(mapping.width) + " is invalid (must be " +
                     (minimum_width == 1.0 ? ">= 1" : "> 0") + ")");
    if (mapping.function == PixelMapping::Function::Linear && mapping.width == 1.0)
      mapping.function = PixelMapping::Function::LinearExact;  // a step; avoids dividing by 0
  }
  return mapping;
}

bool is_plain_mapping(const PixelMapping& mapping) {
  return !mapping.is_signed && !mapping.windowed && mapping.slope == 1 && mapping.intercept == 0;
}

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
  if (::stat(path.c_str(), &file_status) != 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  if (S_ISDIR(file_status.st_mode)) fail(path, "is a directory, not a DICOM file");
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  }
  if (!dcmDataDict.isDictionaryLoaded()) fail(path, "DCMTK's data dictionary is not loaded (set DCMDICTPATH)");

  check_deflated_lengths(path, 2 * max_image_pixels() + (int64_t{64} << 20));
  DcmFileFormat file;
  OFCondition status = file.loadFile(path.c_str());
  const bool signature = has_dicm_signature(path);
  if (status.bad()) {
    if (!signature) fail(path, std::string("not a DICOM file (") + status.text() + ")");
    fail(path, std::string("truncated or corrupt DICOM file (") + status.text() + ")");
  }
  DcmDataset* dataset = file.getDataset();
  if (!dataset->tagExists(DCM_PixelData) || !dataset->tagExists(DCM_Rows) || !dataset->tagExists(DCM_Columns)) {
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
  if (dataset->tagExists(DCM_NumberOfFrames) && dataset->findAndGetSint32(DCM_NumberOfFrames, frames).bad())
    fail(path, "unreadable NumberOfFrames");
  if (frames != 1) fail(path, "multi-frame images are not supported (NumberOfFrames=" + std::to_string(frames) + ")");
  const int bits_allocated = required_uint16(dataset, DCM_BitsAllocated, "BitsAllocated", path);
  const int bits_stored = required_uint16(dataset, DCM_BitsStored, "BitsStored", path);
  Uint16 high_bit_value = static_cast<Uint16>(bits_stored - 1);
  dataset->findAndGetUint16(DCM_HighBit, high_bit_value);
  const int high_bit = high_bit_value;
  Uint16 pixel_representation = 0;
  dataset->findAndGetUint16(DCM_PixelRepresentation, pixel_representation);
  if (bits_allocated != 8 && bits_allocated != 16)
    fail(path, "BitsAllocated=" + std::to_string(bits_allocated) + " is not supported (expected 8 or 16)");
  if (bits_stored < 1 || bits_stored > bits_allocated || high_bit < bits_stored - 1 || high_bit >= bits_allocated)
    fail(path, "inconsistent BitsStored=" + std::to_string(bits_stored) + " / HighBit=" + std::to_string(high_bit) +
                   " for BitsAllocated=" + std::to_string(bits_allocated));
  if (pixel_representation > 1)
    fail(path, "PixelRepresentation=" + std::to_string(pixel_representation) + " (expected 0 or 1)");
  if (rows == 0 || columns == 0) fail(path, "empty image (Rows or Columns is 0)");
  const int64_t count = static_cast<int64_t>(rows) * columns;
  if (count > max_image_pixels())
    fail(path, "image of " + std::to_string(columns) + "x" + std::to_string(rows) + " = " + std::to_string(count) +
                   " pixels is above the limit of " + std::to_string(max_image_pixels()) +
                   " (raise it with --max-image-pixels)");

  const bool monochrome1 = photometric == "MONOCHROME1";
  const bool is_signed = pixel_representation == 1;
  const PixelMapping mapping = pixel_mapping(dataset, is_signed, bits_stored, monochrome1, path);
  const bool plain = is_plain_mapping(mapping);
  Image image;
  image.width = columns;
  image.height = rows;
  const E_TransferSyntax original = dataset->getOriginalXfer();
  const DcmXfer original_xfer(original);

  // Compressed frames: the codec's own header is read and checked against the tags (and the
  // size limit above) before any pixel buffer is allocated.
  if (original_xfer.isEncapsulated()) {
    std::vector<unsigned char> joined;
    const auto frame = encapsulated_frame_bytes(dataset, path, joined);
    const bool jpeg2000 = original == EXS_JPEG2000LosslessOnly || original == EXS_JPEG2000;
    if (jpeg2000) {
      const std::vector<int32_t> stored =
          decode_jpeg2000(frame.first, frame.second, rows, columns, bits_stored, is_signed, path);
      image.pixels.resize(count);  // (H,W)
      PixelMapping values = mapping;
      for (int64_t i = 0; i < count; ++i) {
        // OpenJPEG gives the sample values themselves (signed ones already negative).
        const int32_t value = stored[i];
        const int32_t lowest = is_signed ? -(1 << (bits_stored - 1)) : 0;
        const int32_t highest = lowest + static_cast<int32_t>((1u << bits_stored) - 1u);
        const int32_t clamped = std::min(highest, std::max(lowest, value));
        image.pixels[i] =
            plain ? static_cast<float>(monochrome1 ? highest - clamped : clamped) / static_cast<float>(highest)
                  : values(clamped);
      }
      return image;
    }
    if (original == EXS_RLELossless) {
      check_rle_header(frame.first, frame.second, count * (bits_allocated / 8), bits_allocated / 8, path);
    } else {
      check_frame_against_tags(jpeg_frame_header(frame.first, frame.second, path), rows, columns,
                               original == EXS_JPEGLSLossless || original == EXS_JPEGLSLossy ? "JPEG-LS" : "JPEG",
                               path);
    }
    if (jpeg_decoder == JpegDecoder::libjpeg_turbo && bits_allocated == 8 && plain &&
        (original == EXS_JPEGProcess1 || original == EXS_JPEGProcess2_4)) {
      std::vector<unsigned char> row_buffer(static_cast<size_t>(kJpegRowsPerCall) * columns);
      image.pixels.resize(count);  // (H,W)
      JpegDecoding decoding;
      if (!decode_jpeg_grey(frame.first, frame.second, rows, columns, bits_stored, high_bit, monochrome1,
                            row_buffer.data(), image.pixels.data(), &decoding))
        fail(path, std::string("cannot decode the JPEG pixel data: ") + decoding.message);
      return image;
    }
    status = dataset->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (status.bad() || !dataset->canWriteXfer(EXS_LittleEndianExplicit))
      fail(path, "cannot decode transfer syntax " + transfer_syntax_text(original) +
                     ": no decoder for it in this build (" + status.text() + ")");
  }

  DcmElement* element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) fail(path, "no pixel data");
  const int64_t needed = count * (bits_allocated / 8);
  if (static_cast<int64_t>(element->getLength()) < needed)
    fail(path, "pixel data is truncated (" + std::to_string(element->getLength()) + " bytes, expected " +
                   std::to_string(needed) + ")");

  image.pixels.resize(count);  // (H,W)
  if (bits_allocated == 8) {
    Uint8* data = nullptr;
    if (element->getUint8Array(data).bad() || data == nullptr) fail(path, "unreadable pixel data");
    if (plain)
      scale_pixels(data, count, bits_stored, high_bit, monochrome1, image.pixels.data());
    else
      map_pixels(data, count, high_bit, mapping, image.pixels.data());
  } else {
    Uint16* data = nullptr;
    if (element->getUint16Array(data).bad() || data == nullptr) fail(path, "unreadable pixel data");
    if (plain)
      scale_pixels(data, count, bits_stored, high_bit, monochrome1, image.pixels.data());
    else
      map_pixels(data, count, high_bit, mapping, image.pixels.data());
  }
  return image;
}

}  // namespace pneumo
