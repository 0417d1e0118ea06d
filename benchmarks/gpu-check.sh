#!/usr/bin/env bash
# gpu-check.sh: the whole GPU check, in one call, on a machine with an NVIDIA GPU, the CUDA
# toolkit and PyTorch (pip wheels) but maybe no Debian packages (no OpenBLAS, DCMTK or stb;
# doctest is vendored). It
#   1. finds the tools and the CUDA libraries (toolkit, or the CUDA 13 wheels' nvidia/*/lib) and
#      stops before building when cuBLAS or cuDNN is missing,
#   2. configures (stops when the CUDA back end would be OFF) and builds with every core,
#      keep-going (a broken target never hides the rest),
#   3. runs the GPU test entries (CTest label gpu, NCCL ones included) with their own limit and
#      PNEUMO_CUDA_SYNC=1 (an asynchronous fault is reported at the launch that caused it); the
#      report gives expected / passed / skipped / failed; none passed is a failure,
#   4. runs compute-sanitizer (memcheck, racecheck) on small doctest case filters of the binaries
#      that launch our kernels, within a fixed share of the budget; a run that does not happen or
#      does not finish is a failure,
#   5. times the notebook network (bench_network, without PNEUMO_CUDA_SYNC) against PyTorch, full
#      fp32 and TF32 on both sides, and pneumo's --precision bf16 against PyTorch's fastest of fp32
#      and bf16 autocast, each configuration run once,
#   6. runs the remaining (CPU) tests in what is left of the budget.
# The report grows as the check goes: every stage appends to OUT/report.txt and keeps its logs
# under OUT/logs, and SIGTERM, SIGINT and the end of the script pack what exists, so a check
# stopped by its time limit still returns the report of every stage that ran.
#
#   benchmarks/gpu-check.sh [--dry-run | --build-only] [--allow-no-gpu] [--out DIR]
#
# --dry-run       detect and print the plan (tools, libraries, commands); build and run nothing.
# --build-only    stages 1 and 2 only: configure and build as the GPU machine will (CI does this
#                 with PREFER_WHEELS=1 and the Debian packages switched off: .ci/gpu-like-build.sh).
# --allow-no-gpu  to try this script on a CPU-only machine: a missing driver does not stop it;
#                 the GPU tests then skip and the report shows that as a failure.
# --out DIR       where the report and the logs go (default: $OUT when set, else
#                 BUILD_DIR/gpu-check-out): report.txt, failures.txt, bench.txt and logs.tar.gz
#                 (logs/ itself when the check was killed before it could pack them).
# Environment: BUILD_DIR (build-gpu), DEVICE (cuda), BATCH (32), REPEATS (5), SIZE (256),
# PYTHON (python3), CUDA_ARCH (native with a GPU, else 90), SKIP_BUILD=1, CTEST_REGEX,
# BUDGET_S (480), JOBS (nproc), BUILD_S (300), TEST_TIMEOUT_S (60, per test), GPU_TESTS_S (150, stage 3),
# SANITIZE (1; 0 skips stage 4), SANITIZE_S (150, stage 4 in all), EXTRA_CMAKE_ARGS (appended to the
# configure command, split at spaces), PREFER_WHEELS=1 (cuDNN, cuBLAS, NCCL from the Python
# environment's nvidia wheels before the toolkit's, as on a machine whose toolkit lacks them).
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
GPU_TESTS_S=${GPU_TESTS_S:-150}
BUILD_S=${BUILD_S:-300}
SANITIZE=${SANITIZE:-1}
SANITIZE_S=${SANITIZE_S:-150}
DRY_RUN=0
BUILD_ONLY=0
ALLOW_NO_GPU=0
EXTRA_CMAKE_ARGS=${EXTRA_CMAKE_ARGS:-}
PREFER_WHEELS=${PREFER_WHEELS:-0}
OUT_DIR=${OUT:-}
while (( $# )); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --build-only) BUILD_ONLY=1 ;;
    --allow-no-gpu) ALLOW_NO_GPU=1 ;;
    --out) [[ $# -ge 2 ]] || { echo "gpu-check.sh: --out needs a folder" >&2; exit 2; }; OUT_DIR=$2; shift ;;
    -h|--help) sed -n '2,35p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
OUT_DIR=${OUT_DIR:-$BUILD_DIR/gpu-check-out}
LOG_DIR=$OUT_DIR/logs  # inside the output folder: whatever happens, the logs come back
if ! mkdir -p "$LOG_DIR"; then echo "gpu-check.sh: cannot create $LOG_DIR" >&2; exit 2; fi
rm -rf "${LOG_DIR:?}"/* "$OUT_DIR/logs.tar.gz" "$OUT_DIR/failures.txt" "$OUT_DIR/bench.txt"
REPORT_FILE=$OUT_DIR/report.txt
echo "==================== pneumo GPU check report (written as it goes) ====================" > "$REPORT_FILE"

FAILURES=0
STAGE=setup
CHILD=""  # the stage command running in the background (see limited)
FINISHED=0
note() { echo "[gpu-check $(( $(date +%s) - START_S ))s] $*" >&2; }
# Each report line goes to report.txt at once: a killed check has reported every stage it ran.
report() {
  [[ -z $* ]] && return  # nothing to say (an empty grep)
  local line
  while IFS= read -r line; do printf '%s\n' "$line" >> "$REPORT_FILE"; done <<< "$*"
}
fail() { report "FAILED: $*"; FAILURES=$((FAILURES + 1)); note "FAILED: $*"; }
stage() { STAGE=$1; report "---- stage $1 (at $(( $(date +%s) - START_S )) s)"; note "stage $1"; }
remaining() { echo $(( BUDGET_S - ($(date +%s) - START_S) )); }
# Seconds for the next stage: at most $1, leaving $2 seconds for the stages after it.
stage_limit() {
  local cap=$1 reserve=$2 left
  left=$(( $(remaining) - reserve ))
  (( left < cap )) && cap=$left
  (( cap < 15 )) && cap=15
  echo "$cap"
}
# Runs "$@" under a hard limit of $1 seconds (TERM, then KILL 10 s later), in the background so
# that a signal to this script is handled at once (bash runs traps only between commands, and
# `wait` is one) and the stage's command is stopped with it. timeout puts the command in a process
# group of its own: whatever is left of that group afterwards (a hung test ctest gave up on) is
# killed, and only that, never another process that happens to run the same binaries.
LEFT_BEHIND=0
limited() {
  local seconds=$1 status
  shift
  timeout -k 10 "$seconds" "$@" &
  CHILD=$!
  wait "$CHILD"
  status=$?
  LEFT_BEHIND=0
  if kill -0 -- "-$CHILD" 2>/dev/null; then
    kill -KILL -- "-$CHILD" 2>/dev/null
    LEFT_BEHIND=1
  fi
  CHILD=""
  return $status
}
# The end of every run, normal or not: the summary line appended to report.txt, the logs packed.
finish() {
  (( FINISHED )) && return
  FINISHED=1
  trap - TERM INT EXIT
  {
    echo "total time $(( $(date +%s) - START_S )) s; last stage: $STAGE; $FAILURES failure(s); report and logs in $OUT_DIR"
    echo "================================================================="
  } >> "$REPORT_FILE"
  if [[ -d $LOG_DIR ]] && [[ -n $(ls -A "$LOG_DIR" 2>/dev/null) ]] &&
     tar -czf "$OUT_DIR/logs.tar.gz" -C "$OUT_DIR" logs 2>/dev/null; then
    rm -rf "$LOG_DIR"
  fi
  echo
  cat "$REPORT_FILE"
  exit $(( FAILURES > 0 ))
}
# SIGTERM (the time limit of whoever runs the check) or SIGINT: stop the stage's command, say
# where the check stopped, and finish.
interrupted() {
  [[ -n $CHILD ]] && { kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null; }
  fail "stopped by SIG$1 during stage $STAGE (a time limit?): the stages after it did not run"
  finish
}
trap 'interrupted TERM' TERM
trap 'interrupted INT' INT
trap 'fail "the script ended unexpectedly during stage $STAGE"; finish' EXIT

# ---- 1. environment ------------------------------------------------------------------------
stage environment
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
  local toolkit=("$CUDA_HOME_GUESS/lib64" "$CUDA_HOME_GUESS"/targets/*/lib) order
  if (( PREFER_WHEELS )); then order=("${LIBRARY_DIRS[@]}" "${toolkit[@]}"); else order=("${toolkit[@]}" "${LIBRARY_DIRS[@]}"); fi
  for dir in "${order[@]}"; do
    compgen -G "$dir/$1" >/dev/null 2>&1 && { echo "$dir"; return 0; }
  done
  return 1
}
# cuDNN's header: beside the toolkit, else in the wheel folder next to its lib.
CUDNN_ROOT=""
(( PREFER_WHEELS )) ||
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
LIBRARY_HINTS=()
for library in cudnn cublas nccl; do
  if dir=$(find_library_dir "lib$library.so*"); then
    report "$library: $dir"
    # The cuBLAS wheel ships only libcublas.so.13 (and libcublasLt.so.13): outside the toolkit,
    # CMake's CUDA::cublas needs the files named.
    if [[ $library == cublas && ! -e $dir/libcublas.so && $dir != "$CUDA_HOME_GUESS"* ]]; then
      for name in cublas cublasLt; do
        file=$(compgen -G "$dir/lib$name.so.[0-9]*" | head -1)
        [[ -n $file ]] && LIBRARY_HINTS+=(-DCUDA_${name}_LIBRARY="$file")
      done
      [[ -f $dir/../include/cublas_v2.h && ! -f $CUDA_HOME_GUESS/include/cublas_v2.h ]] &&
        LIBRARY_HINTS+=(-DCMAKE_CXX_FLAGS="-isystem $(cd "$dir/../include" && pwd)" -DCMAKE_CUDA_FLAGS="-isystem $(cd "$dir/../include" && pwd)")
      report "cublas: outside the toolkit; CMake is told: ${LIBRARY_HINTS[*]}"
    fi
    # NCCL from a wheel (nvidia/nccl/{include,lib}): CMake looks beside the toolkit unless told.
    if [[ $library == nccl && $dir != "$CUDA_HOME_GUESS"* && -f $dir/../include/nccl.h ]]; then
      LIBRARY_HINTS+=(-DNCCL_ROOT="$(cd "$dir/.." && pwd)")
      report "nccl: outside the toolkit; CMake is told -DNCCL_ROOT=$(cd "$dir/.." && pwd)"
    fi
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
export PNEUMO_GPU_CHECK_RUNNING=1  # tests/benchmarks/test_gpu_check.sh does not start the check again
export PNEUMO_CUDA_SYNC=1  # tests and sanitizer: every launch synchronises, so a fault names its kernel

ARCH=${CUDA_ARCH:-}
[[ -z $ARCH ]] && { (( HAVE_DRIVER )) && ARCH=native || ARCH=90; }
CONFIGURE=(cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH"
           -DPNEUMO_BUILD_TESTS=ON -DPNEUMO_BUILD_BENCHMARKS=ON)
[[ -n $NVCC ]] && CONFIGURE+=(-DCMAKE_CUDA_COMPILER="$NVCC")
[[ -n $CUDNN_ROOT ]] && CONFIGURE+=(-DCUDNN_ROOT="$CUDNN_ROOT")
CONFIGURE+=("${LIBRARY_HINTS[@]}")
# shellcheck disable=SC2206
[[ -n $EXTRA_CMAKE_ARGS ]] && CONFIGURE+=($EXTRA_CMAKE_ARGS)
# Keep going past a failing target (make -k / ninja -k 0), so every other test still builds.
BUILD=(cmake --build "$BUILD_DIR" -j "$JOBS" --)
CTEST=(ctest --test-dir "$BUILD_DIR" -j 4 --timeout "$TEST_TIMEOUT_S" --output-on-failure)
[[ -n $CTEST_REGEX ]] && CTEST+=(-R "$CTEST_REGEX")
GPU_CTEST=("${CTEST[@]}" -L gpu)   # the *_gpu doctest entries and the NCCL ones (label gpu)
REST_CTEST=("${CTEST[@]}" -LE gpu)
# compute-sanitizer runs: binary and a doctest case filter (--gpu keeps the GPU cases; the filter
# keeps each run small enough for its share of SANITIZE_S).
SANITIZED=("test_connected_components|GPU labelling*" "test_batch_norm|BatchNorm2d CPU vs CUDA parity*"
           "test_loss|CUDA loss*" "test_pointwise_layers|*CUDA parity*" "test_adam|Adam on CUDA*"
           "test_postprocess|GPU post-processing*" "test_precision|Conv2d CUDA bf16*")
# --cudnn find: cuDNN's algorithms timed per shape, as PyTorch's cudnn.benchmark=True (like with like).
BENCH=(env -u PNEUMO_CUDA_SYNC "$BUILD_DIR/bench_network" --device "$DEVICE" --size "$SIZE" --batch "$BATCH"
       --repeats "$REPEATS" --layers --cudnn find)
# The comparison reads bench_network's result instead of timing it again.
COMPARE=(env -u PNEUMO_CUDA_SYNC "$PYTHON" "$ROOT/benchmarks/pytorch_network.py" --device "$DEVICE" --size "$SIZE"
         --batch "$BATCH" --repeats "$REPEATS")

if (( DRY_RUN )); then
  report "plan (dry run, nothing built or run):"
  report "  output folder: $OUT_DIR (report.txt, failures.txt, bench.txt, logs.tar.gz)"
  report "  LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} PNEUMO_CUDA_SYNC=1"
  report "  ${CONFIGURE[*]}"
  report "  ${BUILD[*]} -k (keep going)"
  report "  ${GPU_CTEST[*]}   (GPU entries first, ${GPU_TESTS_S}s; a skipped one fails the check when DEVICE=cuda)"
  (( SANITIZE )) && report "  compute-sanitizer --tool memcheck|racecheck <test> --gpu --test-case=<filter>   (${SANITIZE_S}s in all) for: ${SANITIZED[*]}"
  report "  ${BENCH[*]} --tf32 off|on --precision fp32, and --tf32 off --precision bf16"
  report "  ${COMPARE[*]} (the same options) --bench-output <bench_network's log>"
  report "  ${REST_CTEST[*]}   (the CPU tests, in what is left)"
  finish
fi
if (( FAILURES )); then
  report "stopping before the build: the tools or libraries above are missing"
  finish
fi

# ---- 2. configure and build (keep going) ------------------------------------------------------
BUILT_OK=1
if [[ $SKIP_BUILD != 1 ]]; then
  stage configure
  note "configuring: ${CONFIGURE[*]}"
  if limited "$(stage_limit 120 300)" "${CONFIGURE[@]}" > "$LOG_DIR/configure.log" 2>&1; then
    report "configure: $(grep -m1 'pneumo: CUDA back end' "$LOG_DIR/configure.log" | sed 's/^-- //')"
  else
    fail "configure (see logs.tar.gz: configure.log):"
    report "$(tail -15 "$LOG_DIR/configure.log")"
    finish
  fi
  if ! grep -q 'CUDA back end ON' "$LOG_DIR/configure.log" && [[ $DEVICE == cuda ]]; then
    # A CPU-only tree would spend the try building what CI already tests.
    fail "the CUDA back end is OFF (nvcc, cuDNN or cuBLAS not found by cmake); stopping before the build:"
    report "$(grep -m6 -iE 'cudnn|cublas|cuda' "$LOG_DIR/configure.log")"
    finish
  fi
  stage build
  KEEP_GOING=-k
  grep -q 'CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null && KEEP_GOING="-k 0"
  note "building with $JOBS jobs, keep going"
  BUILD_START=$(date +%s)
  # shellcheck disable=SC2086
  limited "$(stage_limit "$BUILD_S" 240)" "${BUILD[@]}" $KEEP_GOING > "$LOG_DIR/build.log" 2>&1
  BUILD_STATUS=$?
  if (( BUILD_STATUS == 0 )); then
    report "build: ok in $(( $(date +%s) - BUILD_START )) s"
  else
    BUILT_OK=0
    # make: "make[2]: *** [<folder>/CMakeFiles/<target>.dir/build.make:...]"; ninja: "FAILED:
    # <folder>/CMakeFiles/<target>.dir/..." (each folder of the tree has its own CMakeLists.txt).
    BROKEN=$(grep -oE '(\*\*\* \[|FAILED: )([A-Za-z0-9_./-]+/)?CMakeFiles/[A-Za-z0-9_]+\.dir' "$LOG_DIR/build.log" |
             sed -E 's/.*CMakeFiles\/([A-Za-z0-9_]+)\.dir/\1/' | sort -u | tr '\n' ' ')
    (( BUILD_STATUS == 124 || BUILD_STATUS == 137 )) && fail "build stopped at its time limit"
    fail "build (status $BUILD_STATUS); targets that did not build: ${BROKEN:-unknown}; first errors:"
    report "$(grep -m12 -E 'error|Error' "$LOG_DIR/build.log")"
    grep -E -B2 -A6 'error' "$LOG_DIR/build.log" | head -200 > "$OUT_DIR/build-errors.txt"
  fi
fi

if (( BUILD_ONLY )); then
  STAGE=done
  finish
fi

# ctest's result lines: " 3/33 Test  #7: test_loss ......   Passed    0.51 sec" (or ***Failed,
# ***Skipped, ***Timeout, ***Exception: ..., Not Run / Could not find executable).
name_of() { sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+).*/\1/'; }
# run_tests LABEL LIMIT CTEST...: runs, then reports passed/skipped/failed/hung entries; sets
# PASSED, SKIPPED_LIST, SKIP_COUNT, FAILED_COUNT.
run_tests() {
  local label=$1 limit=$2 log=$LOG_DIR/ctest-$1.log status results summary timed_out failed started finished unfinished
  shift 2
  note "running $label tests: $*"
  limited "$limit" "$@" > "$log" 2>&1
  status=$?
  (( LEFT_BEHIND )) && report "killed test processes left after ctest ($label)"
  results=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$log")
  summary=$(grep -E 'tests passed|tests failed' "$log" | tail -1)
  PASSED=$(grep -c ' Passed ' <<< "$results")
  SKIPPED_LIST=$(grep -E 'Skipped' <<< "$results" | name_of | tr '\n' ' ')
  SKIP_COUNT=$(wc -w <<< "$SKIPPED_LIST")
  timed_out=$(grep -E '\*\*\*Timeout' <<< "$results" | name_of | tr '\n' ' ')
  failed=$(grep -E '\*\*\*Failed|\*\*\*Exception|Not Run|Could not find' <<< "$results" | name_of | tr '\n' ' ')
  FAILED_COUNT=$(wc -w <<< "$failed")
  started=$(grep -oE 'Start +[0-9]+: [^ ]+' "$log" | awk '{print $3}' | sort -u)
  finished=$(name_of <<< "$results" | sort -u)
  unfinished=$(comm -23 <(echo "$started") <(echo "$finished") | tr '\n' ' ')
  report "$label tests: ${summary:-no summary (ctest status $status)}; $PASSED passed, $SKIP_COUNT skipped"
  if (( status == 124 || status == 137 )); then
    fail "the $label test stage hit its ${limit}s limit; tests started but never finished (hung): ${unfinished:-none}"
  fi
  [[ -n ${timed_out// } ]] && fail "$label tests over the ${TEST_TIMEOUT_S}s per-test limit (hung or too slow): $timed_out"
  if [[ -n ${failed// } ]]; then
    fail "failing $label tests: $failed"
    # doctest's failure text: the ERROR line and its continuation lines (values, "N of M outside
    # tolerance, worst at ..." messages).
    grep -E -A6 'ERROR:|Exception|Could not find' "$log" | grep -v '^--$' >> "$OUT_DIR/failures.txt"
    report "$(grep -E -A6 'ERROR:|Exception|Could not find' "$log" | grep -v '^--$' | head -40)"
  fi
}

# ---- 3. the GPU test entries first, with their own limit ----------------------------------------
stage gpu-tests
EXPECTED_GPU=$("${GPU_CTEST[@]}" -N 2>/dev/null | grep -cE '^ *Test +#[0-9]+: ')
run_tests gpu "$(stage_limit "$GPU_TESTS_S" 330)" "${GPU_CTEST[@]}"
report "GPU test entries: $EXPECTED_GPU expected, $PASSED passed, $SKIP_COUNT skipped, $FAILED_COUNT failed"
# The CUDA libraries actually loaded (test_engine_basics_gpu prints and checks them).
report "$(grep -h 'loaded library:' "$LOG_DIR/ctest-gpu.log" 2>/dev/null | sort -u)"
if (( EXPECTED_GPU == 0 )); then
  fail "no GPU test entries in the build (ctest -L gpu lists none)"
elif (( PASSED == 0 )); then
  fail "none of the $EXPECTED_GPU GPU test entries passed"
fi
if (( SKIP_COUNT > 0 )); then
  if [[ $DEVICE == cuda ]]; then
    fail "$SKIP_COUNT GPU test entr(ies) skipped with DEVICE=cuda: $SKIPPED_LIST"
    report "$(grep -h -m3 'SKIPPED' "$BUILD_DIR/Testing/Temporary/LastTest.log" 2>/dev/null)"
  else
    report "GPU entries skipped (DEVICE=$DEVICE): $SKIPPED_LIST"
  fi
fi
if (( HAVE_DRIVER )); then
  LEFT=$(timeout 20 nvidia-smi --query-compute-apps=pid,process_name --format=csv,noheader 2>/dev/null)
  [[ -n $LEFT ]] && report "processes still on the GPU after the GPU tests: $LEFT"
fi

# ---- 4. compute-sanitizer, a fixed share, small case filters -------------------------------------
if (( SANITIZE )); then
  stage sanitizer
  SANITIZER=""
  for candidate in "$(command -v compute-sanitizer 2>/dev/null)" "$CUDA_HOME_GUESS/bin/compute-sanitizer" \
                   "$CUDA_HOME_GUESS/compute-sanitizer/compute-sanitizer"; do
    [[ -n $candidate && -x $candidate ]] && { SANITIZER=$candidate; break; }
  done
  RUNS=$(( ${#SANITIZED[@]} * 2 ))
  if [[ -z $SANITIZER ]]; then
    fail "sanitizer: compute-sanitizer not found (it ships with the CUDA toolkit): $RUNS runs did not happen"
  elif (( ! HAVE_DRIVER )); then
    fail "sanitizer: no GPU: $RUNS runs did not happen"
  else
    SHARE=$(stage_limit "$SANITIZE_S" 200)
    PER_RUN=$(( SHARE / RUNS ))
    (( PER_RUN < 15 )) && PER_RUN=15
    CLEAN=0
    for tool in memcheck racecheck; do
      for entry in "${SANITIZED[@]}"; do
        test=${entry%%|*}
        filter=${entry#*|}
        if [[ ! -x $BUILD_DIR/$test ]]; then fail "sanitizer $tool $test: not built"; continue; fi
        log=$LOG_DIR/sanitizer-$tool-$test.log
        limited "$PER_RUN" "$SANITIZER" --tool "$tool" --error-exitcode 99 "$BUILD_DIR/$test" --gpu \
          "--test-case=$filter" > "$log" 2>&1
        status=$?
        errors=$(grep -m1 -oE 'ERROR SUMMARY: [0-9]+ error|RACECHECK SUMMARY: [0-9]+ hazard[^ ]*' "$log")
        # doctest's "[doctest] test cases: 1 | 1 passed | ...": a filter that matches nothing passes 0.
        cases=$(grep -m1 -oE 'test cases: *[0-9]+ \| *[0-9]+ passed' "$log")
        passed_cases=$(grep -oE '[0-9]+ passed' <<< "$cases" | grep -oE '[0-9]+')
        if (( status == 0 && ${passed_cases:-0} > 0 )); then
          report "sanitizer $tool $test ($filter): clean (${errors:-no summary}; $passed_cases test cases)"
          CLEAN=$((CLEAN + 1))
        elif (( status == 0 )); then
          fail "sanitizer $tool $test: the filter '$filter' ran no test case (${cases:-no doctest summary})"
        elif (( status == 124 || status == 137 )); then
          fail "sanitizer $tool $test: did not finish within its ${PER_RUN}s share"
        elif (( status == 99 )); then
          fail "compute-sanitizer $tool on $test ($filter): ${errors:-errors, see log}:"
          report "$(grep -m8 -E '=========' "$log")"
        else
          fail "sanitizer $tool $test: could not run (status $status): $(grep -m1 -iE 'error|not supported|unable' "$log")"
        fi
      done
    done
    report "sanitizer: $CLEAN of $RUNS runs clean (${PER_RUN}s each)"
  fi
fi

# ---- 5. network benchmark and the PyTorch comparison: fp32, TF32, bf16 ----------------------------
stage benchmark
: > "$OUT_DIR/bench.txt"
# Three configurations: full fp32 (tf32 off), TF32 on both sides, and pneumo's bf16 convolutions
# (layers/precision.md) against PyTorch's fastest of fp32 and bf16 autocast.
for config in off on bf16; do
  if [[ ! -x $BUILD_DIR/bench_network ]]; then fail "bench_network did not build"; break; fi
  tf32=$config precision=fp32
  [[ $config == bf16 ]] && tf32=off precision=bf16
  options=(--tf32 "$tf32" --precision "$precision")
  note "benchmark ($precision, tf32 $tf32): ${BENCH[*]} ${options[*]}"
  bench_log=$LOG_DIR/bench_network_${precision}_tf32_$tf32.log
  if limited "$(stage_limit 90 60)" "${BENCH[@]}" "${options[@]}" > "$bench_log" 2>&1; then
    report "bench_network $precision tf32 $tf32 (size $SIZE batch $BATCH, median of $REPEATS, no PNEUMO_CUDA_SYNC):"
    report "$(grep -E '^bench_network:|^  (inference|training)' "$bench_log")"
    if [[ $config == off ]]; then
      report "  slowest nodes: node kind output inference forward backward share-of-training (ms):"
      report "$(awk 'NF == 7 && $7 ~ /%$/' "$bench_log" | sort -k7 -g -r | head -5)"
    fi
  else
    fail "bench_network ${options[*]} (status $?):"
    report "$(tail -5 "$bench_log")"
    cat "$bench_log" >> "$OUT_DIR/bench.txt"
    continue
  fi
  cat "$bench_log" >> "$OUT_DIR/bench.txt"
  note "comparison ($precision, tf32 $tf32): ${COMPARE[*]} ${options[*]} --bench-output $bench_log"
  log=$LOG_DIR/pytorch_network_${precision}_tf32_$tf32.log
  if limited "$(stage_limit 120 30)" "${COMPARE[@]}" "${options[@]}" --bench-output "$bench_log" > "$log" 2>&1; then
    report "$(grep -E '^PyTorch|^  pytorch|^comparison|^  (training|inference) +images/s' "$log")"
  else
    fail "pytorch_network.py ${options[*]} (status $?):"
    report "$(tail -5 "$log")"
  fi
  cat "$log" >> "$OUT_DIR/bench.txt"
done

# ---- 6. the remaining (CPU) tests in what is left ------------------------------------------------
stage cpu-tests
if (( $(remaining) < 30 )); then
  report "cpu tests: not run ($(remaining)s of the budget left; CI runs them on every commit)"
else
  run_tests cpu "$(stage_limit 240 5)" "${REST_CTEST[@]}"
fi

STAGE=done
finish
