#include "engine/check.h"

#include <cstdio>
#include <sstream>

namespace pneumo {

std::string quoted(const std::string& value, size_t max_bytes) {
  std::string text = "'";
  const size_t shown_bytes = value.size() > max_bytes ? max_bytes : value.size();
  for (size_t i = 0; i < shown_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02x", c);
      text += escape;
    } else {
      text += static_cast<char>(c);
    }
  }
  text += "'";
  if (shown_bytes < value.size()) text += "... (" + std::to_string(value.size()) + " bytes)";
  return text;
}

void throw_status_error(const char* library, const char* expression, const char* file, int line,
                        const std::string& detail) {
  std::ostringstream message;
  message << library << " error: " << detail << " (" << expression << " at " << file << ":" << line << ")";
  throw Error(message.str());
}

}  // namespace pneumo
