// DICOM decoding: file -> one grey image as float in [0, 1], row-major (H,W). DCMTK parses the file;
// 8-bit JPEG baseline / extended pixel data is decoded by libjpeg-turbo (SIMD), everything else by
// DCMTK's decoders. Thread-safe: any number of threads may call read_dicom at once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pneumo {

struct Image {
  int width = 0, height = 0;
  std::vector<float> pixels;  // (H,W), in [0,1]
};

// Which decoder handles 8-bit JPEG baseline (1.2.840.10008.1.2.4.50) and extended (.4.51) pixel
// data. Both give identical pixels (islow IDCT); the choice exists for tests and benchmarks.
enum class JpegDecoder {
  libjpeg_turbo,  // the fast path: the compressed fragments go straight to libjpeg-turbo
  dcmtk,          // DCMTK's bundled IJG decoder (chooseRepresentation), like every other syntax
};

// Decodes a single-frame greyscale DICOM, signed or unsigned 8-16 bit, MONOCHROME1/2. Transfer
// syntaxes: implicit/explicit VR little endian, explicit VR big endian, deflated explicit VR little
// endian, RLE lossless, JPEG baseline / extended / lossless (processes 1, 2+4, 14, 14 SV1), JPEG-LS
// (lossless and near-lossless) and JPEG 2000 (lossless and lossy, OpenJPEG). Mapping to [0,1]
// (data/input/decoding.md): plain unsigned files (no rescale, no window) are stored / (2^BitsStored - 1)
// exactly (8-bit: /255, the RSNA path); otherwise the modality rescale, then the first VOI window
// when there is one, else the stored range, clamped; MONOCHROME1 is inverted (1 - v).
// Errors (missing file, not DICOM, truncated, colour, multi-frame, 1- or 32-bit, an image over
// max_image_pixels(), a syntax without a decoder, a corrupt stream: truncated, garbage, size or
// component count unlike the tags) throw pneumo::Error "<path>: <reason>", one line.
Image read_dicom(const std::string& path, JpegDecoder jpeg_decoder = JpegDecoder::libjpeg_turbo);

// The largest image read_dicom decodes, in pixels (Rows x Columns): 64 Mi pixels by default
// (8192 x 8192; chest X-rays are at most about 4300 x 4300). The limit is checked, against both the
// tags and the codec's own header, before any pixel buffer is allocated, so a small crafted file
// cannot ask for gigabytes. The CLI's --max-image-pixels sets it; thread-safe.
constexpr int64_t kDefaultMaxImagePixels = int64_t{1} << 26;
void set_max_image_pixels(int64_t pixels);  // throws pneumo::Error unless 1 <= pixels <= 2^31
int64_t max_image_pixels();

// Registers DCMTK's JPEG, JPEG-LS and RLE decoders (once; read_dicom calls it itself).
void register_dicom_decoders();

}  // namespace pneumo
