// libFuzzer target: the image cache reader. The input is the cache file for a one-image folder
// (tests/fuzz/corpus/cache_images); before it is written, the harness puts this folder's source
// fingerprint and valid header/index checksums into it (when it is long enough), as a crafted
// file would, so the fuzzer gets past the checksums into the index and slot checks.
#include <cstring>
#include <vector>

#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "engine/check.h"
#include "tests/fuzz/fuzz_input.h"

namespace {
uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) hash = (hash ^ p[i]) * 0x100000001b3ULL;
  return hash;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = pneumo_fuzz::input_path(".pneumocache");
  static const std::string images = PNEUMO_SOURCE_DIR "/tests/fuzz/corpus/cache_images";
  static const uint64_t fingerprint = pneumo::source_fingerprint(images);
  std::vector<uint8_t> bytes(data, data + size);
  if (bytes.size() >= 4096 && bytes[0] == 'P') {  // header: fingerprint 16, index 64/72, checksums 88/96
    std::memcpy(bytes.data() + 16, &fingerprint, 8);
    uint64_t index_offset = 0, index_bytes = 0;
    std::memcpy(&index_offset, bytes.data() + 64, 8);
    std::memcpy(&index_bytes, bytes.data() + 72, 8);
    if (index_offset <= bytes.size() && index_bytes <= bytes.size() - index_offset) {
      const uint64_t index_checksum = fnv1a(bytes.data() + index_offset, index_bytes);
      std::memcpy(bytes.data() + 88, &index_checksum, 8);
    }
    const uint64_t header_checksum = fnv1a(bytes.data(), 96);
    std::memcpy(bytes.data() + 96, &header_checksum, 8);
  }
  pneumo_fuzz::write_input(path, bytes.data(), bytes.size());
  for (int image_size : {8, 16}) {
    try {
      pneumo::ImageCache cache = pneumo::ImageCache::open(path, images, image_size);
      for (const std::string& id : pneumo::list_dicom_ids(images)) cache.find(id);
    } catch (const pneumo::Error&) {
    }
  }
  return 0;
}
