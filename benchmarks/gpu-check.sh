#!/usr/bin/env bash
# gpu-check.sh: the whole GPU check on a machine with an NVIDIA GPU, the CUDA toolkit and PyTorch
# (pip wheels) but no Debian packages (no OpenBLAS, DCMTK or stb; doctest is vendored).
# Finds cuDNN/cuBLAS, configures and builds, runs every test (the GPU tests run for real), runs
# bench_network on CUDA with the notebook's configuration (batch 32) and the PyTorch comparison,
# then prints ONE report. Budget: 8 minutes on an H200.
#
#   benchmarks/gpu-check.sh [--dry-run] [--allow-no-gpu]
#
# --dry-run       detect and print the plan (tools, cuDNN, commands) without building or running.
# --allow-no-gpu  for checking this script on a CPU-only machine: DEVICE=cpu is then allowed.
# Environment overrides: BUILD_DIR (build-gpu), DEVICE (cuda), BATCH (32), REPEATS (5),
# SIZE (256), PYTHON (python3), CUDA_ARCH (native, else 90), SKIP_BUILD=1 (use BUILD_DIR as is),
# CTEST_REGEX (run only matching tests), BUDGET_S (480), JOBS (nproc).
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
DRY_RUN=0
ALLOW_NO_GPU=0
for argument in "$@"; do
  case "$argument" in
    --dry-run) DRY_RUN=1 ;;
    --allow-no-gpu) ALLOW_NO_GPU=1 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$argument' (try --help)" >&2; exit 2 ;;
  esac
done

LOG_DIR=$BUILD_DIR/gpu-check-logs
REPORT=()        # lines of the final report
FAILURES=0
note() { echo "[gpu-check $(( $(date +%s) - START_S ))s] $*" >&2; }
report() { REPORT+=("$*"); }
fail() { report "FAILED: $*"; FAILURES=$((FAILURES + 1)); note "FAILED: $*"; }
remaining() { echo $(( BUDGET_S - ($(date +%s) - START_S) )); }
# Seconds for the next stage: at most $1, and leave $2 seconds for the stages after it.
stage_limit() {
  local cap=$1 reserve=$2 left
  left=$(( $(remaining) - reserve ))
  (( left < cap )) && cap=$left
  (( cap < 10 )) && cap=10
  echo "$cap"
}
print_report() {
  echo
  echo "==================== pneumo GPU check report ===================="
  local line
  for line in "${REPORT[@]}"; do echo "$line"; done
  echo "total time $(( $(date +%s) - START_S )) s; $FAILURES failure(s); logs in $LOG_DIR"
  echo "================================================================="
}

# ---- 1. environment ------------------------------------------------------------------------
report "machine: $(uname -n), $(nproc 2>/dev/null) CPU cores, device $DEVICE"
if command -v nvidia-smi >/dev/null 2>&1; then
  report "gpu: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
elif [[ $DEVICE == cuda && $ALLOW_NO_GPU == 0 ]]; then
  fail "nvidia-smi not found: no NVIDIA driver on this machine"
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

if ! command -v cmake >/dev/null 2>&1; then
  fail "cmake not found (need >= 3.24; 'pip install cmake' works)"
else
  report "cmake: $(cmake --version | head -1)"
fi

TORCH_LINE=$(timeout 60 "$PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)
report "python: $(command -v "$PYTHON") torch $TORCH_LINE"

# cuDNN: beside the toolkit, else inside the Python environment's nvidia-cudnn wheel.
CUDNN_ROOT=""
LIBRARY_DIRS=()
for include in "$CUDA_HOME_GUESS/include" /usr/include /usr/include/x86_64-linux-gnu; do
  if [[ -f $include/cudnn.h ]]; then CUDNN_ROOT=$(dirname "$include"); break; fi
done
if [[ -z $CUDNN_ROOT ]]; then
  WHEEL=$(timeout 60 "$PYTHON" -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null | tail -1)
  if [[ -n $WHEEL && -f $WHEEL/include/cudnn.h ]]; then
    CUDNN_ROOT=$WHEEL
    LIBRARY_DIRS+=("$WHEEL/lib")
    # cmake's find_library wants an unversioned or .so.9 name; the wheel ships libcudnn.so.9.
    [[ -e $WHEEL/lib/libcudnn.so ]] || ln -s libcudnn.so.9 "$WHEEL/lib/libcudnn.so" 2>/dev/null || true
  fi
fi
if [[ -n $CUDNN_ROOT ]]; then
  VERSION_HEADER=$CUDNN_ROOT/include/cudnn_version.h
  CUDNN_VERSION=$( [[ -f $VERSION_HEADER ]] && awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s.", $3}' "$VERSION_HEADER" | sed 's/\.$//')
  report "cudnn: $CUDNN_ROOT (version ${CUDNN_VERSION:-unknown})"
elif [[ $DEVICE == cuda ]]; then
  fail "cuDNN not found in $CUDA_HOME_GUESS/include nor in the '$PYTHON' environment (pip install nvidia-cudnn-cu12)"
fi
# cuBLAS: normally in the toolkit; also add the wheel's directory when there is one.
CUBLAS_WHEEL=$(timeout 60 "$PYTHON" -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))' 2>/dev/null | tail -1)
[[ -n $CUBLAS_WHEEL && -d $CUBLAS_WHEEL/lib ]] && LIBRARY_DIRS+=("$CUBLAS_WHEEL/lib")
if ls "$CUDA_HOME_GUESS"/lib64/libcublas.so* >/dev/null 2>&1 || ls "$CUDA_HOME_GUESS"/targets/*/lib/libcublas.so* >/dev/null 2>&1; then
  report "cublas: in $CUDA_HOME_GUESS"
elif [[ -n $CUBLAS_WHEEL ]]; then
  report "cublas: wheel $CUBLAS_WHEEL (the toolkit has none: cmake may not find CUDA::cublas)"
else
  [[ $DEVICE == cuda ]] && fail "cuBLAS not found in $CUDA_HOME_GUESS"
fi
if (( ${#LIBRARY_DIRS[@]} )); then
  export LD_LIBRARY_PATH="$(IFS=:; echo "${LIBRARY_DIRS[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

ARCH=${CUDA_ARCH:-}
if [[ -z $ARCH ]]; then
  # "native" needs CMake >= 3.24 and a visible GPU; 90 is the H100/H200 architecture.
  if [[ $DEVICE == cuda ]] && command -v nvidia-smi >/dev/null 2>&1; then ARCH=native; else ARCH=90; fi
fi
CONFIGURE=(cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH"
           -DPNEUMO_BUILD_TESTS=ON -DPNEUMO_BUILD_BENCHMARKS=ON)
[[ -n $NVCC ]] && CONFIGURE+=(-DCMAKE_CUDA_COMPILER="$NVCC")
[[ -n $CUDNN_ROOT ]] && CONFIGURE+=(-DCUDNN_ROOT="$CUDNN_ROOT")
BUILD=(cmake --build "$BUILD_DIR" -j "$JOBS")
CTEST=(ctest --test-dir "$BUILD_DIR" -j 4 --timeout 240 -V)
[[ -n $CTEST_REGEX ]] && CTEST+=(-R "$CTEST_REGEX")
BENCH=("$BUILD_DIR/bench_network" --device "$DEVICE" --size "$SIZE" --batch "$BATCH" --repeats "$REPEATS" --layers)
COMPARE=("$PYTHON" "$ROOT/benchmarks/pytorch_network.py" --device "$DEVICE" --size "$SIZE" --batch "$BATCH"
         --repeats "$REPEATS" --bench "$BUILD_DIR/bench_network")

if (( DRY_RUN )); then
  report "plan (dry run, nothing built or run):"
  report "  LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  report "  ${CONFIGURE[*]}"
  report "  ${BUILD[*]}"
  report "  ${CTEST[*]}"
  report "  ${BENCH[*]}"
  report "  ${COMPARE[*]}"
  print_report
  exit $(( FAILURES > 0 ))
fi
if (( FAILURES )); then
  report "stopping: the tools above are missing"
  print_report
  exit 1
fi
mkdir -p "$LOG_DIR"

# ---- 2. configure and build ----------------------------------------------------------------
if [[ $SKIP_BUILD != 1 ]]; then
  note "configuring: ${CONFIGURE[*]}"
  if timeout "$(stage_limit 120 300)" "${CONFIGURE[@]}" > "$LOG_DIR/configure.log" 2>&1; then
    report "configure: $(grep -m1 'pneumo: CUDA back end' "$LOG_DIR/configure.log" | sed 's/^-- //')"
  else
    fail "configure (see $LOG_DIR/configure.log):"
    report "$(tail -15 "$LOG_DIR/configure.log")"
    print_report
    exit 1
  fi
  if ! grep -q 'CUDA back end ON' "$LOG_DIR/configure.log"; then
    [[ $DEVICE == cuda ]] && fail "the CUDA back end is OFF (nvcc, cuDNN or cuBLAS not found by cmake)"
  fi
  note "building with $JOBS jobs"
  BUILD_START=$(date +%s)
  if timeout "$(stage_limit 300 200)" "${BUILD[@]}" > "$LOG_DIR/build.log" 2>&1; then
    report "build: ok in $(( $(date +%s) - BUILD_START )) s"
  else
    fail "build (status $?, see $LOG_DIR/build.log):"
    report "$(grep -m10 -E 'error|Error' "$LOG_DIR/build.log")"
    print_report
    exit 1
  fi
fi

# ---- 3. tests ------------------------------------------------------------------------------
note "running tests: ${CTEST[*]}"
timeout "$(stage_limit 240 150)" "${CTEST[@]}" > "$LOG_DIR/ctest.log" 2>&1
CTEST_STATUS=$?
SUMMARY=$(grep -E 'tests passed|tests failed' "$LOG_DIR/ctest.log" | tail -1)
SKIPS=$(grep -c '^SKIPPED' "$LOG_DIR/ctest.log" || true)
report "tests: ${SUMMARY:-no summary (status $CTEST_STATUS)}; GPU test cases skipped: $SKIPS"
if (( CTEST_STATUS != 0 )); then
  fail "ctest status $CTEST_STATUS; failing tests:"
  report "$(sed -n '/The following tests FAILED/,$p' "$LOG_DIR/ctest.log" | head -20)"
  report "$(grep -E 'ERROR:|values:|logged:' "$LOG_DIR/ctest.log" | head -30)"
fi
if [[ $DEVICE == cuda ]] && (( SKIPS > 0 )); then
  fail "$SKIPS GPU test case(s) skipped on a GPU machine:"
  report "$(grep '^SKIPPED' "$LOG_DIR/ctest.log" | sort -u | head -5)"
fi

# ---- 4. network benchmark and the PyTorch comparison ---------------------------------------
note "benchmark: ${BENCH[*]}"
if timeout "$(stage_limit 120 90)" "${BENCH[@]}" > "$LOG_DIR/bench_network.log" 2>&1; then
  report "bench_network (size $SIZE batch $BATCH, median of $REPEATS):"
  report "$(grep -E '^bench_network:|^  (inference|training)' "$LOG_DIR/bench_network.log")"
  report "  slowest nodes: node kind output inference forward backward share-of-training (ms):"
  report "$(awk 'NF == 7 && $7 ~ /%$/' "$LOG_DIR/bench_network.log" | sort -k7 -g -r | head -5)"
  report "$(sed -n '/per layer kind/,/^result/p' "$LOG_DIR/bench_network.log" | grep -v '^result')"
else
  fail "bench_network (status $?):"
  report "$(tail -5 "$LOG_DIR/bench_network.log")"
fi

note "comparison: ${COMPARE[*]}"
if timeout "$(stage_limit 150 0)" "${COMPARE[@]}" > "$LOG_DIR/pytorch_network.log" 2>&1; then
  report "$(grep -E '^PyTorch|^  pytorch|^comparison|^  (training|inference) +images/s' "$LOG_DIR/pytorch_network.log")"
else
  fail "pytorch_network.py (status $?):"
  report "$(tail -5 "$LOG_DIR/pytorch_network.log")"
fi

print_report
exit $(( FAILURES > 0 ))
