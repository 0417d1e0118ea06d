// Event files as TensorBoard reads them: a TFRecord file, each record framed as
//   uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes | payload |
//   uint32 masked CRC32C of the payload
// where the payload is one serialized Event (apps/tensorboard.proto) and the mask is
// ((crc >> 15) | (crc << 17)) + 0xa282ead8 (TensorFlow's crc32c::Mask). No protobuf is needed
// here: apps/tensorboard_log.h builds the payloads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pneumo::cli {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `bytes`, continuing from `crc` (the
// CRC of what came before; 0 to start): crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t bytes, uint32_t crc = 0);
// The TFRecord mask of a CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, modulo 2^32.
uint32_t mask_crc(uint32_t crc);
// One record: the length, its masked CRC, the payload and its masked CRC (16 + payload bytes).
std::string tfrecord_frame(const std::string& payload);

// An event file opened for appending records. The file is created (never replaced: an existing
// one is an error naming it) and each record goes to the kernel in one write before
// append() returns, so a process killed at any point leaves every record appended before it
// complete (a reader stops at a torn last record). Errors name the file.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::string& path);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void append(const std::string& payload);  // tfrecord_frame(payload), written in full
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int descriptor_ = -1;
};

// The name TensorBoard looks for ("tfevents" in it): events.out.tfevents.<seconds, 10 digits>.
// <host>.<pid>.pneumo; `seconds` since the epoch, so the files of one run sort in the order
// they were started.
std::string event_file_name(int64_t seconds, const std::string& host, int64_t pid);

}  // namespace pneumo::cli
