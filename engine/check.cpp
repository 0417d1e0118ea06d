#include "engine/check.h"

#include <sstream>

namespace pneumo {

void throw_status_error(const char* library, const char* expression, const char* file, int line,
                        const std::string& detail) {
  std::ostringstream message;
  message << library << " error: " << detail << " (" << expression << " at " << file << ":" << line
          << ")";
  throw Error(message.str());
}

}  // namespace pneumo
