// Test support: runs a program without a shell (no quoting, no injection through paths), for the
// tests that call Python or another tool. Data flows argv -> the child; its stdout optionally
// into a file.
#pragma once
#include <string>
#include <vector>

namespace pneumo::testing {

// Runs argv[0] (looked up in PATH when it has no '/') with argv, waits, and returns its exit
// status (0..255), or -1 when it could not be started or ended by a signal. `stdout_path`
// non-empty: the child's stdout is written to that file (created or truncated); `quiet`: its
// stdout (when not redirected) and stderr go to /dev/null.
int run_process(const std::vector<std::string>& argv, const std::string& stdout_path = "", bool quiet = false);

}  // namespace pneumo::testing
