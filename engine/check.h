// Status checks: every CUDA, cuDNN and cuBLAS call goes through one of these macros, which throw
// pneumo::Error naming the file, the line and the failing expression. Host-only header.
#pragma once
#include <stdexcept>
#include <string>

namespace pneumo {

// The one exception type the engine throws; what() is a one-line message a user can act on.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Untrusted text (a patientId, a CSV field, a tensor name) made safe for a one-line message:
// in single quotes, control bytes and bytes >= 0x7f written as \xNN, and cut after
// `max_bytes` input bytes with "..." and the full length.
std::string quoted(const std::string& value, size_t max_bytes = 40);

[[noreturn]] void throw_status_error(const char* library, const char* expression, const char* file, int line,
                                     const std::string& detail);

}  // namespace pneumo

// Throws pneumo::Error with file and line when `condition` is false.
#define PNEUMO_REQUIRE(condition, message)                                                               \
  do {                                                                                                   \
    if (!(condition)) ::pneumo::throw_status_error("pneumo", #condition, __FILE__, __LINE__, (message)); \
  } while (0)
