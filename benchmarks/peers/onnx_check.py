"""ONNX Runtime runs pneumo's exported model: the ONNX checker (full check, with shape inference)
accepts the file, and ONNX Runtime's probabilities on real (synthetic-DICOM) images match the ones
pneumo computed for the same inputs within TOLERANCE.

  ./build/pneumo export --checkpoint RUN/best.safetensors --onnx model.onnx \\
      --reference-images DATA/stage_2_test_images --reference-count 8
  ~/.cache/pneumo-peers-venv/bin/python benchmarks/peers/onnx_check.py model.onnx \\
      [model.onnx.reference.safetensors] [--out ort.safetensors]

Tolerance: 2e-5 absolute on probabilities. Both run float32 with different summation orders
(ONNX Runtime's MLAS convolutions, pneumo's direct / im2col+OpenBLAS ones) through 20+ layers;
the PyTorch golden test holds pneumo's forward to 1e-5 of a float64 reference, so two float32
implementations may be up to twice that apart. A real export mistake (a transposed kernel, a
missing epsilon, a wrong upsampling alignment) moves probabilities by 1e-2 or more.
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file

TOLERANCE = 2e-5


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("reference", nargs="?")
    parser.add_argument("--out", help="also write ONNX Runtime's probabilities here (safetensors)")
    args = parser.parse_args()
    reference_path = args.reference or args.model + ".reference.safetensors"

    model = onnx.load(args.model)
    onnx.checker.check_model(model, full_check=True)
    print(f"onnx {onnx.__version__}: checker accepts {args.model} (opset {model.opset_import[0].version}, "
          f"{len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers)")

    reference = load_file(reference_path)
    images = reference["images"]  # (N,S,S,1) NHWC; with C = 1 the same bytes as (N,1,S,S)
    n, s = images.shape[0], images.shape[1]
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"images": images.reshape(n, 1, s, s)})[0]
    expected = reference["probabilities"].reshape(n, 1, s, s)
    error = float(np.max(np.abs(probabilities - expected)))
    positive = float(np.mean(expected > 0.5))
    print(f"onnxruntime {ort.__version__}: {n} images {s}x{s}, max |p_ort - p_pneumo| = {error:.3g} "
          f"(tolerance {TOLERANCE:g}); probabilities span {expected.min():.3g}..{expected.max():.3g}, "
          f"{100 * positive:.1f}% of pixels above 0.5")
    if args.out:
        save_file({"probabilities": np.ascontiguousarray(probabilities.reshape(n, s, s, 1))}, args.out,
                  metadata={"onnxruntime": ort.__version__, "model": args.model})
    ok = error <= TOLERANCE and expected.max() - expected.min() > 0.1
    print("onnx check:", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
