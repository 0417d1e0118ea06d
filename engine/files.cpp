#include "engine/files.h"

#include <cerrno>
#include <cstdlib>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

namespace pneumo {

int remove_stale_temporary_files(const std::string& final_path, const std::string& infix) {
  const size_t slash = final_path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : final_path.substr(0, slash));
  const std::string prefix = (slash == std::string::npos ? final_path : final_path.substr(slash + 1)) + infix;
  DIR* directory = ::opendir(folder.c_str());
  if (directory == nullptr) return 0;
  int removed = 0;
  while (const dirent* entry = ::readdir(directory)) {
    const std::string name = entry->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const char* digits = name.c_str() + prefix.size();
    char* end = nullptr;
    errno = 0;
    const long pid = std::strtol(digits, &end, 10);
    if (end == digits || errno != 0 || pid <= 0 || (*end != '\0' && *end != '-' && *end != '.')) continue;
    if (pid == static_cast<long>(::getpid())) continue;  // this process's own writers
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    if (::unlink((folder + "/" + name).c_str()) == 0) ++removed;
  }
  ::closedir(directory);
  return removed;
}

}  // namespace pneumo
