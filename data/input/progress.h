// Progress bar for long data jobs (cache builds, synthetic data, prediction): work counts in,
// one line of text out on a stream. On a terminal it redraws one line in place (at most ~10 times
// a second); otherwise (logs, pipes) it prints a fresh line only at every 10% or 30 seconds.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace pneumo {

class ProgressBar {
 public:
  // `label` starts every line ("cache 256px"); `total` is the number of units (images).
  ProgressBar(std::string label, int64_t total, std::FILE* stream = stderr);
  ~ProgressBar();  // finishes the bar if finish() was not called
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Thread-safe: adds `count` finished units; `extra` replaces the text shown after the rate.
  void advance(int64_t count = 1, const std::string& extra = "");
  // Prints the final line (done/total, rate, elapsed); later calls do nothing.
  void finish(const std::string& extra = "");

  int64_t done() const;
  // The text of one status line, e.g. "cache [#####.....] 512/1024 50% 120.5 img/s ETA 4s".
  std::string line() const;

 private:
  void print_locked(bool final_line);
  std::string line_locked() const;

  std::string label_;
  int64_t total_;
  std::FILE* stream_;
  bool terminal_;
  int64_t done_ = 0;
  bool finished_ = false;
  std::string extra_;
  int last_decile_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
  mutable std::mutex mutex_;
};

// "4s", "2m05s", "1h03m": a duration for people.
std::string format_duration(double seconds);

}  // namespace pneumo
