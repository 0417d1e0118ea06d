#include "engine/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include "engine/check.h"

namespace pneumo {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int code) { return std::strerror(code); }

bool process_gone(long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// The pid in `name` right after `marker` (".tmp-" or ".tmp."), or -1.
long pid_after(const std::string& name, size_t at) {
  const char* digits = name.c_str() + at;
  char* end = nullptr;
  errno = 0;
  const long pid = std::strtol(digits, &end, 10);
  if (end == digits || errno != 0 || pid <= 0 || (*end != '\0' && *end != '-' && *end != '.')) return -1;
  return pid;
}

}  // namespace

void make_directories(const std::string& path) {
  if (path.empty()) throw Error("an empty path names no folder");
  std::error_code error;
  const fs::path folder(path);
  if (fs::is_directory(folder, error)) return;
  fs::create_directories(folder, error);
  if (error || !fs::is_directory(folder)) {
    // Name the part that is in the way: the first existing prefix that is not a folder.
    fs::path prefix;
    for (const fs::path& part : folder) {
      prefix /= part;
      std::error_code ignored;
      if (fs::exists(prefix, ignored) && !fs::is_directory(prefix, ignored))
        throw Error(quoted(path, 200) + ": cannot create the folder: " + quoted(prefix.string(), 200) +
                    " exists and is not a folder");
    }
    throw Error(quoted(path, 200) + ": cannot create the folder (" + (error ? error.message() : "unknown error") + ")");
  }
}

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// ---- AtomicFile -------------------------------------------------------------------------------

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  static std::atomic<int> counter{0};  // distinct names for concurrent writers in one process
  if (path.empty()) throw Error("cannot write a file at an empty path");
  if (!path.empty() && path.back() == '/') throw Error(path + ": expected a file path, got a folder path");
  std::error_code error;
  if (fs::is_directory(path, error)) throw Error(path + ": is a folder; expected a file path to write");
  remove_stale_temporary_files(path, ".tmp-");  // left by a writer that was killed
  temporary_ = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  descriptor_ = ::open(temporary_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (descriptor_ < 0) {
    const int code = errno;
    throw Error(path + ": cannot create the temporary file " + temporary_ + " (" + errno_text(code) +
                (code == ENOENT ? ": the folder does not exist" : "") + ")");
  }
}

AtomicFile::~AtomicFile() {
  if (descriptor_ >= 0) ::close(descriptor_);
  if (!committed_ && !temporary_.empty()) ::unlink(temporary_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  const char* cursor = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(descriptor_, cursor, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": write failed (" + errno_text(errno) + ")");
    }
    cursor += written;
    bytes -= static_cast<size_t>(written);
  }
}

void AtomicFile::commit() {
  if (committed_) throw Error(path_ + ": committed twice");
  if (::fsync(descriptor_) != 0) throw Error(path_ + ": fsync failed (" + errno_text(errno) + ")");
  const int descriptor = descriptor_;
  descriptor_ = -1;
  if (::close(descriptor) != 0) throw Error(path_ + ": close failed (" + errno_text(errno) + ")");
  if (::rename(temporary_.c_str(), path_.c_str()) != 0)
    throw Error(path_ + ": cannot rename " + temporary_ + " into place (" + errno_text(errno) + ")");
  committed_ = true;
  // Make the rename itself durable; failing to open the folder is harmless.
  const int folder = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder >= 0) {
    ::fsync(folder);
    ::close(folder);
  }
}

void write_file_atomic(const std::string& path, const void* data, size_t bytes) {
  AtomicFile file(path);
  file.write(data, bytes);
  file.commit();
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

std::string read_regular_file(const std::string& path, size_t max_bytes) {
  if (path.empty()) throw Error("cannot read a file at an empty path");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (descriptor < 0) throw Error(path + ": cannot open for reading (" + errno_text(errno) + ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{descriptor};
  struct stat info {};
  if (::fstat(descriptor, &info) != 0) throw Error(path + ": cannot read (" + errno_text(errno) + ")");
  if (S_ISDIR(info.st_mode)) throw Error(path + ": is a folder; expected a file");
  if (!S_ISREG(info.st_mode)) throw Error(path + ": is not a regular file (a device, FIFO or socket); expected a file");
  if (static_cast<uint64_t>(info.st_size) > max_bytes)
    throw Error(path + ": " + std::to_string(info.st_size) + " bytes, more than the " + std::to_string(max_bytes) +
                " bytes expected of this file");
  const int flags = ::fcntl(descriptor, F_GETFL);
  if (flags >= 0) ::fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK);
  std::string text(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t got = ::read(descriptor, text.data() + done, text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(path + ": read failed (" + errno_text(errno) + ")");
    if (got == 0) break;  // shrank while reading
    done += static_cast<size_t>(got);
  }
  text.resize(done);
  return text;
}

// ---- stale temporaries ----------------------------------------------------------------------------

namespace {

// Unlinks every regular file of `folder` whose name `stale` accepts; returns how many. Never throws.
template <typename Stale>
int remove_files_if(const std::string& folder, Stale stale) {
  std::error_code error;
  fs::directory_iterator entries(folder, error);
  if (error) return 0;
  int removed = 0;
  for (const fs::directory_entry& entry : entries) {
    if (!entry.is_regular_file(error) || !stale(entry.path().filename().string())) continue;
    if (::unlink(entry.path().c_str()) == 0) ++removed;
  }
  return removed;
}

// A temporary whose writer, named by the pid at `at`, is gone (never this process's own).
bool writer_gone(const std::string& name, size_t at) {
  const long pid = pid_after(name, at);
  return pid > 0 && pid != static_cast<long>(::getpid()) && process_gone(pid);
}

}  // namespace

int remove_stale_temporary_files(const std::string& final_path, const std::string& infix) {
  const size_t slash = final_path.find_last_of('/');
  const std::string prefix = (slash == std::string::npos ? final_path : final_path.substr(slash + 1)) + infix;
  return remove_files_if(folder_of(final_path), [&](const std::string& name) {
    return name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
           writer_gone(name, prefix.size());
  });
}

int remove_stale_temporary_files_in(const std::string& folder) {
  return remove_files_if(folder, [](const std::string& name) {
    const size_t at = name.rfind(".tmp");
    if (at == std::string::npos || at == 0) return false;
    if (at + 4 == name.size()) return true;  // "<name>.tmp": older writers' fixed name; no writer of today uses it
    return (name[at + 4] == '-' || name[at + 4] == '.') && writer_gone(name, at + 5);
  });
}

// ---- outputs never replace inputs -------------------------------------------------------------------

bool same_file(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code error;
  if (fs::exists(a, error) && fs::exists(b, error)) return fs::equivalent(a, b, error) && !error;
  const fs::path left = fs::weakly_canonical(fs::absolute(a, error), error);
  if (error) return false;
  const fs::path right = fs::weakly_canonical(fs::absolute(b, error), error);
  if (error) return false;
  return left.lexically_normal() == right.lexically_normal();
}

void require_outputs_distinct(const NamedPaths& outputs, const NamedPaths& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [option, path] = outputs[i];
    if (path.empty()) continue;
    for (const auto& [input_option, input] : inputs)
      if (same_file(path, input))
        throw Error(option + " " + quoted(path, 200) + " is the same file as the input " + input_option + " " +
                    quoted(input, 200) + ": writing it would destroy the input; choose another path");
    for (size_t j = 0; j < i; ++j)
      if (same_file(path, outputs[j].second))
        throw Error(option + " " + quoted(path, 200) + " is the same file as " + outputs[j].first + " " +
                    quoted(outputs[j].second, 200) + ": one would overwrite the other; choose another path");
  }
}

// ---- FolderLock -------------------------------------------------------------------------------

FolderLock::FolderLock(const std::string& folder, const std::string& holder_description) {
  const std::string path = folder + "/" + file_name();
  descriptor_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (descriptor_ < 0) throw Error(path + ": cannot create the lock file (" + errno_text(errno) + ")");
  if (::flock(descriptor_, LOCK_EX | LOCK_NB) != 0) {
    const int code = errno;
    std::string holder;
    char buffer[512];
    const ssize_t got = ::pread(descriptor_, buffer, sizeof buffer, 0);
    if (got > 0) holder.assign(buffer, static_cast<size_t>(got));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(descriptor_);
    descriptor_ = -1;
    if (code == EWOULDBLOCK)
      throw Error(folder + ": in use by " + (holder.empty() ? std::string("another process") : quoted(holder, 300)) +
                  "; wait for it to finish or stop it first (two processes would write the same files)");
    throw Error(path + ": cannot lock (" + errno_text(code) + ")");
  }
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  char when[64] = "";
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  if (::localtime_r(&now, &local)) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &local);
  const std::string record =
      holder_description + " (pid " + std::to_string(::getpid()) + " on " + host + ", since " + when + ")\n";
  if (::ftruncate(descriptor_, 0) == 0) {
    const ssize_t ignored = ::pwrite(descriptor_, record.data(), record.size(), 0);
    (void)ignored;
  }
}

FolderLock::~FolderLock() {
  if (descriptor_ >= 0) ::close(descriptor_);  // closing releases the flock; the file stays (harmless)
}

}  // namespace pneumo
