#!/usr/bin/env bash
# CI: clang-tidy (.clang-tidy's checks) over pneumo's C++ sources: every .cpp in the build's
# compile_commands.json except CUDA (.cu) and tests/third_party, fails on any warning. Needs a
# configured build folder (CMake writes compile_commands.json; the generated build-info header
# comes from configuring, nothing has to be built).
#   .ci/check-tidy.sh [BUILD_DIR] [FILE...]     (default build; files: all of them)
# About 5 minutes on the 2-core development machine, busy (6 CPU-minutes; the runs go 2 at a time:
# PNEUMO_TIDY_JOBS=N to change). The whole log goes to BUILD_DIR/clang-tidy.log.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
tidy=$(command -v clang-tidy-14 || command -v clang-tidy) || { echo "check-tidy: clang-tidy not found (Debian: clang-tidy)" >&2; exit 1; }
[ -f "$build/compile_commands.json" ] || { echo "check-tidy: $build/compile_commands.json missing: configure first (cmake -S . -B $build)" >&2; exit 1; }
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(/usr/bin/python3 - "$build/compile_commands.json" "$PWD" <<'PY'
import json, os, sys
root = sys.argv[2]
seen = set()
for entry in json.load(open(sys.argv[1])):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    relative = os.path.relpath(path, root)
    if path.endswith(".cpp") and not relative.startswith("..") and "third_party" not in relative and relative not in seen:
        seen.add(relative)
        print(relative)
PY
)
fi
log=$build/clang-tidy.log
printf '%s\n' "${files[@]}" | xargs -P "${PNEUMO_TIDY_JOBS:-$(nproc)}" -n 4 "$tidy" -p "$build" --quiet > "$log" 2>&1
status=$?
if [ $status -ne 0 ] || grep -qE '(warning|error):' "$log"; then
  grep -E -A3 '(warning|error):' "$log" | head -200 >&2
  echo "check-tidy: FAILED: $(grep -cE '(warning|error):' "$log") finding(s) in ${#files[@]} files (checks: .clang-tidy; all of them in $log)" >&2
  exit 1
fi
echo "check-tidy: ${#files[@]} files clean under .clang-tidy's checks"
