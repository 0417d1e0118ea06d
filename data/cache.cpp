// Image cache file: [header, 4 KiB] [pixels: one (S,S) float32 slot per .dcm, sorted by id]
// [index: one record per id]. The header carries the sizes and offsets of both parts, the
// source fingerprint and FNV-1a checksums of itself and of the index; every field is checked
// before a byte of pixels is handed out.
#include "data/cache.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/dicom.h"
#include "data/progress.h"
#include "data/resize.h"
#include "engine/check.h"
#include "engine/cpu_threads.h"

namespace pneumo {

namespace {

constexpr char kMagic[8] = {'P', 'N', 'E', 'U', 'M', 'O', 'I', 'C'};
constexpr uint64_t kPixelsOffset = 4096;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t image_size;
  uint64_t fingerprint;
  uint64_t slot_count;     // every .dcm of the folder, stored or failed
  uint64_t stored_count;
  uint64_t failure_count;
  uint64_t pixels_offset;
  uint64_t pixels_bytes;   // slot_count * S * S * 4
  uint64_t index_offset;
  uint64_t index_bytes;
  uint64_t file_bytes;
  uint64_t index_checksum;
  uint64_t header_checksum;  // of every byte above
};

struct IndexRecord {
  uint32_t failed;  // 0: pixels stored in `slot`; 1: unreadable, `reason` follows the id
  uint32_t id_length;
  uint32_t reason_length;
  int32_t source_width;
  int32_t source_height;
  uint32_t reserved;
  uint64_t slot;
};

uint64_t fnv1a(const void* data, size_t bytes, uint64_t hash = 0xcbf29ce484222325ULL) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 0x100000001b3ULL;
  return hash;
}

uint64_t header_checksum(const Header& header) {
  return fnv1a(&header, offsetof(Header, header_checksum));
}

uint64_t slot_bytes(int image_size) {
  return static_cast<uint64_t>(image_size) * image_size * sizeof(float);
}

std::string system_error(const std::string& what) {
  return what + " (" + std::strerror(errno) + ")";
}

}  // namespace

ResizedImage load_resized_image(const std::string& path, int image_size) {
  Image image = read_dicom(path);
  ResizedImage resized;
  resized.source_width = image.width;
  resized.source_height = image.height;
  resized.pixels = resize_like_skimage(image.pixels.data(), image.height, image.width, image_size,
                                       image_size, /*use_threads=*/false);
  return resized;
}

uint64_t source_fingerprint(const std::string& image_dir) {
  char resolved[PATH_MAX];
  std::string real = ::realpath(image_dir.c_str(), resolved) ? resolved : image_dir;
  uint64_t hash = fnv1a(real.data(), real.size());
  for (const std::string& id : list_dicom_ids(image_dir)) {
    struct stat status;
    const std::string path = dicom_path(image_dir, id);
    int64_t fields[3] = {-1, -1, -1};
    if (::stat(path.c_str(), &status) == 0)
      fields[0] = status.st_size, fields[1] = status.st_mtim.tv_sec, fields[2] = status.st_mtim.tv_nsec;
    hash = fnv1a(id.data(), id.size() + 1, hash);  // with the terminating 0 as separator
    hash = fnv1a(fields, sizeof(fields), hash);
  }
  return hash;
}

std::string default_cache_path(const std::string& cache_dir, const std::string& image_dir, int image_size) {
  std::string name = image_dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  size_t slash = name.find_last_of('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  return cache_dir + "/" + name + "-" + std::to_string(image_size) + ".pneumocache";
}

// ---- reading --------------------------------------------------------------------------------

struct CacheReader {
  // Maps and checks the file; returns the problem ("" when `cache` is ready to use).
  static std::string read(const std::string& path, uint64_t fingerprint, int image_size, ImageCache& cache) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? "no cache file yet" : system_error("cannot open");
    struct stat status;
    if (::fstat(fd, &status) != 0) {
      std::string problem = system_error("cannot stat");
      ::close(fd);
      return problem;
    }
    const uint64_t file_bytes = static_cast<uint64_t>(status.st_size);
    if (file_bytes < sizeof(Header)) {
      ::close(fd);
      return "truncated (" + std::to_string(file_bytes) + " bytes, shorter than the header)";
    }
    void* mapping = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (mapping == MAP_FAILED) return system_error("cannot map");
    cache.mapping_ = static_cast<const uint8_t*>(mapping);
    cache.mapping_bytes_ = file_bytes;
    cache.path_ = path;
    cache.image_size_ = image_size;

    Header header;
    std::memcpy(&header, mapping, sizeof(header));
    if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0) return "not a pneumo image cache (bad magic)";
    if (header.header_checksum != header_checksum(header)) return "damaged header (checksum mismatch)";
    if (header.version != kCacheFormatVersion)
      return "format version " + std::to_string(header.version) + ", this build reads " +
             std::to_string(kCacheFormatVersion);
    if (static_cast<int>(header.image_size) != image_size)
      return "image size " + std::to_string(header.image_size) + ", wanted " + std::to_string(image_size);
    if (header.fingerprint != fingerprint) return "the image folder changed since the cache was built";
    if (header.file_bytes != file_bytes)
      return "truncated or extended (" + std::to_string(file_bytes) + " bytes, header says " +
             std::to_string(header.file_bytes) + ")";
    const uint64_t slot = slot_bytes(image_size);
    if (header.pixels_offset != kPixelsOffset || header.pixels_bytes != header.slot_count * slot ||
        header.index_offset != header.pixels_offset + header.pixels_bytes ||
        header.index_offset + header.index_bytes != file_bytes ||
        header.stored_count + header.failure_count != header.slot_count)
      return "damaged header (inconsistent sizes)";
    const uint8_t* index = cache.mapping_ + header.index_offset;
    if (fnv1a(index, header.index_bytes) != header.index_checksum) return "damaged index (checksum mismatch)";

    uint64_t position = 0;
    std::vector<bool> slot_used(header.slot_count, false);
    for (uint64_t record_number = 0; record_number < header.slot_count; ++record_number) {
      IndexRecord record;
      if (position + sizeof(record) > header.index_bytes) return "damaged index (record past the end)";
      std::memcpy(&record, index + position, sizeof(record));
      position += sizeof(record);
      if (record.failed > 1 || position + record.id_length + record.reason_length > header.index_bytes ||
          record.id_length == 0 || record.slot >= header.slot_count || slot_used[record.slot])
        return "damaged index (bad record " + std::to_string(record_number) + ")";
      slot_used[record.slot] = true;
      std::string id(reinterpret_cast<const char*>(index + position), record.id_length);
      position += record.id_length;
      std::string reason(reinterpret_cast<const char*>(index + position), record.reason_length);
      position += record.reason_length;
      if (record.failed) {
        cache.failures_.push_back({id, reason});
      } else {
        if (record.source_width <= 0 || record.source_height <= 0)
          return "damaged index (bad source size in record " + std::to_string(record_number) + ")";
        const int64_t offset = static_cast<int64_t>(header.pixels_offset + record.slot * slot);
        if (!cache.entries_.emplace(id, ImageCache::Entry{offset, record.source_width, record.source_height}).second)
          return "damaged index (patient id " + id + " twice)";
      }
    }
    if (position != header.index_bytes || cache.entries_.size() != header.stored_count ||
        cache.failures_.size() != header.failure_count)
      return "damaged index (record count)";
    return "";
  }

  static std::string problem(const std::string& path, const std::string& image_dir, int image_size) {
    ImageCache cache;
    return read(path, source_fingerprint(image_dir), image_size, cache);
  }

  static ImageCache open(const std::string& path, const std::string& image_dir, int image_size,
                         bool build, bool show_progress) {
    const uint64_t fingerprint = source_fingerprint(image_dir);
    {
      ImageCache cache;
      std::string problem = read(path, fingerprint, image_size, cache);
      if (problem.empty()) return cache;
      if (!build) throw Error(path + ": image cache not usable: " + problem);
      if (show_progress || problem != "no cache file yet")
        std::fprintf(stderr, "%s: rebuilding image cache: %s\n", path.c_str(), problem.c_str());
    }
    build_cache(path, image_dir, image_size, show_progress);
    ImageCache cache;
    std::string problem = read(path, source_fingerprint(image_dir), image_size, cache);
    if (!problem.empty())
      throw Error(path + ": freshly built image cache is not usable (" + problem +
                  "); did the image folder change during the build?");
    cache.rebuilt_ = true;
    return cache;
  }
};

std::string cache_problem(const std::string& path, const std::string& image_dir, int image_size) {
  return CacheReader::problem(path, image_dir, image_size);
}

ImageCache ImageCache::open_or_build(const std::string& path, const std::string& image_dir,
                                     int image_size, bool show_progress) {
  return CacheReader::open(path, image_dir, image_size, true, show_progress);
}

ImageCache ImageCache::open(const std::string& path, const std::string& image_dir, int image_size) {
  return CacheReader::open(path, image_dir, image_size, false, false);
}

ImageCache::ImageCache(ImageCache&& other) noexcept { *this = std::move(other); }

ImageCache& ImageCache::operator=(ImageCache&& other) noexcept {
  if (this != &other) {
    if (mapping_ != nullptr) ::munmap(const_cast<uint8_t*>(mapping_), mapping_bytes_);
    path_ = std::move(other.path_);
    image_size_ = other.image_size_;
    mapping_ = other.mapping_;
    mapping_bytes_ = other.mapping_bytes_;
    rebuilt_ = other.rebuilt_;
    entries_ = std::move(other.entries_);
    failures_ = std::move(other.failures_);
    other.mapping_ = nullptr;
    other.mapping_bytes_ = 0;
  }
  return *this;
}

ImageCache::~ImageCache() {
  if (mapping_ != nullptr) ::munmap(const_cast<uint8_t*>(mapping_), mapping_bytes_);
}

const float* ImageCache::find(const std::string& patient_id, int* source_width, int* source_height) const {
  auto found = entries_.find(patient_id);
  if (found == entries_.end()) return nullptr;
  if (source_width != nullptr) *source_width = found->second.source_width;
  if (source_height != nullptr) *source_height = found->second.source_height;
  return reinterpret_cast<const float*>(mapping_ + found->second.offset);
}

// ---- building -------------------------------------------------------------------------------

namespace {

void write_all(int fd, const void* data, size_t bytes, uint64_t offset, const std::string& path) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    ssize_t written = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": " + system_error("cannot write image cache"));
    }
    p += written, bytes -= static_cast<size_t>(written), offset += static_cast<uint64_t>(written);
  }
}

}  // namespace

void build_cache(const std::string& path, const std::string& image_dir, int image_size, bool show_progress) {
  if (image_size <= 0) throw Error(path + ": image cache size must be positive");
  const uint64_t fingerprint = source_fingerprint(image_dir);
  const std::vector<std::string> ids = list_dicom_ids(image_dir);
  const uint64_t slot = slot_bytes(image_size);
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kCacheFormatVersion;
  header.image_size = static_cast<uint32_t>(image_size);
  header.fingerprint = fingerprint;
  header.slot_count = ids.size();
  header.pixels_offset = kPixelsOffset;
  header.pixels_bytes = ids.size() * slot;
  header.index_offset = header.pixels_offset + header.pixels_bytes;

  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(temporary + ": " + system_error("cannot create image cache"));
  struct Cleanup {  // removes the temporary file unless the build got to the rename
    int fd;
    std::string path;
    bool done = false;
    ~Cleanup() {
      if (fd >= 0) ::close(fd);
      if (!done) ::unlink(path.c_str());
    }
  } cleanup{fd, temporary};
  if (::ftruncate(fd, static_cast<off_t>(header.index_offset)) != 0)
    throw Error(temporary + ": " + system_error("cannot size image cache"));

  std::vector<IndexRecord> records(ids.size());
  std::vector<std::string> reasons(ids.size());
  {
    void* mapping = header.pixels_bytes == 0 ? nullptr
                    : ::mmap(nullptr, header.index_offset, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED) throw Error(temporary + ": " + system_error("cannot map image cache"));
    uint8_t* pixels = static_cast<uint8_t*>(mapping) + kPixelsOffset;
    ProgressBar progress("cache " + std::to_string(image_size) + "px", static_cast<int64_t>(ids.size()),
                         show_progress ? stderr : nullptr);
    std::atomic<int64_t> failures{0};
    try {
      parallel_for(static_cast<int64_t>(ids.size()), 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          IndexRecord& record = records[i];
          record.slot = static_cast<uint64_t>(i);
          try {
            ResizedImage image = load_resized_image(dicom_path(image_dir, ids[i]), image_size);
            std::memcpy(pixels + i * slot, image.pixels.data(), slot);
            record.source_width = image.source_width;
            record.source_height = image.source_height;
          } catch (const Error& error) {
            record.failed = 1;
            reasons[i] = error.what();
            ++failures;
          }
          progress.advance(1, failures > 0 ? std::to_string(failures.load()) + " unreadable" : "");
        }
      });
    } catch (...) {
      if (mapping != nullptr) ::munmap(mapping, header.index_offset);
      throw;
    }
    progress.finish();
    if (mapping != nullptr) ::munmap(mapping, header.index_offset);
  }

  std::vector<uint8_t> index;
  for (size_t i = 0; i < ids.size(); ++i) {
    IndexRecord& record = records[i];
    record.id_length = static_cast<uint32_t>(ids[i].size());
    record.reason_length = static_cast<uint32_t>(reasons[i].size());
    (record.failed ? header.failure_count : header.stored_count) += 1;
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&record);
    index.insert(index.end(), bytes, bytes + sizeof(record));
    index.insert(index.end(), ids[i].begin(), ids[i].end());
    index.insert(index.end(), reasons[i].begin(), reasons[i].end());
  }
  header.index_bytes = index.size();
  header.file_bytes = header.index_offset + header.index_bytes;
  header.index_checksum = fnv1a(index.data(), index.size());
  header.header_checksum = header_checksum(header);
  write_all(fd, index.data(), index.size(), header.index_offset, temporary);
  write_all(fd, &header, sizeof(header), 0, temporary);
  if (::fdatasync(fd) != 0) throw Error(temporary + ": " + system_error("cannot flush image cache"));
  if (::rename(temporary.c_str(), path.c_str()) != 0)
    throw Error(path + ": " + system_error("cannot rename the image cache from " + temporary));
  cleanup.done = true;
}

}  // namespace pneumo
