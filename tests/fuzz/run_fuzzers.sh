#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DPNEUMO_FUZZ=ON: ASan + UBSan + libFuzzer) and runs each
# for SECONDS (default 25) from its committed seed corpus (tests/fuzz/corpus/<target>/). New
# inputs go to a scratch copy, so the tree is not modified; a crash leaves crash-* in WORK_DIR and
# fails the script. CI runs it with the default; for a longer developer run:
#   tests/fuzz/run_fuzzers.sh 1800 build-fuzz
# Usage: run_fuzzers.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
seconds=${1:-25}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath -m "${2:-$root/build-fuzz}")  # absolute: each target runs inside its work folder
work=$build/fuzz-work
mkdir -p "$build"
targets=(fuzz_labels fuzz_safetensors fuzz_dicom fuzz_cache)
# A fuzzer that cannot be configured or built fails the script (and CI) with a message, never a pass.
if ! CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DPNEUMO_FUZZ=ON -DPNEUMO_CUDA=OFF -DPNEUMO_BUILD_TESTS=OFF \
       -DPNEUMO_BUILD_BENCHMARKS=OFF > "$build/configure.log" 2>&1; then
  cat "$build/configure.log"; echo "FAILED: cannot configure the fuzz targets (needs clang: .ci/install-deps.sh)"; exit 1
fi
if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"; then
  echo "FAILED: the fuzz targets do not build"; exit 1
fi
for target in "${targets[@]}"; do
  [ -x "$build/$target" ] || { echo "FAILED: $build/$target was not built"; exit 1; }
done
status=0
for target in "${targets[@]}"; do
  rm -rf "$work/$target" && mkdir -p "$work/$target/corpus"
  cp -r "$root/tests/fuzz/corpus/$target/." "$work/$target/corpus/"
  echo "== $target: ${seconds}s"
  if ! (cd "$work/$target" && "$build/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
          -timeout=10 -max_len=65536 -print_final_stats=1 corpus > log.txt 2>&1); then
    echo "FAILED: $target (see $work/$target/log.txt)"; tail -30 "$work/$target/log.txt"; status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$work/$target/log.txt" | tr '\n' ' '; echo
  fi
done
exit $status
