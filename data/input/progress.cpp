// ProgressBar: counts under a mutex; prints in place on a TTY ('\r' + clear to end of line),
// sparse full lines elsewhere.
#include "data/input/progress.h"

#include <algorithm>
#include <cmath>

#include <unistd.h>

namespace pneumo {

namespace {
constexpr double kTerminalRedrawSeconds = 0.1;
constexpr double kLogLineSeconds = 30.0;
constexpr int kBarWidth = 24;
}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char text[32];
  long total = std::lround(seconds);
  if (total < 60) {
    std::snprintf(text, sizeof(text), "%lds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof(text), "%ldm%02lds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof(text), "%ldh%02ldm", total / 3600, (total % 3600) / 60);
  }
  return text;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::FILE* stream)
    : label_(std::move(label)),
      total_(std::max<int64_t>(0, total)),
      stream_(stream),
      terminal_(stream != nullptr && ::isatty(::fileno(stream))),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

int64_t ProgressBar::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

std::string ProgressBar::line() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return line_locked();
}

std::string ProgressBar::line_locked() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 1.0;
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "]";
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  char text[160];
  std::snprintf(text, sizeof(text), "%s %s %lld/%lld %3d%% %.1f/s", label_.c_str(), bar.c_str(),
                static_cast<long long>(done_), static_cast<long long>(total_), static_cast<int>(fraction * 100), rate);
  std::string result = text;
  if (finished_ || done_ >= total_) {
    result += " in " + format_duration(elapsed);
  } else if (rate > 0) {
    result += " ETA " + format_duration((total_ - done_) / rate);
  }
  if (!extra_.empty()) result += " " + extra_;
  return result;
}

void ProgressBar::print_locked(bool final_line) {
  if (stream_ == nullptr) return;
  std::string text = line_locked();
  if (terminal_) {
    std::fprintf(stream_, "\r%s\033[K%s", text.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stream_, "%s\n", text.c_str());
  }
  std::fflush(stream_);
  last_print_ = std::chrono::steady_clock::now();
}

void ProgressBar::advance(int64_t count, const std::string& extra) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  done_ += count;
  if (!extra.empty()) extra_ = extra;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (terminal_) {
    if (since >= kTerminalRedrawSeconds) print_locked(false);
    return;
  }
  const int decile = total_ > 0 ? static_cast<int>(std::min<int64_t>(10, done_ * 10 / total_)) : 10;
  if ((decile > last_decile_ && decile < 10) || since >= kLogLineSeconds) {
    last_decile_ = decile;
    print_locked(false);
  }
}

void ProgressBar::finish(const std::string& extra) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  if (!extra.empty()) extra_ = extra;
  finished_ = true;
  print_locked(true);
}

}  // namespace pneumo
