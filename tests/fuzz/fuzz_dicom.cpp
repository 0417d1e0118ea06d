// libFuzzer target: read_dicom (both JPEG decoders) on arbitrary bytes. The image limit is lowered
// to 4 Mi pixels so a crafted size is refused before any large allocation.
#include "data/input/dicom.h"
#include "engine/check.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pneumo_fuzz::input_path(".dcm");
  static const bool limited = (pneumo::set_max_image_pixels(int64_t{1} << 22), true);
  (void)limited;
  pneumo_fuzz::write_input(path, data, size);
  for (pneumo::JpegDecoder decoder : {pneumo::JpegDecoder::libjpeg_turbo, pneumo::JpegDecoder::dcmtk}) {
    try {
      pneumo::Image image = pneumo::read_dicom(path, decoder);
      for (float v : image.pixels)
        if (!(v >= 0.0f && v <= 1.0f)) __builtin_trap();  // the reader promises [0, 1]
    } catch (const pneumo::Error&) {
    }
  }
  return 0;
}
