#!/usr/bin/env bash
# Rebuilds tests/fixtures/peers/onnx_reference.safetensors (read by tests/test_onnx_export.cpp):
# a small network trained by pneumo on synthetic data, exported to ONNX, run by ONNX Runtime.
#   weight.<parameter>     the trained inference weights (pneumo names and layouts)
#   images                 (4,64,64,1) test DICOMs as pneumo preprocesses them
#   ort.probabilities      (4,64,64,1) ONNX Runtime's output for them from the exported model
# Usage: benchmarks/peers/make_onnx_fixture.sh [BUILD_DIR]   (after benchmarks/peers/setup-venv.sh)
set -euo pipefail
build="${1:-build}"
python="${PNEUMO_PEERS_VENV:-$HOME/.cache/pneumo-peers-venv}/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$build/pneumo" synth --out "$work/data" --train-images 160 --test-images 16 --seed 7 > /dev/null
"$build/pneumo" train --data "$work/data" --run-dir "$work/run" --preset cpu --size 64 --channels 4 --depth 3 \
  --epochs 6 --lr 3e-3 --workers 2 --seed 3 > /dev/null
"$build/pneumo" export --checkpoint "$work/run/last.safetensors" --onnx "$work/model.onnx" \
  --reference-images "$work/data/stage_2_test_images" --reference-count 4
"$python" benchmarks/peers/onnx_check.py "$work/model.onnx" --out "$work/ort.safetensors"
"$python" - "$work" <<'PY'
import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
work = sys.argv[1]
checkpoint = load_file(f"{work}/run/last.safetensors")
with safe_open(f"{work}/run/last.safetensors", "np") as handle:
    meta = {k: v for k, v in handle.metadata().items() if k.startswith("network.")}
ort = load_file(f"{work}/ort.safetensors")
with safe_open(f"{work}/ort.safetensors", "np") as handle:
    meta["onnxruntime"] = handle.metadata()["onnxruntime"]
reference = load_file(f"{work}/model.onnx.reference.safetensors")
fixture = {"weight." + k: v for k, v in checkpoint.items() if not k.startswith("adam_")}
fixture["images"] = reference["images"]
fixture["ort.probabilities"] = ort["probabilities"]
save_file(fixture, "tests/fixtures/peers/onnx_reference.safetensors", metadata=meta)
print("wrote tests/fixtures/peers/onnx_reference.safetensors")
PY
