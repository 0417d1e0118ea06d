#!/usr/bin/env bash
# CI: configure and build the way the GPU machine will (benchmarks/gpu-check.sh --build-only):
# no OpenBLAS, DCMTK, stb, ONNX or MPI (the GPU machine has no Debian development packages), and
# cuDNN, cuBLAS and NCCL from NVIDIA's CUDA 13 Python wheels in a virtual environment outside the
# repository (best effort: without PyPI the toolkit's copies are used, and this says so). Then the
# CPU tests of that tree, and gpu-check.sh --dry-run --allow-no-gpu. A missing include or a
# dependency only the Debian packages bring fails here, not on the GPU's one short try.
#   .ci/gpu-like-build.sh [BUILD_DIR]     (default build-gpulike)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpulike}
venv=${PNEUMO_GPU_WHEELS_VENV:-$HOME/.cache/pneumo-gpu-wheels-venv}
wheels=(nvidia-cudnn-cu13 nvidia-cublas nvidia-nccl-cu13)
python=/usr/bin/python3
prefer_wheels=0
if [ "${PNEUMO_NO_PYPI:-0}" = 1 ]; then
  echo "gpu-like build: SKIPPED the CUDA wheels (PNEUMO_NO_PYPI=1): cuDNN and cuBLAS come from the toolkit"
elif { [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"; } &&
     timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check "${wheels[@]}"; then
  python=$venv/bin/python
  prefer_wheels=1
  echo "gpu-like build: cuDNN, cuBLAS and NCCL from the wheels in $venv ($("$venv/bin/pip" list 2>/dev/null | grep -E '^nvidia-(cudnn|cublas|nccl)' | tr -s ' ' | tr '\n' ';'))"
else
  echo "gpu-like build: SKIPPED the CUDA wheels (pip install ${wheels[*]} failed or timed out): cuDNN and cuBLAS come from the toolkit"
fi
# What the GPU machine lacks, switched off here (the packages are installed on this machine).
extra="-G Ninja -DPNEUMO_OPENBLAS=OFF -DPNEUMO_MPI=OFF -DCMAKE_DISABLE_FIND_PACKAGE_DCMTK=ON"
extra="$extra -DCMAKE_DISABLE_FIND_PACKAGE_ONNX=ON -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=ON"
command -v ninja > /dev/null || extra=${extra/-G Ninja /}
status=0
PYTHON=$python PREFER_WHEELS=$prefer_wheels BUILD_DIR=$build CUDA_ARCH=90 JOBS=$(nproc) BUDGET_S=4000 BUILD_S=3000 \
  EXTRA_CMAKE_ARGS="$extra" bash benchmarks/gpu-check.sh --build-only --allow-no-gpu --out "$build/check" || status=1
cat "$build/check/report.txt" 2>/dev/null | grep -E 'configure:|build:|FAILED|cudnn|cublas' || true
if [ $status -ne 0 ]; then
  echo "gpu-like build: FAILED (the report above; logs in $build/check/logs.tar.gz)" >&2
  exit 1
fi
configured=$(tar -xzOf "$build/check/logs.tar.gz" logs/configure.log 2>/dev/null | grep 'pneumo: CUDA back end')
echo "gpu-like build: $configured"
case $configured in
  *"CUDA back end ON"*"OpenBLAS OFF, data pipeline (DCMTK+libjpeg+OpenJPEG+stb) OFF, MPI OFF"*) ;;
  *) echo "gpu-like build: FAILED: not configured like the GPU machine (CUDA ON, the Debian packages OFF)" >&2; exit 1 ;;
esac
ctest --test-dir "$build" -LE gpu --output-on-failure -j"$(nproc)" || { echo "gpu-like build: CPU tests FAILED" >&2; exit 1; }
PYTHON=$python PREFER_WHEELS=$prefer_wheels BUILD_DIR=$build bash benchmarks/gpu-check.sh --dry-run --allow-no-gpu \
  --out "$build/dry-run" > /dev/null 2>&1
cat "$build/dry-run/report.txt"
grep -q 'FAILED' "$build/dry-run/report.txt" && { echo "gpu-like build: the dry run reports a failure" >&2; exit 1; }
echo "gpu-like build: passed"
