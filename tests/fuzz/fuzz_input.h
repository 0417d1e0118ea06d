// Shared by the libFuzzer targets: the readers under test take paths, so each input is written to
// a per-process file in /dev/shm (or /tmp) first; a pneumo::Error is the expected outcome for bad
// input, anything else (a crash, a sanitizer report, a hang, a huge allocation) is a finding.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace pneumo_fuzz {

inline std::string input_path(const char* suffix) {
  const char* folder = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(folder) + "/pneumo-fuzz-" + std::to_string(::getpid()) + suffix;
}

inline void write_input(const std::string& path, const uint8_t* data, size_t size) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return;
  if (size > 0) std::fwrite(data, 1, size, file);
  std::fclose(file);
}

}  // namespace pneumo_fuzz
