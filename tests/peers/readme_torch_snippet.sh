#!/usr/bin/env bash
# CTest readme_torch_snippet: runs layers/checkpoint.md's "Using a checkpoint elsewhere" PyTorch block (the
# code fence after <!-- readme_torch_snippet -->) on a checkpoint made of the ONNX fixture's trained
# weights, then checks the module's probabilities for the fixture's four synthetic DICOMs against
# pneumo's (as ONNX Runtime reproduced them, within 4e-7) to 2e-5. Python: $PNEUMO_TORCH_PYTHON,
# else Debian's /usr/bin/python3 (python3-torch), else the peers' venv; without torch: SKIPPED (77).
# Usage: tests/peers/readme_torch_snippet.sh   (from the repository root)
set -euo pipefail
python=""
for candidate in "${PNEUMO_TORCH_PYTHON:-}" /usr/bin/python3 "${PNEUMO_PEERS_VENV:-$HOME/.cache/pneumo-peers-venv}/bin/python"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import torch, numpy' 2>/dev/null; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "SKIPPED readme_torch_snippet: no Python with torch and numpy (install python3-torch)"
  exit 77
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
awk '/<!-- readme_torch_snippet -->/ {armed = 1; next} armed && /^```python/ {inside = 1; next}
     inside && /^```/ {exit} inside {print}' layers/checkpoint.md > "$work/snippet.py"
[ -s "$work/snippet.py" ] || { echo "layers/checkpoint.md: no python block after <!-- readme_torch_snippet -->"; exit 1; }
"$python" - "$work" <<'PY'
import json, struct, sys
import numpy as np

work = sys.argv[1]

def read(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little"); header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    return {k: np.frombuffer(data[t["data_offsets"][0]:t["data_offsets"][1]], "<f4").reshape(t["shape"])
            for k, t in header.items()}, meta

def write(path, tensors, meta):  # a pneumo checkpoint: plain names + Adam moments (zeros)
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name, value in tensors.items():
        blob = np.ascontiguousarray(value, "<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob); offset += len(blob)
    text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))

fixture, meta = read("tests/fixtures/peers/onnx_reference.safetensors")
weights = {k[len("weight."):]: v for k, v in fixture.items() if k.startswith("weight.")}
checkpoint = dict(weights)
for name, value in weights.items():
    if "running_" not in name:
        checkpoint["adam_m/" + name] = np.zeros_like(value); checkpoint["adam_v/" + name] = np.zeros_like(value)
meta = {k: v for k, v in meta.items() if k.startswith("network.")}
# the fixture's metadata is what `pneumo train` wrote (apps/run_settings.cpp add_network_metadata)
for key in ("network.bn_epsilon", "network.bn_momentum", "network.upsample", "network.input_scaling"):
    assert key in meta, f"onnx_reference.safetensors: checkpoint metadata lacks {key}"
meta.update({"format": "pneumo-checkpoint", "format_version": "1", "step": "0", "epoch": "0"})
write(f"{work}/model.safetensors", checkpoint, meta)

source = open(f"{work}/snippet.py").read().replace("runs/run/best.safetensors", f"{work}/model.safetensors")
namespace = {}
exec(compile(source, "layers/checkpoint.md (readme_torch_snippet)", "exec"), namespace)
torch, model = namespace["torch"], namespace["model"]
images = fixture["images"]  # (N,S,S,1) == (N,1,S,S) bytes
n, s = images.shape[0], images.shape[1]
with torch.no_grad():
    probabilities = model(torch.from_numpy(images.reshape(n, 1, s, s).copy())).numpy()
expected = fixture["ort.probabilities"].reshape(n, 1, s, s)
error = float(np.abs(probabilities - expected).max())
print(f"torch {torch.__version__}: checkpoint.md module vs pneumo on {n} images {s}x{s}: max |difference| {error:.3g} (tolerance 2e-5)")
sys.exit(0 if error <= 2e-5 and expected.max() - expected.min() > 0.5 else 1)
PY
