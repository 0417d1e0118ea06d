#!/usr/bin/env bash
# CI: every C++/CUDA source the project owns is formatted as .clang-format says (clang-format 14,
# Debian's; .ci/install-deps.sh installs it). Prints the files that are not and how to fix them.
#   .ci/check-format.sh          check (exit 1 when a file differs)
#   .ci/check-format.sh --fix    format them in place
set -uo pipefail
cd "$(dirname "$0")/.."
formatter=$(command -v clang-format-14 || command -v clang-format) || { echo "check-format: clang-format not found" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.inc' | grep -vE '(^|/)(third_party|fixtures)/')
if [ "${1:-}" = --fix ]; then
  "$formatter" -i "${files[@]}"
  exit 0
fi
bad=()
for file in "${files[@]}"; do
  "$formatter" --dry-run --Werror "$file" > /dev/null 2>&1 || bad+=("$file")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted (run .ci/check-format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format says"
