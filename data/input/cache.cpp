// Image cache file: [header, 4 KiB] [pixels: one (S,S) float32 slot per .dcm, sorted by id]
// [index: one record per id]. The header carries the sizes and offsets of both parts, the
// source fingerprint and FNV-1a checksums of itself and of the index; each index record carries
// its source file's size and mtime and its slot's checksum. Every field is checked against the
// file size and sane bounds (overflow-safe) before a byte of pixels is handed out, and each slot's
// checksum when it is first read.
#include "data/input/cache.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/input/dataset.h"
#include "data/input/dicom.h"
#include "data/input/progress.h"
#include "data/input/resize.h"
#include "engine/check.h"
#include "engine/cpu_threads.h"
#include "engine/files.h"

namespace pneumo {

namespace {

constexpr char kMagic[8] = {'P', 'N', 'E', 'U', 'M', 'O', 'I', 'C'};
constexpr uint64_t kPixelsOffset = 4096;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t image_size;
  uint64_t fingerprint;
  uint64_t slot_count;  // every .dcm of the folder, stored or failed
  uint64_t stored_count;
  uint64_t failure_count;
  uint64_t pixels_offset;
  uint64_t pixels_bytes;  // slot_count * S * S * 4
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
  int64_t source_bytes;  // the .dcm file's size and mtime when it was decoded
  int64_t source_mtime_ns;
  uint64_t pixels_checksum;  // slot_checksum(pixels, slot_seed(...))
};

// Bounds on index fields (a crafted index must not make the reader allocate or loop at will).
constexpr uint32_t kMaxIdBytes = 4096;
constexpr uint32_t kMaxReasonBytes = 1 << 16;
constexpr int kMaxSourceSide = 65535;  // DICOM Rows and Columns are 16-bit

uint64_t fnv1a(const void* data, size_t bytes, uint64_t hash = 0xcbf29ce484222325ULL) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 0x100000001b3ULL;
  return hash;
}

// A fast 64-bit checksum of a pixel slot: four independent lanes of XXH64's round over 8-byte
// words (several GB/s; FNV-1a's byte-at-a-time loop would cost more than reading the slot).
inline uint64_t rotate_left(uint64_t x, int bits) { return (x << bits) | (x >> (64 - bits)); }
uint64_t slot_checksum(const uint8_t* data, size_t bytes, uint64_t seed) {
  constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL, kPrime2 = 0xC2B2AE3D27D4EB4FULL;
  uint64_t lanes[4] = {seed + kPrime1 + kPrime2, seed + kPrime2, seed, seed - kPrime1};
  size_t i = 0;
  for (; i + 32 <= bytes; i += 32)
    for (int lane = 0; lane < 4; ++lane) {
      uint64_t word;
      std::memcpy(&word, data + i + 8 * lane, 8);
      lanes[lane] = rotate_left(lanes[lane] + word * kPrime2, 31) * kPrime1;
    }
  uint64_t hash = rotate_left(lanes[0], 1) + rotate_left(lanes[1], 7) + rotate_left(lanes[2], 12) +
                  rotate_left(lanes[3], 18) + bytes;
  hash = fnv1a(data + i, bytes - i, hash);
  hash ^= hash >> 33, hash *= kPrime2, hash ^= hash >> 29;
  return hash;
}

// Ties a slot to its patientId and source file: swapping slots or records changes the seed.
uint64_t slot_seed(const std::string& id, int64_t source_bytes, int64_t source_mtime_ns, int source_width,
                   int source_height) {
  const int64_t fields[4] = {source_bytes, source_mtime_ns, source_width, source_height};
  return fnv1a(fields, sizeof(fields), fnv1a(id.data(), id.size()));
}

uint64_t header_checksum(const Header& header) { return fnv1a(&header, offsetof(Header, header_checksum)); }

uint64_t slot_bytes(int image_size) { return static_cast<uint64_t>(image_size) * image_size * sizeof(float); }

std::string system_error(const std::string& what) { return what + " (" + std::strerror(errno) + ")"; }

}  // namespace

ResizedImage load_resized_image(const std::string& path, int image_size) {
  Image image = read_dicom(path);
  ResizedImage resized;
  resized.source_width = image.width;
  resized.source_height = image.height;
  resized.pixels = resize_like_skimage(image.pixels.data(), image.height, image.width, image_size, image_size,
                                       /*use_threads=*/false);
  return resized;
}

std::vector<CacheSourceFile> list_cache_sources(const std::string& image_dir) {
  std::vector<CacheSourceFile> sources;
  for (const std::string& id : list_dicom_ids(image_dir)) {
    CacheSourceFile source;
    source.patient_id = id;
    struct stat status;
    if (::stat(dicom_path(image_dir, id).c_str(), &status) == 0) {
      source.bytes = status.st_size;
      source.mtime_ns = static_cast<int64_t>(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec;
    }
    sources.push_back(std::move(source));
  }
  return sources;
}

namespace {
uint64_t fingerprint_of(const std::string& image_dir, const std::vector<CacheSourceFile>& sources) {
  char resolved[PATH_MAX];
  std::string real = ::realpath(image_dir.c_str(), resolved) ? resolved : image_dir;
  uint64_t hash = fnv1a(real.data(), real.size());
  for (const CacheSourceFile& source : sources) {
    const int64_t fields[2] = {source.bytes, source.mtime_ns};
    hash = fnv1a(source.patient_id.data(), source.patient_id.size() + 1, hash);  // with the 0 as separator
    hash = fnv1a(fields, sizeof(fields), hash);
  }
  return hash;
}
}  // namespace

uint64_t source_fingerprint(const std::string& image_dir) {
  return fingerprint_of(image_dir, list_cache_sources(image_dir));
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
  static std::string read(const std::string& path, const std::string& image_dir,
                          const std::vector<CacheSourceFile>& sources, int image_size, ImageCache& cache) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? "no cache file yet" : system_error("cannot open");
    struct stat status;
    if (::fstat(fd, &status) != 0) {
      std::string problem = system_error("cannot stat");
      ::close(fd);
      return problem;
    }
    const uint64_t file_bytes = static_cast<uint64_t>(status.st_size);
    if (file_bytes < kPixelsOffset) {
      ::close(fd);
      return "truncated (" + std::to_string(file_bytes) + " bytes, shorter than the header)";
    }
    void* mapping = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (mapping == MAP_FAILED) return system_error("cannot map");
    cache.mapping_ = static_cast<const uint8_t*>(mapping);
    cache.mapping_bytes_ = file_bytes;
    cache.path_ = path;
    cache.image_dir_ = image_dir;
    cache.image_size_ = image_size;

    Header header;
    std::memcpy(&header, mapping, sizeof(header));
    if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0) return "not a pneumo image cache (bad magic)";
    if (header.header_checksum != header_checksum(header)) return "damaged header (checksum mismatch)";
    if (header.version != kCacheFormatVersion)
      return "format version " + std::to_string(header.version) + ", this build reads " +
             std::to_string(kCacheFormatVersion);
    if (image_size <= 0 || static_cast<int64_t>(header.image_size) != image_size)
      return "image size " + std::to_string(header.image_size) + ", wanted " + std::to_string(image_size);
    if (header.fingerprint != fingerprint_of(image_dir, sources))
      return "the image folder changed since the cache was built";
    if (header.file_bytes != file_bytes)
      return "truncated or extended (" + std::to_string(file_bytes) + " bytes, header says " +
             std::to_string(header.file_bytes) + ")";
    // Every size is checked against the file size before it is multiplied or added, so no
    // crafted field can overflow the arithmetic or size an allocation beyond the file.
    const uint64_t slot = slot_bytes(image_size);
    if (header.pixels_offset != kPixelsOffset || header.slot_count > (file_bytes - kPixelsOffset) / slot ||
        header.pixels_bytes != header.slot_count * slot ||
        header.index_offset != header.pixels_offset + header.pixels_bytes || header.index_offset > file_bytes ||
        header.index_bytes != file_bytes - header.index_offset || header.stored_count > header.slot_count ||
        header.failure_count != header.slot_count - header.stored_count)
      return "damaged header (inconsistent sizes)";
    if (header.slot_count != sources.size())
      return "the cache holds " + std::to_string(header.slot_count) + " images, the folder " +
             std::to_string(sources.size());
    const uint8_t* index = cache.mapping_ + header.index_offset;
    if (fnv1a(index, header.index_bytes) != header.index_checksum) return "damaged index (checksum mismatch)";

    std::unordered_map<std::string, const CacheSourceFile*> source_of;
    for (const CacheSourceFile& source : sources) source_of.emplace(source.patient_id, &source);
    uint64_t position = 0;
    std::vector<bool> slot_used(header.slot_count, false);
    cache.entries_.reserve(header.stored_count);
    for (uint64_t record_number = 0; record_number < header.slot_count; ++record_number) {
      const std::string bad = "damaged index (bad record " + std::to_string(record_number);
      IndexRecord record;
      if (header.index_bytes - position < sizeof(record)) return "damaged index (record past the end)";
      std::memcpy(&record, index + position, sizeof(record));
      position += sizeof(record);
      if (record.failed > 1 || record.id_length == 0 || record.id_length > kMaxIdBytes ||
          record.reason_length > kMaxReasonBytes ||
          header.index_bytes - position < uint64_t{record.id_length} + record.reason_length ||
          record.slot >= header.slot_count || slot_used[record.slot])
        return bad + ")";
      slot_used[record.slot] = true;
      std::string id(reinterpret_cast<const char*>(index + position), record.id_length);
      position += record.id_length;
      std::string reason(reinterpret_cast<const char*>(index + position), record.reason_length);
      position += record.reason_length;
      auto source = source_of.find(id);
      if (source == source_of.end()) return bad + ": patient id " + quoted(id) + " is not in the folder)";
      if (source->second->bytes != record.source_bytes || source->second->mtime_ns != record.source_mtime_ns)
        return bad + ": " + quoted(id) + " does not match its source file's size and time)";
      source_of.erase(source);  // each id once
      if (record.failed) {
        cache.failures_.push_back({id, reason});
      } else {
        if (record.source_width <= 0 || record.source_height <= 0 || record.source_width > kMaxSourceSide ||
            record.source_height > kMaxSourceSide ||
            int64_t{record.source_width} * record.source_height > max_image_pixels())
          return bad + ": source size " + std::to_string(record.source_width) + "x" +
                 std::to_string(record.source_height) + " out of bounds)";
        const int64_t offset = static_cast<int64_t>(header.pixels_offset + record.slot * slot);
        const int64_t number = static_cast<int64_t>(cache.entries_.size());
        const uint64_t seed =
            slot_seed(id, record.source_bytes, record.source_mtime_ns, record.source_width, record.source_height);
        cache.entries_.emplace(id, ImageCache::Entry{offset, record.source_width, record.source_height,
                                                     record.pixels_checksum, seed, number});
      }
    }
    if (position != header.index_bytes || cache.entries_.size() != header.stored_count ||
        cache.failures_.size() != header.failure_count)
      return "damaged index (record count)";
    cache.slot_state_.reset(new std::atomic<uint8_t>[cache.entries_.size()]());
    cache.repairs_ = std::make_unique<ImageCache::Repairs>();
    return "";
  }

  static std::string problem(const std::string& path, const std::string& image_dir, int image_size) {
    ImageCache cache;
    return read(path, image_dir, list_cache_sources(image_dir), image_size, cache);
  }

  static ImageCache open(const std::string& path, const std::string& image_dir, int image_size, bool build,
                         bool show_progress) {
    {
      ImageCache cache;
      std::string problem = read(path, image_dir, list_cache_sources(image_dir), image_size, cache);
      if (problem.empty()) return cache;
      if (!build) throw Error(path + ": image cache not usable: " + problem);
      if (show_progress || problem != "no cache file yet")
        std::fprintf(stderr, "%s: rebuilding image cache: %s\n", path.c_str(), problem.c_str());
    }
    build_cache(path, image_dir, image_size, show_progress);
    ImageCache cache;
    std::string problem = read(path, image_dir, list_cache_sources(image_dir), image_size, cache);
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

ImageCache ImageCache::open_or_build(const std::string& path, const std::string& image_dir, int image_size,
                                     bool show_progress) {
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
    image_dir_ = std::move(other.image_dir_);
    image_size_ = other.image_size_;
    mapping_ = other.mapping_;
    mapping_bytes_ = other.mapping_bytes_;
    rebuilt_ = other.rebuilt_;
    entries_ = std::move(other.entries_);
    failures_ = std::move(other.failures_);
    slot_state_ = std::move(other.slot_state_);
    repairs_ = std::move(other.repairs_);
    other.mapping_ = nullptr;
    other.mapping_bytes_ = 0;
  }
  return *this;
}

ImageCache::~ImageCache() {
  if (mapping_ != nullptr) ::munmap(const_cast<uint8_t*>(mapping_), mapping_bytes_);
}

struct ImageCache::Repairs {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<float>> pixels;  // (S,S) per repaired id; nodes are stable
};

const float* ImageCache::find(const std::string& patient_id, int* source_width, int* source_height) const {
  auto found = entries_.find(patient_id);
  if (found == entries_.end()) return nullptr;
  if (source_width != nullptr) *source_width = found->second.source_width;
  if (source_height != nullptr) *source_height = found->second.source_height;
  return verified(patient_id, found->second);
}

const float* ImageCache::verified(const std::string& patient_id, const Entry& entry) const {
  const uint8_t* slot = mapping_ + entry.offset;
  std::atomic<uint8_t>& state = slot_state_[entry.number];
  const uint8_t known = state.load(std::memory_order_acquire);
  if (known == 1) return reinterpret_cast<const float*>(slot);
  std::lock_guard<std::mutex> lock(repairs_->mutex);
  if (known == 2 || state.load() == 2) {
    auto repaired = repairs_->pixels.find(patient_id);
    return repaired == repairs_->pixels.end() ? nullptr : repaired->second.data();
  }
  const size_t bytes = slot_bytes(image_size_);
  if (slot_checksum(slot, bytes, entry.seed) == entry.checksum) {
    state.store(1, std::memory_order_release);
    return reinterpret_cast<const float*>(slot);
  }
  // Damaged pixels: decode the DICOM again, write the slot back, and hand out the fresh pixels.
  state.store(2, std::memory_order_release);
  std::string outcome;
  try {
    ResizedImage image = load_resized_image(dicom_path(image_dir_, patient_id), image_size_);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    bool written = false;
    if (fd >= 0) {
      written =
          ::pwrite(fd, image.pixels.data(), bytes, static_cast<off_t>(entry.offset)) == static_cast<ssize_t>(bytes);
      ::close(fd);
    }
    outcome =
        written ? "decoded again from its DICOM and rewritten" : "decoded again from its DICOM (file not writable)";
    repairs_->pixels.emplace(patient_id, std::move(image.pixels));
  } catch (const Error& error) {
    outcome = std::string("and its DICOM is unreadable now: ") + error.what();
  }
  std::fprintf(stderr, "%s: image cache slot of %s damaged (pixel checksum mismatch); %s\n", path_.c_str(),
               quoted(patient_id).c_str(), outcome.c_str());
  auto repaired = repairs_->pixels.find(patient_id);
  return repaired == repairs_->pixels.end() ? nullptr : repaired->second.data();
}

int64_t ImageCache::repaired_count() const {
  if (!repairs_) return 0;
  std::lock_guard<std::mutex> lock(repairs_->mutex);
  int64_t count = 0;
  for (size_t i = 0; i < entries_.size(); ++i) count += slot_state_[i].load() == 2;
  return count;
}

// ---- building -------------------------------------------------------------------------------

namespace {

void write_all(int fd, const void* data, size_t bytes, uint64_t offset, const std::string& path) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    ssize_t written = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (written <= 0) {
      if (written < 0 && errno == EINTR) continue;
      if (written == 0) errno = ENOSPC;
      throw Error(path + ": " + system_error("cannot write image cache"));
    }
    p += written, bytes -= static_cast<size_t>(written), offset += static_cast<uint64_t>(written);
  }
}

}  // namespace

void build_cache(const std::string& path, const std::string& image_dir, int image_size, bool show_progress) {
  if (image_size <= 0 || image_size > 65536) throw Error(path + ": image cache size must be in 1..65536");
  const std::vector<CacheSourceFile> sources = list_cache_sources(image_dir);
  const uint64_t slot = slot_bytes(image_size);
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kCacheFormatVersion;
  header.image_size = static_cast<uint32_t>(image_size);
  header.fingerprint = fingerprint_of(image_dir, sources);
  header.slot_count = sources.size();
  header.pixels_offset = kPixelsOffset;
  header.pixels_bytes = sources.size() * slot;
  header.index_offset = header.pixels_offset + header.pixels_bytes;

  make_directories(folder_of(path));            // --cache-dir may name a folder not made yet
  remove_stale_temporary_files(path, ".tmp.");  // left by a build of older versions that was killed
  AtomicFile file(path);                        // removes its own kind of stale temporaries, and its file on any error
  const int fd = file.descriptor();
  const std::string& temporary = file.temporary_path();
  // Reserve the pixel area now: on a full disk this is a clear error instead of a failed write
  // (or, with a sparse memory-mapped file, SIGBUS) halfway through. Pixels are then written with
  // pwrite, never through a mapping.
  if (header.index_offset > 0) {
    const int reserved = ::posix_fallocate(fd, 0, static_cast<off_t>(header.index_offset));
    if (reserved != 0 && reserved != EOPNOTSUPP && reserved != EINVAL) {
      errno = reserved;
      throw Error(
          temporary + ": " +
          system_error("cannot reserve " + std::to_string(header.index_offset >> 20) + " MiB for the image cache"));
    }
  }

  std::vector<IndexRecord> records(sources.size());
  std::vector<std::string> reasons(sources.size());
  {
    ProgressBar progress("cache " + std::to_string(image_size) + "px", static_cast<int64_t>(sources.size()),
                         show_progress ? stderr : nullptr);
    std::atomic<int64_t> failures{0};
    parallel_for(static_cast<int64_t>(sources.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        IndexRecord& record = records[i];
        const CacheSourceFile& source = sources[i];
        record.slot = static_cast<uint64_t>(i);
        record.source_bytes = source.bytes;
        record.source_mtime_ns = source.mtime_ns;
        ResizedImage image;
        try {
          image = load_resized_image(dicom_path(image_dir, source.patient_id), image_size);
        } catch (const Error& error) {
          record.failed = 1;
          reasons[i] = error.what();
          if (reasons[i].size() > kMaxReasonBytes) reasons[i].resize(kMaxReasonBytes);
          ++failures;
        }
        if (!record.failed) {  // a write error (disk full) stops the build
          record.source_width = image.source_width;
          record.source_height = image.source_height;
          record.pixels_checksum = slot_checksum(
              reinterpret_cast<const uint8_t*>(image.pixels.data()), slot,
              slot_seed(source.patient_id, source.bytes, source.mtime_ns, image.source_width, image.source_height));
          write_all(fd, image.pixels.data(), slot, kPixelsOffset + i * slot, temporary);
        }
        progress.advance(1, failures > 0 ? std::to_string(failures.load()) + " unreadable" : "");
      }
    });
    progress.finish();
  }

  std::vector<uint8_t> index;
  for (size_t i = 0; i < sources.size(); ++i) {
    IndexRecord& record = records[i];
    const std::string& id = sources[i].patient_id;
    record.id_length = static_cast<uint32_t>(id.size());
    record.reason_length = static_cast<uint32_t>(reasons[i].size());
    (record.failed ? header.failure_count : header.stored_count) += 1;
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&record);
    index.insert(index.end(), bytes, bytes + sizeof(record));
    index.insert(index.end(), id.begin(), id.end());
    index.insert(index.end(), reasons[i].begin(), reasons[i].end());
  }
  header.index_bytes = index.size();
  header.file_bytes = header.index_offset + header.index_bytes;
  header.index_checksum = fnv1a(index.data(), index.size());
  header.header_checksum = header_checksum(header);
  write_all(fd, index.data(), index.size(), header.index_offset, temporary);
  write_all(fd, &header, sizeof(header), 0, temporary);
  file.commit();
}

}  // namespace pneumo
