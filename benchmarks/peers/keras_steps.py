"""Step parity with the notebook's own framework: pneumo's initial weights and pneumo's batches
(from `pneumo dump-batches`) -> 30 training steps of the notebook's Keras model (notebook_keras.py)
-> the fixture tests/test_keras_steps.cpp compares pneumo against, without Python.

Run (from the repository root, after benchmarks/peers/setup-venv.sh):
  ./build/pneumo synth --out /tmp/peers/small --train-images 160 --test-images 16 --seed 7
  ./build/pneumo dump-batches --data /tmp/peers/small --size 32 --channels 4 --blocks 1 --depth 2 \
      --batch 4 --batches 30 --seed 1 --out /tmp/peers/batches.safetensors
  ~/.cache/pneumo-peers-venv/bin/python benchmarks/peers/keras_steps.py /tmp/peers/batches.safetensors \
      tests/fixtures/peers/keras_steps.safetensors

The learning rate is the notebook's for its first epoch (cosine_annealing(0) = 1e-3; the schedule
changes the rate per epoch only, and 30 steps are inside epoch 0). Three Keras runs (float32):
  notebook batch norm (Bessel-corrected moving variance, change 3)           -> keras.*
  the same from initial weights * (1 + 1e-6 N(0,1)), a float32-sized nudge  -> keras_nudged.*
        (30 steps of batch-4 training with batch norm, ReLU and Adam amplify a 1e-6 difference
        to ~1e-3 in the weights: how far two correct float32 implementations may drift apart,
        the scale of the test's tolerances)
  Keras 3's own batch norm (biased moving variance)                          -> keras3_biased.*
Fixture tensors: images, masks (30*4,32,32,1); initial.<param>; keras.loss, keras.accuracy,
keras.mean_iou (30), keras.final.<param>; keras_nudged.loss, .accuracy, .mean_iou,
keras_nudged.final.<param>; keras3_biased.final.<param> (running statistics only).
Metadata: the configuration, the Keras and TensorFlow versions.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open

import notebook_keras as nk
from tensorflow import keras


def run(batches, meta, floatx, bessel):
    keras.utils.set_random_seed(0)  # irrelevant (weights are set) but keeps runs reproducible
    nk.NotebookBatchNormalization.bessel = bessel
    size, channels = int(meta["network.input_size"]), int(meta["network.channels"])
    n_blocks, depth = int(meta["network.n_blocks"]), int(meta["network.depth"])
    model = nk.create_network(input_size=size, channels=channels, n_blocks=n_blocks, depth=depth)
    nk.compile_notebook_model(model)
    lr = nk.cosine_annealing_for(0.001, 25)(0)  # the notebook's schedule, epoch 0
    model.optimizer.learning_rate = lr
    initial = {k[len("initial."):]: v.astype(floatx) for k, v in batches.items() if k.startswith("initial.")}
    nk.set_pneumo_weights(model, initial, n_blocks, depth)
    batch_size, steps = int(meta["batch_size"]), int(meta["batches"])
    images, masks = batches["images"].astype(floatx), batches["masks"]
    logs = {"loss": [], "accuracy": [], "mean_iou": []}
    for step in range(steps):
        rows = slice(step * batch_size, (step + 1) * batch_size)
        model.reset_metrics()  # each step's own values (computed before its update, as pneumo's)
        result = model.train_on_batch(images[rows], masks[rows], return_dict=True)
        for key in logs:
            logs[key].append(float(result[key]))
    final = nk.get_pneumo_weights(model, n_blocks, depth)
    return {k: np.asarray(v, np.float32) for k, v in logs.items()}, {k: v.astype(np.float32) for k, v in final.items()}


def main():
    source, out = sys.argv[1], sys.argv[2]
    batches = load_file(source)
    with safe_open(source, "np") as handle:
        meta = handle.metadata()
    fixture = {k: v for k, v in batches.items()}
    logs32, final32 = run(batches, meta, "float32", True)
    rng = np.random.default_rng(0)
    nudged = {k: (v * (1 + 1e-6 * rng.standard_normal(v.shape))).astype(np.float32) if k.startswith("initial.") else v
              for k, v in batches.items()}
    logs_nudged, final_nudged = run(nudged, meta, "float32", True)
    _, final_biased = run(batches, meta, "float32", False)
    for key, values in logs32.items():
        fixture["keras." + key] = values
        fixture["keras_nudged." + key] = logs_nudged[key]
    for name, value in final32.items():
        fixture["keras.final." + name] = value
        fixture["keras_nudged.final." + name] = final_nudged[name]
        if name.endswith("running_var") or name.endswith("running_mean"):
            fixture["keras3_biased.final." + name] = final_biased[name]
    import tensorflow as tf
    meta = dict(meta)
    meta["keras_version"] = keras.__version__
    meta["tensorflow_version"] = tf.__version__
    meta["learning_rate"] = "0.001"
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in fixture.items()}, out, metadata=meta)
    worst = max(float(np.max(np.abs(final32[n] - final_nudged[n]))) for n in final32)
    print(f"wrote {out}: Keras {keras.__version__} / TF {tf.__version__}")
    print("losses (float32):", " ".join(f"{v:.5f}" for v in logs32["loss"]))
    print(f"Keras vs Keras from 1e-6-nudged weights: max |loss diff| "
          f"{np.max(np.abs(logs32['loss'] - logs_nudged['loss'])):.2e}, max |final weight diff| {worst:.2e}")
    for name in final32:
        if name.endswith("running_var"):
            print(f"{name}: Bessel vs biased moving variance, max diff "
                  f"{float(np.max(np.abs(final32[name] - final_biased[name]))):.3e}")
            break


if __name__ == "__main__":
    main()
