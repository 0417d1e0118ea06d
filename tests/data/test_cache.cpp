// Image cache: pixels equal read_dicom + resize_like_skimage exactly; a stale cache (folder
// changed, other image size, other format version) and every kind of damage (truncation, bad
// magic, header or index bytes changed) is detected and rebuilt, never read.
#include <cmath>
#include <csignal>
#include <cstring>
#include <sys/resource.h>
#include <sys/wait.h>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "data/input/cache.h"
#include "data/input/dataset.h"
#include "data/input/dicom.h"
#include "data/input/resize.h"
#include "data/input/synth.h"
#include "engine/check.h"
#include "tests/third_party/doctest/doctest.h"

namespace fs = std::filesystem;

namespace {

constexpr int kSize = 32;

// A small synthetic dataset shared by the test cases of this file.
const std::string& dataset_dir() {
  static const std::string dir = [] {
    pneumo::SynthConfig config;
    config.out_dir = "/tmp/pneumo_test_cache_" + std::to_string(::getpid());
    fs::remove_all(config.out_dir);
    config.train_images = 6;
    config.test_images = 0;
    config.image_size = 96;
    config.seed = 21;
    pneumo::write_synthetic_dataset(config);
    return config.out_dir;
  }();
  return dir;
}

std::string image_dir() { return dataset_dir() + "/stage_2_train_images"; }

// Reads bytes [offset, offset+count) of a file, or writes them.
std::string read_bytes(const std::string& path, size_t offset, size_t count) {
  std::ifstream file(path, std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  std::string bytes(count, '\0');
  file.read(bytes.data(), static_cast<std::streamsize>(count));
  return bytes;
}
void write_bytes(const std::string& path, size_t offset, const std::string& bytes) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The same FNV-1a 64 the format document specifies, written independently here.
uint64_t fnv1a(const std::string& bytes) {
  uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ULL;
  return hash;
}

// Checks that every cached image equals decode + resize, bit for bit.
void check_contents(const pneumo::ImageCache& cache, const std::string& images) {
  const std::vector<std::string> ids = pneumo::list_dicom_ids(images);
  CHECK(cache.image_count() == static_cast<int64_t>(ids.size()));
  for (const std::string& id : ids) {
    const pneumo::Image image = pneumo::read_dicom(pneumo::dicom_path(images, id));
    const std::vector<float> expected =
        pneumo::resize_like_skimage(image.pixels.data(), image.height, image.width, kSize, kSize);
    int width = 0, height = 0;
    const float* cached = cache.find(id, &width, &height);
    REQUIRE(cached != nullptr);
    CHECK(width == 96);
    CHECK(height == 96);
    CHECK(std::memcmp(cached, expected.data(), expected.size() * sizeof(float)) == 0);
  }
  CHECK(cache.find("not-an-id") == nullptr);
}

}  // namespace

TEST_CASE("a built cache holds exactly what decode + resize give, and is reused") {
  const std::string path = dataset_dir() + "/build.pneumocache";
  CHECK(pneumo::cache_problem(path, image_dir(), kSize) == "no cache file yet");
  {
    pneumo::ImageCache cache = pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
    CHECK(cache.rebuilt());
    CHECK(cache.image_size() == kSize);
    CHECK(cache.failures().empty());
    check_contents(cache, image_dir());
  }
  CHECK(pneumo::cache_problem(path, image_dir(), kSize) == "");
  pneumo::ImageCache again = pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  CHECK(!again.rebuilt());
  check_contents(again, image_dir());
  // Header + one float32 slot per image + the index.
  CHECK(fs::file_size(path) > 4096 + 6u * kSize * kSize * 4);
  CHECK(pneumo::default_cache_path("/c", "/data/stage_2_train_images/", 256) ==
        "/c/stage_2_train_images-256.pneumocache");
}

TEST_CASE("a stale cache is rebuilt: folder changed, other image size, other format version") {
  const std::string path = dataset_dir() + "/stale.pneumocache";
  pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  REQUIRE(pneumo::cache_problem(path, image_dir(), kSize) == "");

  SUBCASE("a file's modification time changes") {
    const std::string file = pneumo::dicom_path(image_dir(), pneumo::list_dicom_ids(image_dir())[0]);
    struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
    CHECK(pneumo::cache_problem(path, image_dir(), kSize) == "the image folder changed since the cache was built");
  }
  SUBCASE("a file is added") {
    fs::copy_file(pneumo::dicom_path(image_dir(), pneumo::list_dicom_ids(image_dir())[0]),
                  image_dir() + "/00000000-added.dcm");
    CHECK(pneumo::cache_problem(path, image_dir(), kSize) == "the image folder changed since the cache was built");
    pneumo::ImageCache cache = pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
    CHECK(cache.rebuilt());
    check_contents(cache, image_dir());
    fs::remove(image_dir() + "/00000000-added.dcm");
  }
  SUBCASE("another image size") {
    CHECK(pneumo::cache_problem(path, image_dir(), 16) == "image size 32, wanted 16");
    pneumo::ImageCache cache = pneumo::ImageCache::open_or_build(path, image_dir(), 16, false);
    CHECK(cache.rebuilt());
    CHECK(cache.image_size() == 16);
    CHECK(pneumo::cache_problem(path, image_dir(), 16) == "");
  }
  SUBCASE("another format version (with a valid header checksum)") {
    uint32_t version = pneumo::kCacheFormatVersion + 1;
    write_bytes(path, 8, std::string(reinterpret_cast<const char*>(&version), 4));
    const uint64_t checksum = fnv1a(read_bytes(path, 0, 96));
    write_bytes(path, 96, std::string(reinterpret_cast<const char*>(&checksum), 8));
    CHECK(pneumo::cache_problem(path, image_dir(), kSize) == "format version 3, this build reads 2");
  }
  pneumo::ImageCache cache = pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  check_contents(cache, image_dir());
  CHECK(pneumo::cache_problem(path, image_dir(), kSize) == "");
}

TEST_CASE("a damaged cache is detected, refused by open() and rebuilt by open_or_build()") {
  const std::string path = dataset_dir() + "/damaged.pneumocache";
  pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  const auto bytes = fs::file_size(path);
  std::string expected_problem;

  SUBCASE("truncated") {
    fs::resize_file(path, bytes - 100);
    expected_problem = "truncated or extended";
  }
  SUBCASE("truncated inside the header") {
    fs::resize_file(path, 50);
    expected_problem = "truncated (50 bytes";
  }
  SUBCASE("bad magic") {
    write_bytes(path, 0, "X");
    expected_problem = "not a pneumo image cache (bad magic)";
  }
  SUBCASE("a header byte changed") {
    write_bytes(path, 40, std::string(1, static_cast<char>(read_bytes(path, 40, 1)[0] ^ 0x10)));
    expected_problem = "damaged header (checksum mismatch)";
  }
  SUBCASE("an index byte changed") {
    write_bytes(path, bytes - 3, std::string(1, static_cast<char>(read_bytes(path, bytes - 3, 1)[0] ^ 0x01)));
    expected_problem = "damaged index (checksum mismatch)";
  }
  SUBCASE("an index record inconsistent with a matching checksum") {
    // Record 0 sits at the index offset (header bytes 64..71); set its slot (bytes 24..31 of the
    // record) to an impossible value and repair the index checksum (header bytes 88..95) and the
    // header checksum, as a buggy writer would.
    uint64_t index_offset = 0, index_bytes = 0;
    std::memcpy(&index_offset, read_bytes(path, 64, 8).data(), 8);
    std::memcpy(&index_bytes, read_bytes(path, 72, 8).data(), 8);
    const uint64_t bad_slot = 1000;
    write_bytes(path, index_offset + 24, std::string(reinterpret_cast<const char*>(&bad_slot), 8));
    const uint64_t index_checksum = fnv1a(read_bytes(path, index_offset, index_bytes));
    write_bytes(path, 88, std::string(reinterpret_cast<const char*>(&index_checksum), 8));
    const uint64_t header_checksum = fnv1a(read_bytes(path, 0, 96));
    write_bytes(path, 96, std::string(reinterpret_cast<const char*>(&header_checksum), 8));
    expected_problem = "damaged index (bad record 0)";
  }
  const std::string problem = pneumo::cache_problem(path, image_dir(), kSize);
  CHECK(problem.rfind(expected_problem, 0) == 0);
  CHECK_THROWS_AS(pneumo::ImageCache::open(path, image_dir(), kSize), pneumo::Error);
  pneumo::ImageCache cache = pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  CHECK(cache.rebuilt());
  check_contents(cache, image_dir());
}

TEST_CASE("unreadable images are recorded in the cache with their reason") {
  const std::string images = dataset_dir() + "/broken_images";
  fs::create_directories(images);
  for (const std::string& id : pneumo::list_dicom_ids(image_dir()))
    fs::copy_file(pneumo::dicom_path(image_dir(), id), pneumo::dicom_path(images, id),
                  fs::copy_options::overwrite_existing);
  std::ofstream(images + "/broken.dcm") << "not a dicom file";
  pneumo::ImageCache cache =
      pneumo::ImageCache::open_or_build(dataset_dir() + "/broken.pneumocache", images, kSize, false);
  CHECK(cache.image_count() == 6);
  REQUIRE(cache.failures().size() == 1);
  CHECK(cache.failures()[0].patient_id == "broken");
  CHECK(cache.failures()[0].reason.find(images + "/broken.dcm: not a DICOM file") == 0);
  CHECK(cache.find("broken") == nullptr);
}

// ---- issue 10: untrusted cache files ----------------------------------------------------------
// Layout offsets (data/input/cache.cpp): header slot_count 24, index_offset 64, index_bytes 72,
// index_checksum 88, header_checksum 96; an index record is 56 bytes: id_length 4,
// source_width 12, slot 24, then the id.

namespace {

uint64_t header_field(const std::string& path, size_t offset) {
  uint64_t value = 0;
  std::memcpy(&value, read_bytes(path, offset, 8).data(), 8);
  return value;
}

void write_u64(const std::string& path, size_t offset, uint64_t value) {
  write_bytes(path, offset, std::string(reinterpret_cast<const char*>(&value), 8));
}

// What a crafted file would do: fix both checksums after changing the index or header.
void recompute_checksums(const std::string& path) {
  const uint64_t index_offset = header_field(path, 64), index_bytes = header_field(path, 72);
  write_u64(path, 88, fnv1a(read_bytes(path, index_offset, index_bytes)));
  write_u64(path, 96, fnv1a(read_bytes(path, 0, 96)));
}

// Byte offset of index record `n` (records hold no reason when every image decoded).
uint64_t record_offset(const std::string& path, int n) {
  uint64_t position = header_field(path, 64);
  for (int i = 0; i < n; ++i) {
    uint32_t id_length = 0;
    std::memcpy(&id_length, read_bytes(path, position + 4, 4).data(), 4);
    position += 56 + id_length;
  }
  return position;
}

}  // namespace

TEST_CASE("flipped bits and NaNs in a pixel slot are caught by the slot checksum and the slot rebuilt") {
  const std::string path = dataset_dir() + "/pixels.pneumocache";
  pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  SUBCASE("a few flipped bits") {
    const size_t at = 4096 + 1000;  // inside slot 0 (ids sorted, slot i = i-th id)
    write_bytes(path, at, std::string(1, static_cast<char>(read_bytes(path, at, 1)[0] ^ 0x24)));
  }
  SUBCASE("a NaN") {
    const float nan = std::nanf("");
    write_bytes(path, 4096 + 2 * kSize * kSize * 4 + 64, std::string(reinterpret_cast<const char*>(&nan), 4));
  }
  // The header and index are intact, so the cache opens; the damage shows on the first read.
  REQUIRE(pneumo::cache_problem(path, image_dir(), kSize) == "");
  {
    pneumo::ImageCache cache = pneumo::ImageCache::open(path, image_dir(), kSize);
    check_contents(cache, image_dir());  // the repaired pixels equal decode + resize exactly
    CHECK(cache.repaired_count() == 1);
  }
  pneumo::ImageCache again = pneumo::ImageCache::open(path, image_dir(), kSize);
  check_contents(again, image_dir());
  CHECK(again.repaired_count() == 0);  // the slot was written back
}

TEST_CASE("a crafted index with recomputed checksums is caught") {
  const std::string path = dataset_dir() + "/crafted.pneumocache";
  pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  SUBCASE("two slots swapped: images would pair with the wrong labels") {
    const uint64_t first = record_offset(path, 0), second = record_offset(path, 1);
    write_u64(path, first + 24, 1);
    write_u64(path, second + 24, 0);
    recompute_checksums(path);
    REQUIRE(pneumo::cache_problem(path, image_dir(), kSize) == "");
    pneumo::ImageCache cache = pneumo::ImageCache::open(path, image_dir(), kSize);
    check_contents(cache, image_dir());  // each slot's checksum is seeded with its id: both caught
    CHECK(cache.repaired_count() == 2);
    return;
  }
  std::string expected;
  SUBCASE("a slot_count whose size check would overflow") {
    write_u64(path, 24, 0x8000000000000000ULL / (kSize * kSize * 4) + 2);
    recompute_checksums(path);
    expected = "damaged header (inconsistent sizes)";
  }
  SUBCASE("a source width of 2^31-1 (box masks would ask for a terabyte)") {
    const int32_t width = 2147483647;
    write_bytes(path, record_offset(path, 3) + 12, std::string(reinterpret_cast<const char*>(&width), 4));
    recompute_checksums(path);
    expected = "damaged index (bad record 3: source size 2147483647x96 out of bounds)";
  }
  SUBCASE("a record's id renamed to another file's") {
    const uint64_t record = record_offset(path, 0);
    std::string id = read_bytes(path, record + 56, 4);
    id[0] = id[0] == 'x' ? 'y' : 'x';
    write_bytes(path, record + 56, id);
    recompute_checksums(path);
    expected = "damaged index (bad record 0: patient id";
  }
  const std::string problem = pneumo::cache_problem(path, image_dir(), kSize);
  CHECK_MESSAGE(problem.rfind(expected, 0) == 0, problem);
  pneumo::ImageCache cache = pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  CHECK(cache.rebuilt());
  check_contents(cache, image_dir());
}

TEST_CASE("a full disk is a clear error, and the temporary file is removed") {
  const std::string path = dataset_dir() + "/full.pneumocache";
  // RLIMIT_FSIZE stands in for a full disk: writes past it fail (EFBIG) once SIGXFSZ is ignored.
  struct rlimit saved;
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 8192;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    pneumo::build_cache(path, image_dir(), kSize, false);
  } catch (const pneumo::Error& error) {
    message = error.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous);
  CHECK_MESSAGE(message.find("cannot reserve") != std::string::npos, message);
  CHECK(message.find('\n') == std::string::npos);
  CHECK(!fs::exists(path));
  for (const auto& entry : fs::directory_iterator(dataset_dir()))
    CHECK(entry.path().filename().string().find("full.pneumocache.tmp") == std::string::npos);
}

TEST_CASE("a temporary file left by a killed cache build is removed by the next build") {
  const std::string path = dataset_dir() + "/killed.pneumocache";
  const pid_t child = ::fork();  // a process id that is certainly dead afterwards
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string stale = path + ".tmp." + std::to_string(child);
  const std::string live = path + ".tmp." + std::to_string(::getppid());  // a live process
  std::ofstream(stale) << "half a cache";
  std::ofstream(live) << "someone else's build";
  pneumo::ImageCache::open_or_build(path, image_dir(), kSize, false);
  CHECK(!fs::exists(stale));
  CHECK(fs::exists(live));
  fs::remove(live);
}

TEST_CASE("cleanup") { fs::remove_all(dataset_dir()); }
