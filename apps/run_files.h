// Small file helpers for the CLI's run directories: key = value files, atomic text writes, a log
// that mirrors what is printed, and Ctrl-C as a flag the training loop polls.
#pragma once
#include <cstdio>
#include <map>
#include <string>

#include "engine/files.h"

namespace pneumo::cli {

// Whole text files through engine/files.h: the atomic writer, and a read that refuses folders,
// FIFOs and devices naming the path.
void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// "key = value" lines; '#' starts a comment line. A value reads back exactly as written: one
// with edge spaces, control bytes (a newline), quotes or backslashes is written in double quotes
// with \\ \" \n \r \t \xNN escapes. Errors name the file and line; a key given twice is an error.
std::string format_key_values(const std::map<std::string, std::string>& values);
std::map<std::string, std::string> parse_key_values(const std::string& text, const std::string& source);

bool path_exists(const std::string& path);

// Prints to stdout and appends the same line to a log file (when opened).
class RunLog {
 public:
  RunLog() = default;
  ~RunLog();
  void open(const std::string& path);  // append mode
  void line(const std::string& text);  // text + '\n'
  void silence() { quiet_ = true; }    // prints and writes nothing (the ranks other than 0)
 private:
  std::FILE* file_ = nullptr;
  bool quiet_ = false;
};

// Ctrl-C handling: install() makes SIGINT and SIGTERM set a flag instead of killing the process
// (a second one kills as usual); requested() polls it.
void install_interrupt_handler();
bool interrupt_requested();

// Refuses (one line) an output `path` of `option` that would land on a DICOM of `image_dir`
// (the folder of <patientId>.dcm files a command reads): a .dcm name inside that folder.
void require_not_an_image_of(const std::string& option, const std::string& path, const std::string& image_dir);

// A double printed so that it reads back exactly ("%.17g").
std::string exact_number(double value);

}  // namespace pneumo::cli
