# Sourced by the shell tests (tests/cli, tests/distributed, tests/apps, tests/install): counters
# and the three helpers every one of them uses. Each test ends with
# `echo "$passed passed, $failed failed"` and exits non-zero when something failed.
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
