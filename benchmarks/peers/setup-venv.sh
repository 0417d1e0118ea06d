#!/usr/bin/env bash
# Creates the Python environment for the framework comparisons (Keras/TensorFlow, PyTorch 2.x,
# ONNX, ONNX Runtime, TensorBoard) OUTSIDE the repository: $PNEUMO_PEERS_VENV, default ~/.cache/pneumo-peers-venv.
# Nothing in the build or the CTest suite needs it; the scripts beside this one do.
# PyTorch: the CPU-only wheel index (download.pytorch.org) is tried first; when it cannot be
# reached, PyPI's default torch wheel is installed (it pulls the CUDA runtime wheels, ~3 GB, and
# runs on the CPU all the same).
set -euo pipefail
venv="${PNEUMO_PEERS_VENV:-$HOME/.cache/pneumo-peers-venv}"
python="${PYTHON:-/usr/bin/python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
# tensorboard: its event-file reader checks `pneumo train`'s files (test_tensorboard_files_tensorboard).
"${pip[@]}" numpy onnx onnxruntime safetensors tensorboard
if [ "${PNEUMO_PEERS_ONNX_ONLY:-0}" = 1 ]; then  # what CTest's onnx_runtime_check and TensorBoard test need (~40 s)
  echo "setup-venv: $venv (onnx, onnxruntime, tensorboard only)"; exit 0
fi
"${pip[@]}" matplotlib tensorflow-cpu
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  if ! timeout 600 "${pip[@]}" torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null; then
    echo "setup-venv: the PyTorch CPU wheel index cannot be reached; installing torch from PyPI (CUDA wheels)"
    "${pip[@]}" torch
  fi
fi
"$venv/bin/python" - <<'PY'
import importlib
for name in ("numpy", "onnx", "onnxruntime", "tensorboard", "tensorflow", "keras", "torch"):
    try:
        module = importlib.import_module(name)
        print(f"setup-venv: {name} {module.__version__}")
    except Exception as error:  # a framework that cannot be installed is reported, not fatal
        print(f"setup-venv: {name} unavailable ({error})")
PY
echo "setup-venv: $venv"
