#include "apps/run_files.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/check.h"

namespace pneumo::cli {

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (!file) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  ok = (std::fclose(file) == 0) && ok;
  if (!ok || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw Error(path + ": write failed (" + std::strerror(errno) + ")");
  }
}

std::string read_text(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(path + ": cannot open for reading");
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string format_key_values(const std::map<std::string, std::string>& values) {
  std::string text;
  for (const auto& [key, value] : values) text += key + " = " + value + "\n";
  return text;
}

std::map<std::string, std::string> parse_key_values(const std::string& text, const std::string& source) {
  std::map<std::string, std::string> values;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  auto trim = [](std::string value) {
    size_t begin = value.find_first_not_of(" \t\r"), end = value.find_last_not_of(" \t\r");
    return begin == std::string::npos ? std::string() : value.substr(begin, end - begin + 1);
  };
  while (std::getline(lines, line)) {
    ++number;
    std::string content = trim(line);
    if (content.empty() || content[0] == '#') continue;
    size_t equals = content.find('=');
    if (equals == std::string::npos)
      throw Error(source + ":" + std::to_string(number) + ": expected 'key = value', got '" + content + "'");
    values[trim(content.substr(0, equals))] = trim(content.substr(equals + 1));
  }
  return values;
}

void make_directories(const std::string& path) {
  std::string partial;
  std::istringstream parts(path);
  std::string part;
  if (!path.empty() && path[0] == '/') partial = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    partial += part + "/";
    if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
      throw Error(partial + ": cannot create directory (" + std::strerror(errno) + ")");
  }
}

bool path_exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

void RunLog::open(const std::string& path) {
  if (file_) std::fclose(file_);
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw Error(path + ": cannot open the log (" + std::strerror(errno) + ")");
}

void RunLog::line(const std::string& text) {
  if (quiet_) return;
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
  if (file_) {
    std::fprintf(file_, "%s\n", text.c_str());
    std::fflush(file_);
  }
}

namespace {
std::atomic<bool> interrupted{false};
void on_interrupt(int) {
  interrupted = true;
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C (or SIGTERM) ends the process at once
  std::signal(SIGTERM, SIG_DFL);
}
}  // namespace

void install_interrupt_handler() {
  interrupted = false;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);  // what mpirun, srun and job schedulers send to stop a job
}

bool interrupt_requested() { return interrupted.load(); }

std::string exact_number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace pneumo::cli
