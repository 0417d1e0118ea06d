#!/usr/bin/env bash
# Every benchmark binary behaves like the CLI on its command line: --help prints usage on stdout
# and exits 0; an unknown option or a malformed value is one line on stderr with exit 2; never an
# uncaught exception ("terminate called").
# Usage: test_benchmark_arguments.sh BENCHMARK...
set -u
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for benchmark in "$@"; do
  name=$(basename "$benchmark")
  "$benchmark" --help > "$work/out" 2> "$work/err"
  rc=$?
  if [ $rc -eq 0 ] && grep -q "^usage: $name " "$work/out" && grep -q -- '--help' "$work/out" && [ ! -s "$work/err" ]; then
    pass "$name --help"
  else
    fail "$name --help (rc $rc: $(head -3 "$work/out" "$work/err"))"
  fi
  for bad in "--no-such-option" "--threads=two" "--count many" "--batch 0"; do
    # Only the options a benchmark declares can be malformed; an undeclared one is simply unknown.
    "$benchmark" $bad > "$work/out" 2> "$work/err"
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l < "$work/err")" -eq 1 ] && grep -q "^$name: error: " "$work/err" &&
       ! grep -q "terminate called" "$work/err"; then
      pass "$name $bad: exit 2, $(cat "$work/err")"
    else
      fail "$name $bad (rc $rc, stderr: $(head -3 "$work/err"))"
    fi
  done
  # A runtime failure (pneumo::Error) is one line with exit 1.
  runtime_failure=""
  case "$name" in
    bench_decode) runtime_failure="$work/missing.dcm" ;;
    bench_data_pipeline) runtime_failure="--data $work/nowhere --images 2" ;;
    bench_network | bench_conv2d)
      if ! (command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1); then runtime_failure="--device cuda"; fi ;;
  esac
  if [ -n "$runtime_failure" ]; then
    "$benchmark" $runtime_failure > "$work/out" 2> "$work/err"
    rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l < "$work/err")" -eq 1 ] && grep -q "^$name: error: " "$work/err"; then
      pass "$name $runtime_failure: exit 1, $(cat "$work/err")"
    else
      fail "$name $runtime_failure (rc $rc, stderr: $(head -3 "$work/err"))"
    fi
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
