#!/usr/bin/env bash
# CTest onnx_runtime_check: exports the fixture network with `pneumo export` and runs
# benchmarks/peers/onnx_check.py (ONNX checker + ONNX Runtime vs pneumo on synthetic DICOMs).
# Needs the peers' Python environment (benchmarks/peers/setup-venv.sh; .ci/install-deps.sh makes an
# ONNX-only one when PyPI is reachable); without it prints SKIPPED and exits 77 (CTest: skipped).
# Usage: tests/onnx/onnx_runtime_check.sh PNEUMO_BINARY   (from the repository root)
set -euo pipefail
pneumo="$1"
python="${PNEUMO_PEERS_VENV:-$HOME/.cache/pneumo-peers-venv}/bin/python"
if ! [ -x "$python" ] || ! "$python" -c 'import onnx, onnxruntime, safetensors' 2>/dev/null; then
  echo "SKIPPED onnx_runtime_check: no Python environment with onnx + onnxruntime at $python (run benchmarks/peers/setup-venv.sh)"
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$pneumo" synth --out "$work/data" --train-images 8 --test-images 6 --image-size 256 --seed 11 > /dev/null
"$python" - "$work" <<'PY'
# A pneumo checkpoint from the committed fixture's weights (load_checkpoint also wants Adam
# moments: zeros, unused by the export).
import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
work = sys.argv[1]
fixture = "tests/fixtures/peers/onnx_reference.safetensors"
tensors = load_file(fixture)
with safe_open(fixture, "np") as handle:
    meta = {k: v for k, v in handle.metadata().items() if k.startswith("network.")}
weights = {k[len("weight."):]: v for k, v in tensors.items() if k.startswith("weight.")}
checkpoint = dict(weights)
for name, value in weights.items():
    if "running_" not in name:
        checkpoint["adam_m/" + name] = np.zeros_like(value)
        checkpoint["adam_v/" + name] = np.zeros_like(value)
meta.update({"format": "pneumo-checkpoint", "format_version": "1", "step": "0", "epoch": "0"})
save_file(checkpoint, f"{work}/model.safetensors", metadata=meta)
PY
"$pneumo" export --checkpoint "$work/model.safetensors" --onnx "$work/model.onnx" \
  --reference-images "$work/data/stage_2_test_images" --reference-count 6
"$python" benchmarks/peers/onnx_check.py "$work/model.onnx"
