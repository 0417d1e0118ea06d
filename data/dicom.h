// DICOM decoding through DCMTK: file -> one grey image as float in [0, 1], row-major (H,W).
// Thread-safe: any number of threads may call read_dicom at once.
#pragma once
#include <string>
#include <vector>

namespace pneumo {

struct Image {
  int width = 0, height = 0;
  std::vector<float> pixels;  // (H,W), in [0,1]
};

// Decodes a single-frame greyscale DICOM. Transfer syntaxes: implicit/explicit VR little endian,
// explicit VR big endian, deflated explicit VR little endian, RLE lossless, JPEG baseline /
// extended / lossless (processes 1, 2+4, 14, 14 SV1) and JPEG-LS (lossless and near-lossless).
// Values are the raw stored values (no modality LUT, no VOI window, like pydicom's pixel_array)
// divided by 2^BitsStored - 1 (8-bit: /255); MONOCHROME1 is inverted to MONOCHROME2 (1 - v).
// Errors (missing file, not DICOM, truncated, colour, multi-frame, signed pixels, JPEG 2000 or
// another syntax without a decoder) throw pneumo::Error "<path>: <reason>".
Image read_dicom(const std::string& path);

// Registers DCMTK's JPEG, JPEG-LS and RLE decoders (once; read_dicom calls it itself).
void register_dicom_decoders();

}  // namespace pneumo
