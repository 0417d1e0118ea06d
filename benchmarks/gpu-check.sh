#!/usr/bin/env bash
# gpu-check.sh: the whole GPU check, in one call, on a machine with an NVIDIA GPU, the CUDA
# toolkit and PyTorch (pip wheels) but maybe no Debian packages (no OpenBLAS, DCMTK or stb;
# doctest is vendored). It
#   1. finds the tools and the CUDA libraries (toolkit, or the CUDA 13 wheels' nvidia/*/lib),
#   2. configures and builds with every core, keep-going (a broken target never hides the rest),
#   3. runs every test that built, one CTest timeout per test, with PNEUMO_CUDA_SYNC=1 so an
#      asynchronous GPU fault is reported at the kernel launch that caused it,
#   4. runs compute-sanitizer (memcheck, racecheck) over the binaries that launch our kernels,
#   5. times the notebook network (bench_network) against PyTorch, full fp32 and TF32 on both sides,
# then writes ONE report. Skipped GPU tests are a failure of the check when DEVICE=cuda.
#
#   benchmarks/gpu-check.sh [--dry-run] [--allow-no-gpu] [--out DIR]
#
# --dry-run       detect and print the plan (tools, libraries, commands); build and run nothing.
# --allow-no-gpu  to try this script on a CPU-only machine: a missing driver does not stop it;
#                 the GPU tests then skip and the report shows that as a failure.
# --out DIR       where the report and the logs go (default: $OUT when set, else
#                 BUILD_DIR/gpu-check-out): report.txt, failures.txt, bench.txt and logs.tar.gz.
# Environment: BUILD_DIR (build-gpu), DEVICE (cuda), BATCH (32), REPEATS (5), SIZE (256),
# PYTHON (python3), CUDA_ARCH (native with a GPU, else 90), SKIP_BUILD=1, CTEST_REGEX,
# BUDGET_S (480), JOBS (nproc), TEST_TIMEOUT_S (60, per test), SANITIZE (1; 0 skips stage 4).
set -u
set -o pipefail

START_S=$(date +%s)
BUDGET_S=${BUDGET_S:-480}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-gpu}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-32}
REPEATS=${REPEATS:-5}
SIZE=${SIZE:-256}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
SKIP_BUILD=${SKIP_BUILD:-0}
CTEST_REGEX=${CTEST_REGEX:-}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-60}
SANITIZE=${SANITIZE:-1}
DRY_RUN=0
ALLOW_NO_GPU=0
OUT_DIR=${OUT:-}
while (( $# )); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --allow-no-gpu) ALLOW_NO_GPU=1 ;;
    --out) [[ $# -ge 2 ]] || { echo "gpu-check.sh: --out needs a folder" >&2; exit 2; }; OUT_DIR=$2; shift ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
OUT_DIR=${OUT_DIR:-$BUILD_DIR/gpu-check-out}
LOG_DIR=$BUILD_DIR/gpu-check-logs

REPORT=()  # lines of the final report
FAILURES=0
note() { echo "[gpu-check $(( $(date +%s) - START_S ))s] $*" >&2; }
report() { local line; while IFS= read -r line; do REPORT+=("$line"); done <<< "$*"; }
fail() { report "FAILED: $*"; FAILURES=$((FAILURES + 1)); note "FAILED: $*"; }
remaining() { echo $(( BUDGET_S - ($(date +%s) - START_S) )); }
# Seconds for the next stage: at most $1, leaving $2 seconds for the stages after it.
stage_limit() {
  local cap=$1 reserve=$2 left
  left=$(( $(remaining) - reserve ))
  (( left < cap )) && cap=$left
  (( cap < 15 )) && cap=15
  echo "$cap"
}
# Runs "$@" under a hard limit of $1 seconds (TERM, then KILL 10 s later).
limited() { local seconds=$1; shift; timeout -k 10 "$seconds" "$@"; }
finish() {
  local text
  text=$(
    echo "==================== pneumo GPU check report ===================="
    local line
    for line in "${REPORT[@]}"; do echo "$line"; done
    echo "total time $(( $(date +%s) - START_S )) s; $FAILURES failure(s); report and logs in $OUT_DIR"
    echo "================================================================="
  )
  echo
  echo "$text"
  if mkdir -p "$OUT_DIR" 2>/dev/null; then
    echo "$text" > "$OUT_DIR/report.txt"
    [[ -d $LOG_DIR ]] && tar -czf "$OUT_DIR/logs.tar.gz" -C "$(dirname "$LOG_DIR")" "$(basename "$LOG_DIR")" 2>/dev/null
  fi
  exit $(( FAILURES > 0 ))
}

# ---- 1. environment ------------------------------------------------------------------------
report "machine: $(uname -n), $(nproc 2>/dev/null) CPU cores, device $DEVICE, budget ${BUDGET_S}s"
HAVE_DRIVER=0
if command -v nvidia-smi >/dev/null 2>&1 && timeout 20 nvidia-smi -L >/dev/null 2>&1; then
  HAVE_DRIVER=1
  report "gpu: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
elif [[ $DEVICE == cuda && $ALLOW_NO_GPU == 0 ]]; then
  fail "no NVIDIA driver answers (nvidia-smi missing or failing); --allow-no-gpu tries the rest anyway"
else
  report "gpu: none (nvidia-smi missing or failing); continuing because of --allow-no-gpu"
fi

NVCC=""
for candidate in "${CUDACXX:-}" "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc; do
  if [[ -n $candidate && -x $candidate ]]; then NVCC=$candidate; break; fi
done
if [[ -n $NVCC ]]; then
  report "nvcc: $NVCC ($("$NVCC" --version | grep -o 'release [0-9.]*' | head -1))"
  CUDA_HOME_GUESS=$(cd "$(dirname "$NVCC")/.." && pwd)
else
  fail "nvcc not found (looked at \$CUDACXX, PATH and /usr/local/cuda/bin): install the CUDA toolkit"
  CUDA_HOME_GUESS=/usr/local/cuda
fi
if command -v cmake >/dev/null 2>&1; then
  report "cmake: $(cmake --version | head -1)"
else
  fail "cmake not found (need >= 3.24; 'pip install cmake' works)"
fi
TORCH_LINE=$(timeout 60 "$PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)
report "python: $(command -v "$PYTHON") torch $TORCH_LINE"

# CUDA libraries from the Python wheels: nvidia-* packages install under nvidia/<name>/lib (CUDA 12)
# or nvidia/cu13/lib (CUDA 13). `nvidia` is a namespace package: look through its __path__.
WHEEL_LIBRARY_DIRS=$(timeout 60 "$PYTHON" - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit
found = []
for root in list(nvidia.__path__):
    for lib in sorted(glob.glob(os.path.join(root, "*", "lib"))):
        if glob.glob(os.path.join(lib, "lib*.so*")):
            found.append(lib)
print(":".join(found))
PY
)
LIBRARY_DIRS=()
[[ -n $WHEEL_LIBRARY_DIRS ]] && IFS=: read -r -a LIBRARY_DIRS <<< "$WHEEL_LIBRARY_DIRS"
find_library_dir() {  # $1 = library file pattern; prints the first folder holding it
  local dir
  for dir in "$CUDA_HOME_GUESS/lib64" "$CUDA_HOME_GUESS"/targets/*/lib "${LIBRARY_DIRS[@]}"; do
    compgen -G "$dir/$1" >/dev/null 2>&1 && { echo "$dir"; return 0; }
  done
  return 1
}
# cuDNN's header: beside the toolkit, else in the wheel folder next to its lib.
CUDNN_ROOT=""
for include in "$CUDA_HOME_GUESS/include" /usr/include /usr/include/x86_64-linux-gnu; do
  [[ -f $include/cudnn.h ]] && { CUDNN_ROOT=$(dirname "$include"); break; }
done
if [[ -z $CUDNN_ROOT ]]; then
  for dir in "${LIBRARY_DIRS[@]}"; do
    if [[ -f $dir/../include/cudnn.h ]] && compgen -G "$dir/libcudnn.so*" >/dev/null; then
      CUDNN_ROOT=$(cd "$dir/.." && pwd)
      # find_library wants libcudnn.so; the wheel ships libcudnn.so.9.
      [[ -e $dir/libcudnn.so ]] || ln -s libcudnn.so.9 "$dir/libcudnn.so" 2>/dev/null || true
      break
    fi
  done
fi
for library in cudnn cublas nccl; do
  if dir=$(find_library_dir "lib$library.so*"); then
    report "$library: $dir"
  elif [[ $library == nccl ]]; then
    report "nccl: not found (only multi-GPU training needs it)"
  elif [[ $DEVICE == cuda ]]; then
    fail "$library not found in $CUDA_HOME_GUESS nor in the '$PYTHON' environment's nvidia wheels"
  fi
done
if [[ -n $CUDNN_ROOT ]]; then
  VERSION_HEADER=$CUDNN_ROOT/include/cudnn_version.h
  CUDNN_VERSION=$( [[ -f $VERSION_HEADER ]] && awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s.", $3}' "$VERSION_HEADER" | sed 's/\.$//')
  report "cudnn headers: $CUDNN_ROOT/include (version ${CUDNN_VERSION:-unknown})"
elif [[ $DEVICE == cuda ]]; then
  fail "cudnn.h not found in $CUDA_HOME_GUESS/include nor in the nvidia-cudnn wheel"
fi
if (( ${#LIBRARY_DIRS[@]} )); then
  export LD_LIBRARY_PATH="$(IFS=:; echo "${LIBRARY_DIRS[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export PNEUMO_CUDA_SYNC=1  # every launch synchronises and checks: faults name their kernel

ARCH=${CUDA_ARCH:-}
[[ -z $ARCH ]] && { (( HAVE_DRIVER )) && ARCH=native || ARCH=90; }
CONFIGURE=(cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH"
           -DPNEUMO_BUILD_TESTS=ON -DPNEUMO_BUILD_BENCHMARKS=ON)
[[ -n $NVCC ]] && CONFIGURE+=(-DCMAKE_CUDA_COMPILER="$NVCC")
[[ -n $CUDNN_ROOT ]] && CONFIGURE+=(-DCUDNN_ROOT="$CUDNN_ROOT")
# Keep going past a failing target (make -k / ninja -k 0), so every other test still builds.
BUILD=(cmake --build "$BUILD_DIR" -j "$JOBS" --)
CTEST=(ctest --test-dir "$BUILD_DIR" -j 4 --timeout "$TEST_TIMEOUT_S" --output-on-failure)
[[ -n $CTEST_REGEX ]] && CTEST+=(-R "$CTEST_REGEX")
SANITIZED=(test_connected_components test_batch_norm test_loss test_pointwise_layers test_adam test_postprocess)
BENCH=("$BUILD_DIR/bench_network" --device "$DEVICE" --size "$SIZE" --batch "$BATCH" --repeats "$REPEATS" --layers)
COMPARE=("$PYTHON" "$ROOT/benchmarks/pytorch_network.py" --device "$DEVICE" --size "$SIZE" --batch "$BATCH"
         --repeats "$REPEATS" --bench "$BUILD_DIR/bench_network")

if (( DRY_RUN )); then
  report "plan (dry run, nothing built or run):"
  report "  output folder: $OUT_DIR (report.txt, failures.txt, bench.txt, logs.tar.gz)"
  report "  LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} PNEUMO_CUDA_SYNC=1"
  report "  ${CONFIGURE[*]}"
  report "  ${BUILD[*]} -k (keep going)"
  report "  ${CTEST[*]}   (GPU entries: ctest -L gpu; a skipped one fails the check when DEVICE=cuda)"
  (( SANITIZE )) && report "  compute-sanitizer --tool memcheck|racecheck <test> --gpu   for ${SANITIZED[*]}"
  report "  ${BENCH[*]} --tf32 off|on"
  report "  ${COMPARE[*]} --tf32 off|on"
  finish
fi
if (( FAILURES )); then
  report "stopping: the tools above are missing"
  finish
fi
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR" "$OUT_DIR"

# ---- 2. configure and build (keep going) ------------------------------------------------------
BUILT_OK=1
if [[ $SKIP_BUILD != 1 ]]; then
  note "configuring: ${CONFIGURE[*]}"
  if limited "$(stage_limit 120 300)" "${CONFIGURE[@]}" > "$LOG_DIR/configure.log" 2>&1; then
    report "configure: $(grep -m1 'pneumo: CUDA back end' "$LOG_DIR/configure.log" | sed 's/^-- //')"
  else
    fail "configure (see logs.tar.gz: configure.log):"
    report "$(tail -15 "$LOG_DIR/configure.log")"
    finish
  fi
  if ! grep -q 'CUDA back end ON' "$LOG_DIR/configure.log"; then
    [[ $DEVICE == cuda ]] && fail "the CUDA back end is OFF (nvcc, cuDNN or cuBLAS not found by cmake)"
  fi
  KEEP_GOING=-k
  grep -q 'CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null && KEEP_GOING="-k 0"
  note "building with $JOBS jobs, keep going"
  BUILD_START=$(date +%s)
  # shellcheck disable=SC2086
  limited "$(stage_limit 300 200)" "${BUILD[@]}" $KEEP_GOING > "$LOG_DIR/build.log" 2>&1
  BUILD_STATUS=$?
  if (( BUILD_STATUS == 0 )); then
    report "build: ok in $(( $(date +%s) - BUILD_START )) s"
  else
    BUILT_OK=0
    # make: "make[2]: *** [CMakeFiles/<target>.dir/build.make:...]"; ninja: "FAILED: CMakeFiles/<target>.dir/..."
    BROKEN=$(grep -oE '(\*\*\* \[|FAILED: )CMakeFiles/[A-Za-z0-9_]+\.dir' "$LOG_DIR/build.log" |
             sed -E 's/.*CMakeFiles\/([A-Za-z0-9_]+)\.dir/\1/' | sort -u | tr '\n' ' ')
    (( BUILD_STATUS == 124 || BUILD_STATUS == 137 )) && fail "build stopped at its time limit"
    fail "build (status $BUILD_STATUS); targets that did not build: ${BROKEN:-unknown}; first errors:"
    report "$(grep -m12 -E 'error|Error' "$LOG_DIR/build.log")"
    grep -E -B2 -A6 'error' "$LOG_DIR/build.log" | head -200 > "$OUT_DIR/build-errors.txt"
  fi
fi

# ---- 3. tests: every test that built ---------------------------------------------------------
note "running tests: ${CTEST[*]}"
limited "$(stage_limit 240 170)" "${CTEST[@]}" > "$LOG_DIR/ctest.log" 2>&1
CTEST_STATUS=$?
pkill -f "$BUILD_DIR/test_" 2>/dev/null && report "killed test processes left after ctest"
# Result lines: " 3/33 Test  #7: test_loss ......   Passed    0.51 sec" (or ***Failed, ***Skipped,
# ***Timeout, ***Exception: ..., Not Run / Could not find executable).
RESULTS=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$LOG_DIR/ctest.log")
name_of() { sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+).*/\1/'; }
SUMMARY=$(grep -E 'tests passed|tests failed' "$LOG_DIR/ctest.log" | tail -1)
PASSED=$(grep -c ' Passed ' <<< "$RESULTS")
SKIPPED_GPU=$(grep -E '_gpu .*\*\*\*Skipped|_gpu .*Skipped' <<< "$RESULTS" | name_of | tr '\n' ' ')
SKIP_COUNT=$(wc -w <<< "$SKIPPED_GPU")
TIMED_OUT=$(grep -E '\*\*\*Timeout' <<< "$RESULTS" | name_of | tr '\n' ' ')
FAILED=$(grep -E '\*\*\*Failed|\*\*\*Exception|Not Run|Could not find' <<< "$RESULTS" | name_of | tr '\n' ' ')
STARTED=$(grep -oE 'Start +[0-9]+: [^ ]+' "$LOG_DIR/ctest.log" | awk '{print $3}' | sort -u)
FINISHED=$(name_of <<< "$RESULTS" | sort -u)
UNFINISHED=$(comm -23 <(echo "$STARTED") <(echo "$FINISHED") | tr '\n' ' ')
report "tests: ${SUMMARY:-no summary (ctest status $CTEST_STATUS)}; $PASSED passed; GPU entries skipped: $SKIP_COUNT"
if (( CTEST_STATUS == 124 || CTEST_STATUS == 137 )); then
  fail "the test stage hit its time limit; tests started but never finished (hung): ${UNFINISHED:-none}"
fi
[[ -n ${TIMED_OUT// } ]] && fail "tests over the ${TEST_TIMEOUT_S}s per-test limit (hung or too slow): $TIMED_OUT"
if [[ -n ${FAILED// } ]]; then
  fail "failing tests: $FAILED"
  # doctest's failure text: the ERROR line and its continuation lines (values, "N of M outside
  # tolerance, worst at ..." messages).
  grep -E -A6 'ERROR:|Exception|Could not find' "$LOG_DIR/ctest.log" | grep -v '^--$' > "$OUT_DIR/failures.txt"
  report "$(head -40 "$OUT_DIR/failures.txt")"
fi
if (( SKIP_COUNT > 0 )); then
  if [[ $DEVICE == cuda ]]; then
    fail "$SKIP_COUNT GPU test entr(ies) skipped with DEVICE=cuda: $SKIPPED_GPU"
    report "$(grep -h -m3 'SKIPPED' "$BUILD_DIR/Testing/Temporary/LastTest.log" 2>/dev/null)"
  else
    report "GPU entries skipped (DEVICE=$DEVICE): $SKIPPED_GPU"
  fi
fi
if (( HAVE_DRIVER )); then
  LEFT=$(timeout 20 nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader 2>/dev/null)
  [[ -n $LEFT ]] && report "processes still on the GPU before the benchmark: $LEFT"
fi

# ---- 4. compute-sanitizer over the binaries that launch our own kernels ------------------------
if (( SANITIZE )); then
  SANITIZER=""
  for candidate in "$(command -v compute-sanitizer 2>/dev/null)" "$CUDA_HOME_GUESS/bin/compute-sanitizer" \
                   "$CUDA_HOME_GUESS/compute-sanitizer/compute-sanitizer"; do
    [[ -n $candidate && -x $candidate ]] && { SANITIZER=$candidate; break; }
  done
  if [[ -z $SANITIZER ]]; then
    report "sanitizer: compute-sanitizer not found (it ships with the CUDA toolkit): stage skipped"
  elif (( ! HAVE_DRIVER )); then
    report "sanitizer: no GPU: stage skipped"
  else
    SANITIZER_SUMMARY=()
    for tool in memcheck racecheck; do
      for test in "${SANITIZED[@]}"; do
        [[ -x $BUILD_DIR/$test ]] || { SANITIZER_SUMMARY+=("$tool $test: not built"); continue; }
        (( $(remaining) < 150 )) && { SANITIZER_SUMMARY+=("$tool $test: not run (budget)"); continue; }
        log=$LOG_DIR/sanitizer-$tool-$test.log
        limited "$(stage_limit 60 150)" "$SANITIZER" --tool "$tool" --error-exitcode 99 "$BUILD_DIR/$test" --gpu > "$log" 2>&1
        status=$?
        errors=$(grep -m1 -oE 'ERROR SUMMARY: [0-9]+ error|RACECHECK SUMMARY: [0-9]+ hazard[^ ]*' "$log")
        if (( status == 0 )); then
          SANITIZER_SUMMARY+=("$tool $test: clean (${errors:-no summary})")
        elif grep -qiE 'Device not supported|unable to|not supported on this' "$log" && (( status != 99 )); then
          SANITIZER_SUMMARY+=("$tool $test: compute-sanitizer could not run here: $(grep -m1 -iE 'not supported|unable' "$log")")
        elif (( status == 124 || status == 137 )); then
          SANITIZER_SUMMARY+=("$tool $test: over its 60 s limit")
        else
          fail "compute-sanitizer $tool on $test (status $status, ${errors:-see log}):"
          report "$(grep -m8 -E '=========' "$log")"
        fi
      done
    done
    report "sanitizer:"
    for line in "${SANITIZER_SUMMARY[@]}"; do report "  $line"; done
  fi
fi

# ---- 5. network benchmark and the PyTorch comparison, full fp32 and TF32 on both sides ---------
: > "$OUT_DIR/bench.txt"
for tf32 in off on; do
  if [[ ! -x $BUILD_DIR/bench_network ]]; then fail "bench_network did not build"; break; fi
  note "benchmark (tf32 $tf32): ${BENCH[*]} --tf32 $tf32"
  log=$LOG_DIR/bench_network_tf32_$tf32.log
  if limited "$(stage_limit 90 60)" "${BENCH[@]}" --tf32 "$tf32" > "$log" 2>&1; then
    report "bench_network tf32 $tf32 (size $SIZE batch $BATCH, median of $REPEATS):"
    report "$(grep -E '^bench_network:|^  (inference|training)' "$log")"
    if [[ $tf32 == off ]]; then
      report "  slowest nodes: node kind output inference forward backward share-of-training (ms):"
      report "$(awk 'NF == 7 && $7 ~ /%$/' "$log" | sort -k7 -g -r | head -5)"
    fi
  else
    fail "bench_network --tf32 $tf32 (status $?):"
    report "$(tail -5 "$log")"
  fi
  cat "$log" >> "$OUT_DIR/bench.txt"
  note "comparison (tf32 $tf32): ${COMPARE[*]} --tf32 $tf32"
  log=$LOG_DIR/pytorch_network_tf32_$tf32.log
  if limited "$(stage_limit 120 0)" "${COMPARE[@]}" --tf32 "$tf32" > "$log" 2>&1; then
    report "$(grep -E '^PyTorch|^  pytorch|^comparison|^  (training|inference) +images/s' "$log")"
  else
    fail "pytorch_network.py --tf32 $tf32 (status $?):"
    report "$(tail -5 "$log")"
  fi
  cat "$log" >> "$OUT_DIR/bench.txt"
done

finish
