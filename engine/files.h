// The one place pneumo touches the file system for writing: folders made without a shell, the
// atomic writer every output goes through (a temporary in the same folder, fsync, rename, fsync
// the folder), the check that an output never replaces an input, stale temporaries of killed
// writers, and the lock that keeps two processes out of one run directory.
// Paths are data: nothing here passes a path to a shell or trims, splits or re-reads it as text.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace pneumo {

// mkdir -p with std::filesystem: every missing folder of `path` is created. pneumo::Error naming
// the path when it cannot be (a file in the way, no permission). An empty path is an error.
void make_directories(const std::string& path);

// The folder a file path lives in ("." for a bare name, "/" for "/name").
std::string folder_of(const std::string& path);

// A file written in full or not at all. The constructor creates <path>.tmp-<pid>-<n> beside
// `path` (after removing the temporaries that dead writers left there); commit() fsyncs it,
// renames it over `path` and fsyncs the folder, so after a crash `path` holds either the old or
// the new bytes. The destructor removes the temporary unless commit() succeeded: every error
// path cleans up. Errors name `path` and what failed.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int descriptor() const { return descriptor_; }  // opened read-write (the image cache pwrites)
  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_; }
  void write(const void* data, size_t bytes);  // appends at the current offset
  void commit();

 private:
  std::string path_, temporary_;
  int descriptor_ = -1;
  bool committed_ = false;
};

// Whole-file atomic writes through AtomicFile.
void write_file_atomic(const std::string& path, const void* data, size_t bytes);
void write_file_atomic(const std::string& path, const std::string& bytes);

// The contents of a regular file, at most max_bytes (an Error naming the path when it is a
// folder, a device or a FIFO, missing, unreadable, or larger).
std::string read_regular_file(const std::string& path, size_t max_bytes = size_t(1) << 30);

// Removes the temporary files a killed writer left beside `final_path`: every entry of its folder
// named <file name of final_path><infix><pid>... whose process <pid> no longer exists (a live
// writer's file is left alone). Returns how many were removed; never throws.
int remove_stale_temporary_files(const std::string& final_path, const std::string& infix);
// The same for every file of `folder`: names holding ".tmp-<pid>" or ".tmp.<pid>" of a dead
// process, and the pid-less "<name>.tmp" of older writers.
int remove_stale_temporary_files_in(const std::string& folder);

// True when both paths name the same file: the same inode when both exist (links and hard links
// resolved), else the same absolute, normalized path with links of the existing part resolved.
bool same_file(const std::string& a, const std::string& b);

// A command's file arguments as (option, path) pairs, e.g. {"--checkpoint", "run/best.safetensors"}.
using NamedPaths = std::vector<std::pair<std::string, std::string>>;
// Refuses (pneumo::Error, one line) when an output is the same file as an input or as another
// output: "--onnx X is the same file as the input --checkpoint Y: ...". Empty paths are skipped.
void require_outputs_distinct(const NamedPaths& outputs, const NamedPaths& inputs);

// An exclusive lock on a folder (flock on <folder>/.pneumo.lock), held while this object lives
// and released by the kernel if the process dies. The lock file records the holder (pid, host,
// start time, command) so the refusal can say who holds it:
//   "runs/a: in use by pneumo train (pid 4242 on host, since 2026-12-06 13:40:02); ..."
class FolderLock {
 public:
  FolderLock(const std::string& folder, const std::string& holder_description);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  static const char* file_name() { return ".pneumo.lock"; }

 private:
  int descriptor_ = -1;
};

}  // namespace pneumo
