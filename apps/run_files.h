// Small file helpers for the CLI's run directories: key = value files, atomic text writes, a log
// that mirrors what is printed, and Ctrl-C as a flag the training loop polls.
#pragma once
#include <cstdio>
#include <map>
#include <string>

namespace pneumo::cli {

// Writes text to path.tmp, then renames it over path (a failure never leaves a half file).
void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// "key = value" lines; '#' starts a comment line. Errors name the file and line.
std::string format_key_values(const std::map<std::string, std::string>& values);
std::map<std::string, std::string> parse_key_values(const std::string& text, const std::string& source);

void make_directories(const std::string& path);  // mkdir -p; pneumo::Error on failure
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

// A double printed so that it reads back exactly ("%.17g").
std::string exact_number(double value);

}  // namespace pneumo::cli
