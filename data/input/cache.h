// Preprocessed image cache: a folder of DICOMs -> one memory-mapped file holding every image
// decoded and resized ONCE to S x S (float32, exactly what read_dicom + resize_like_skimage give),
// so later epochs and runs read pixels straight from the page cache. The file is rebuilt when its
// source folder, the image size or the format changes, and a damaged file is detected (magic,
// sizes and bounds of every field, header and index checksums, each index record tied to its
// source file's name, size and mtime) and rebuilt, never read as garbage. Each image slot has its
// own checksum (seeded with its patientId and source file), verified the first time the slot is
// read; a damaged slot is decoded again from its DICOM and written back. See data/input/pipeline.md.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace pneumo {

constexpr uint32_t kCacheFormatVersion = 2;

// One image decoded and resized the way training sees it.
struct ResizedImage {
  int source_width = 0, source_height = 0;  // the DICOM's size (label boxes are in these pixels)
  std::vector<float> pixels;                // (S,S) in [0,1]
};
// read_dicom + resize_like_skimage on the calling thread; throws pneumo::Error "<path>: <reason>".
ResizedImage load_resized_image(const std::string& path, int image_size);

// One .dcm file of the image folder as the cache records it.
struct CacheSourceFile {
  std::string patient_id;
  int64_t bytes = -1, mtime_ns = -1;  // -1 when stat failed
};
std::vector<CacheSourceFile> list_cache_sources(const std::string& image_dir);

// A hash of the folder's real path and the (name, size, mtime) of every .dcm file in it.
uint64_t source_fingerprint(const std::string& image_dir);

// <cache_dir>/<image folder name>-<S>.pneumocache
std::string default_cache_path(const std::string& cache_dir, const std::string& image_dir, int image_size);

// Why the cache file at `path` cannot serve (image_dir, image_size), or "" when it can.
std::string cache_problem(const std::string& path, const std::string& image_dir, int image_size);

// Decodes every .dcm of image_dir in parallel (parallel_for; progress bar on stderr when
// show_progress) into a temporary file written with pwrite (its space reserved first, so a full
// disk is a one-line error, and the temporary file is removed), then renames it to `path`.
// Temporary files of killed builds (<path>.tmp.<pid> of a dead process) are removed first. Images that cannot be
// decoded are recorded in the file with their reason (ImageCache::failures) and do not stop the build.
void build_cache(const std::string& path, const std::string& image_dir, int image_size, bool show_progress = true);

struct CacheFailure {
  std::string patient_id;
  std::string reason;  // read_dicom's message: "<path>: <reason>"
};

class ImageCache {
 public:
  // Opens `path`, first (re)building it when cache_problem() reports one (the reason is printed).
  static ImageCache open_or_build(const std::string& path, const std::string& image_dir, int image_size,
                                  bool show_progress = true);
  // Opens `path` without building; throws pneumo::Error with cache_problem()'s reason.
  static ImageCache open(const std::string& path, const std::string& image_dir, int image_size);

  ImageCache(ImageCache&& other) noexcept;
  ImageCache& operator=(ImageCache&& other) noexcept;
  ImageCache(const ImageCache&) = delete;
  ImageCache& operator=(const ImageCache&) = delete;
  ~ImageCache();  // unmaps the file

  // The (S,S) pixels of one image, or nullptr when the id is not cached (not in the folder, or
  // unreadable at build time). The slot's checksum is verified on its first read; a mismatch is
  // reported on stderr, the image decoded again from its DICOM (and written back into the file
  // when it is writable), and those pixels returned (nullptr when the DICOM is unreadable now).
  // Thread-safe; valid while the cache lives.
  const float* find(const std::string& patient_id, int* source_width = nullptr, int* source_height = nullptr) const;
  const std::vector<CacheFailure>& failures() const { return failures_; }
  int image_size() const { return image_size_; }
  int64_t repaired_count() const;  // slots found damaged and decoded again so far
  int64_t image_count() const { return static_cast<int64_t>(entries_.size()); }
  const std::string& path() const { return path_; }
  bool rebuilt() const { return rebuilt_; }  // open_or_build had to build it

 private:
  ImageCache() = default;
  struct Entry {
    int64_t offset;  // bytes from the start of the file
    int source_width, source_height;
    uint64_t checksum;  // slot_checksum of the pixels, seeded by the id and the source file
    uint64_t seed;
    int64_t number;  // index into slot_state_
  };
  struct Repairs;  // damaged slots decoded again (under a mutex)
  const float* verified(const std::string& patient_id, const Entry& entry) const;
  std::string path_;
  std::string image_dir_;
  int image_size_ = 0;
  const uint8_t* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  bool rebuilt_ = false;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<CacheFailure> failures_;
  std::unique_ptr<std::atomic<uint8_t>[]> slot_state_;  // per entry: 0 unchecked, 1 good, 2 repaired
  std::unique_ptr<Repairs> repairs_;

  friend struct CacheReader;
};

}  // namespace pneumo
