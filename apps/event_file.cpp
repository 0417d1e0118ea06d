#include "apps/event_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/check.h"

namespace pneumo::cli {

namespace {

// The byte-at-a-time table of the reflected Castagnoli polynomial.
std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    table[byte] = crc;
  }
  return table;
}

void put_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}

}  // namespace

uint32_t crc32c(const void* data, size_t bytes, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc32c_table();
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < bytes; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string tfrecord_frame(const std::string& payload) {
  std::string record;
  record.reserve(payload.size() + 16);
  const uint64_t length = payload.size();
  for (int i = 0; i < 8; ++i) record.push_back(static_cast<char>((length >> (8 * i)) & 0xffu));
  put_u32(record, mask_crc(crc32c(record.data(), 8)));
  record += payload;
  put_u32(record, mask_crc(crc32c(payload.data(), payload.size())));
  return record;
}

EventFileWriter::EventFileWriter(const std::string& path) : path_(path) {
  descriptor_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (descriptor_ < 0) throw Error(path + ": cannot create the TensorBoard event file (" + std::strerror(errno) + ")");
}

EventFileWriter::~EventFileWriter() {
  if (descriptor_ >= 0) ::close(descriptor_);
}

void EventFileWriter::append(const std::string& payload) {
  const std::string record = tfrecord_frame(payload);
  size_t written = 0;
  while (written < record.size()) {
    const ssize_t count = ::write(descriptor_, record.data() + written, record.size() - written);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0)
      throw Error(path_ + ": cannot append a TensorBoard record (" +
                  (count < 0 ? std::string(std::strerror(errno)) : std::string("nothing written")) + ")");
    written += static_cast<size_t>(count);
  }
}

std::string event_file_name(int64_t seconds, const std::string& host, int64_t pid) {
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%010lld", static_cast<long long>(seconds));
  std::string safe_host;
  for (char c : host)  // a file name: no folder separators or control bytes from the host name
    safe_host.push_back((c == '/' || static_cast<unsigned char>(c) < 0x20) ? '_' : c);
  return "events.out.tfevents." + std::string(stamp) + "." + (safe_host.empty() ? "host" : safe_host) + "." +
         std::to_string(pid) + ".pneumo";
}

}  // namespace pneumo::cli
