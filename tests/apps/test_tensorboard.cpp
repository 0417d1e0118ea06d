// TensorBoard event files without TensorBoard: CRC-32C against the published check values (RFC
// 3720 B.4 and the CRC catalogue's "123456789"), the TFRecord framing against TensorBoard's own
// Python implementation (tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c; the
// values below were printed by it), histograms against numpy.histogram's counts, and the event
// file writer's refusal to replace a file. The files `pneumo train` writes are read back by
// tests/apps/check_event_files.py (hand-rolled parser, and TensorBoard's loader where installed).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <unistd.h>
#include <vector>

#include "apps/event_file.h"
#include "apps/tensorboard_log.h"
#include "engine/check.h"

using namespace pneumo;
using namespace pneumo::cli;

namespace {
uint32_t crc_of(const std::string& text) { return crc32c(text.data(), text.size()); }
uint32_t read_u32(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  return value;
}
}  // namespace

TEST_CASE("crc32c: the published check values") {
  CHECK(crc_of("123456789") == 0xE3069283u);
  CHECK(crc_of("") == 0u);
  // RFC 3720 (iSCSI) appendix B.4
  CHECK(crc_of(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc_of(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  CHECK(crc_of(ascending) == 0x46DD794Eu);
  CHECK(crc_of(descending) == 0x113FDB5Cu);
  // continuing from a previous CRC equals one pass over the concatenation
  CHECK(crc32c("56789", 5, crc32c("1234", 4)) == 0xE3069283u);
}

TEST_CASE("TFRecord framing: masked CRCs as TensorBoard computes them") {
  CHECK(mask_crc(0xE3069283u) == 0xC78AB0E5u);  // masked_crc32c(b"123456789")
  CHECK(mask_crc(0u) == 0xA282EAD8u);           // masked_crc32c(b"")
  const std::string record = tfrecord_frame("hello");
  REQUIRE(record.size() == 8 + 4 + 5 + 4);
  CHECK(record.substr(0, 8) == std::string("\x05\0\0\0\0\0\0\0", 8));  // uint64 length, little-endian
  CHECK(read_u32(record, 8) == 0x3E04B2EAu);                           // masked_crc32c(struct.pack("<Q", 5))
  CHECK(record.substr(12, 5) == "hello");
  CHECK(read_u32(record, 17) == 0x191C1FBBu);  // masked_crc32c(b"hello")
  const std::string empty = tfrecord_frame("");
  REQUIRE(empty.size() == 16);
  CHECK(read_u32(empty, 8) == 0x07980329u);  // masked_crc32c(struct.pack("<Q", 0))
  CHECK(read_u32(empty, 12) == 0xA282EAD8u);
}

TEST_CASE("make_histogram counts as numpy.histogram") {
  // numpy.histogram([0, 1, 2, 3], bins=3) -> counts [1, 1, 2], edges [0, 1, 2, 3]
  const std::vector<float> four = {0, 1, 2, 3};
  Histogram histogram = make_histogram(four.data(), four.size(), 3);
  CHECK(histogram.bucket == std::vector<double>{1, 1, 2});
  CHECK(histogram.bucket_limit == std::vector<double>{1, 2, 3});
  CHECK(histogram.min == 0);
  CHECK(histogram.max == 3);
  CHECK(histogram.num == 4);
  CHECK(histogram.sum == 6);
  CHECK(histogram.sum_squares == 14);
  // numpy.histogram(np.array([0.1, 0.2, 0.3, 0.7, -0.5], dtype=np.float32).astype(np.float64), bins=4)
  // -> counts [1, 0, 3, 1]
  const std::vector<float> mixed = {0.1f, 0.2f, 0.3f, 0.7f, -0.5f};
  histogram = make_histogram(mixed.data(), mixed.size(), 4);
  CHECK(histogram.bucket == std::vector<double>{1, 0, 3, 1});
  CHECK(histogram.bucket_limit.back() == static_cast<double>(0.7f));
  // all equal: one bucket; non-finite values are left out; nothing finite: no buckets
  const std::vector<float> same = {2, 2, std::numeric_limits<float>::quiet_NaN(), 2};
  histogram = make_histogram(same.data(), same.size());
  CHECK(histogram.bucket == std::vector<double>{3});
  CHECK(histogram.bucket_limit == std::vector<double>{2});
  const std::vector<float> none = {std::numeric_limits<float>::infinity()};
  histogram = make_histogram(none.data(), none.size());
  CHECK(histogram.num == 0);
  CHECK(histogram.bucket.empty());
  CHECK_THROWS_AS(make_histogram(four.data(), four.size(), 0), Error);
}

TEST_CASE("event file writer: appends framed records, never replaces a file") {
  const std::string path = "test_tensorboard_events." + std::to_string(getpid());
  std::remove(path.c_str());
  {
    EventFileWriter writer(path);
    writer.append("ab");
    writer.append("");
  }
  std::string bytes;
  if (std::FILE* file = std::fopen(path.c_str(), "rb")) {
    char buffer[256];
    size_t count = 0;
    while ((count = std::fread(buffer, 1, sizeof buffer, file)) > 0) bytes.append(buffer, count);
    std::fclose(file);
  }
  CHECK(bytes == tfrecord_frame("ab") + tfrecord_frame(""));
  CHECK_THROWS_WITH_AS(EventFileWriter{path}, doctest::Contains(path.c_str()), Error);
  std::remove(path.c_str());
  CHECK(event_file_name(1796585652, "gpu/1", 42) == "events.out.tfevents.1796585652.gpu_1.42.pneumo");
  CHECK(event_file_name(7, "", 1) == "events.out.tfevents.0000000007.host.1.pneumo");
}
