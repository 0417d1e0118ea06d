#!/usr/bin/env bash
# Installs the Debian packages pneumo needs, skipping what is already there. Needs root (or sudo).
# The CUDA 13 toolkit with cuDNN 9 and cuBLAS is expected under /usr/local/cuda (it is on the
# project's machines); without it the CPU back end still builds. dpkg-dev (dpkg-shlibdeps) lets
# `cpack -G DEB` compute the package's Depends.
set -euo pipefail
packages=(cmake g++ make dpkg-dev libopenblas-dev libdcmtk-dev dcmtk libjpeg62-turbo-dev libopenjp2-7-dev libopenjp2-tools zlib1g-dev libstb-dev doctest-dev clang clang-format
          libopenmpi-dev openmpi-bin
          libonnx-dev libprotobuf-dev protobuf-compiler python3-venv  # protoc: apps/tensorboard.proto
          python3-pybind11 python3-dev jupyter-nbconvert python3-ipykernel  # the Python module (apps/python/) and its notebook walkthrough
          python3-numpy python3-torch python3-skimage python3-pydicom
          clang-tidy  # .ci/check-tidy.sh
          qemu-user  # tests/install/test_cpu_baseline.sh: `pneumo` on an emulated CPU without AVX
          strace chromium)  # strace: the kill-at-every-rename test (tests/cli/test_run_safety.sh); chromium: the headless browser test of the `pneumo inspect` page
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Best effort, outside the repository: ONNX + ONNX Runtime from PyPI for CTest's onnx_runtime_check
# and TensorBoard for test_tensorboard_files_tensorboard (~40 s). Without PyPI those tests report
# SKIPPED; nothing else needs them.
if [ "${PNEUMO_NO_PYPI:-0}" != 1 ]; then
  timeout 300 env PNEUMO_PEERS_ONNX_ONLY=1 bash "$(dirname "$0")/../benchmarks/peers/setup-venv.sh" \
    || echo "install-deps: no ONNX Runtime environment (PyPI unreachable?); onnx_runtime_check will be skipped"
fi
