#include "apps/run_files.h"

#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/check.h"
#include "engine/files.h"

namespace pneumo::cli {

void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

std::string read_text(const std::string& path) { return read_regular_file(path, size_t(64) << 20); }

namespace {

// A value is written bare when it reads back the same (no edge spaces, no control bytes, no
// quote or backslash, not empty); else in double quotes with \\ \" \n \r \t \xNN escapes.
bool needs_quotes(const std::string& value) {
  if (value.empty()) return true;
  if (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' || value.back() == '\t') return true;
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') return true;
  return value.front() == '#';
}

std::string quote_value(const std::string& value) {
  std::string text = "\"";
  for (unsigned char c : value) {
    switch (c) {
      case '"': text += "\\\""; break;
      case '\\': text += "\\\\"; break;
      case '\n': text += "\\n"; break;
      case '\r': text += "\\r"; break;
      case '\t': text += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\x%02x", c);
          text += escape;
        } else {
          text += static_cast<char>(c);
        }
    }
  }
  return text + "\"";
}

// The value of a quoted field: `text` starts with '"'; nothing but spaces may follow the closing
// quote. Errors name `where`.
std::string unquote_value(const std::string& text, const std::string& where) {
  std::string value;
  size_t i = 1;
  for (; i < text.size() && text[i] != '"'; ++i) {
    if (text[i] != '\\') {
      value += text[i];
      continue;
    }
    if (++i >= text.size()) break;
    switch (text[i]) {
      case '"': value += '"'; break;
      case '\\': value += '\\'; break;
      case 'n': value += '\n'; break;
      case 'r': value += '\r'; break;
      case 't': value += '\t'; break;
      case 'x': {
        auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
        if (i + 2 >= text.size() || !hex(text[i + 1]) || !hex(text[i + 2]))
          throw Error(where + ": \\x in a quoted value expects two hex digits");
        value += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
        break;
      }
      default: throw Error(where + ": unknown escape \\" + std::string(1, text[i]) + " in a quoted value");
    }
  }
  if (i >= text.size()) throw Error(where + ": quoted value has no closing '\"'");
  if (text.find_first_not_of(" \t\r", i + 1) != std::string::npos)
    throw Error(where + ": unexpected text after the quoted value");
  return value;
}

}  // namespace

std::string format_key_values(const std::map<std::string, std::string>& values) {
  std::string text;
  for (const auto& [key, value] : values)
    text += key + " = " + (needs_quotes(value) ? quote_value(value) : value) + "\n";
  return text;
}

std::map<std::string, std::string> parse_key_values(const std::string& text, const std::string& source) {
  std::map<std::string, std::string> values;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  auto trim = [](const std::string& value) {
    size_t begin = value.find_first_not_of(" \t\r"), end = value.find_last_not_of(" \t\r");
    return begin == std::string::npos ? std::string() : value.substr(begin, end - begin + 1);
  };
  while (std::getline(lines, line)) {
    ++number;
    const std::string where = source + ":" + std::to_string(number);
    std::string content = trim(line);
    if (content.empty() || content[0] == '#') continue;
    size_t equals = content.find('=');
    if (equals == std::string::npos) throw Error(where + ": expected 'key = value', got " + quoted(content, 80));
    const std::string key = trim(content.substr(0, equals));
    const std::string raw = trim(content.substr(equals + 1));
    if (values.count(key)) throw Error(where + ": field " + quoted(key, 80) + " appears twice");
    values[key] = !raw.empty() && raw[0] == '"' ? unquote_value(raw, where) : raw;
  }
  return values;
}

void require_not_an_image_of(const std::string& option, const std::string& path, const std::string& image_dir) {
  if (path.empty() || image_dir.empty()) return;
  std::string extension = std::filesystem::path(path).extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (extension == ".dcm" && same_file(folder_of(path), image_dir))
    throw Error(option + " " + quoted(path, 200) + " is a DICOM name in the image folder " + quoted(image_dir, 200) +
                " that the command reads; choose another path");
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
