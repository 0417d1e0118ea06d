"""The speed table with today's frameworks: training and inference images/s of the notebook's
network (256x256, 32 channels, 2 blocks, depth 4, batch 8, 2 CPU threads) for pneumo
(build/bench_network), Keras 3 on TensorFlow (the notebook's framework, notebook_keras.py),
PyTorch 2.x from PyPI and Debian's PyTorch 1.13 (benchmarks/pytorch_network.py under each), and
ONNX Runtime inference on pneumo's exported model (`pneumo export`). Every framework runs in its
own process, one after the other, for --rounds rounds (back to back, so machine load hits all
alike); each process reports the median of --repeats timed steps after a warm-up, and the table
shows the median over rounds and the ratio pneumo / framework. A framework that cannot be
imported is listed as "not installed" with the reason.

  ~/.cache/pneumo-peers-venv/bin/python benchmarks/peers/peers_speed.py --build build [--rounds 3] [--repeats 3]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZE, CHANNELS, BLOCKS, DEPTH, BATCH, THREADS = 256, 32, 2, 4, 8, 2


def keras_worker(repeats):
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    sys.path.insert(0, HERE)
    import notebook_keras as nk
    nk.NotebookBatchNormalization.bessel = False  # Keras 3's own layer, as a user would time it
    model = nk.compile_notebook_model(nk.create_network(input_size=SIZE, channels=CHANNELS, n_blocks=BLOCKS, depth=DEPTH))
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, SIZE, SIZE, 1), dtype=np.float32)
    masks = (rng.random((BATCH, SIZE, SIZE, 1)) > 0.9).astype(np.float32)

    def timed(function):
        function()  # warm-up: tracing, graph building
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); function(); times.append(time.perf_counter() - start)
        return statistics.median(times)
    train = timed(lambda: model.train_on_batch(images, masks))
    infer = timed(lambda: model.predict_on_batch(images))
    return {"train": BATCH / train, "inference": BATCH / infer, "version": f"Keras {nk.keras.__version__} / TF {tf.__version__}"}


def ort_worker(repeats, model_path):
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).random((BATCH, 1, SIZE, SIZE), dtype=np.float32)
    session.run(None, {"images": images})
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); session.run(None, {"images": images}); times.append(time.perf_counter() - start)
    return {"inference": BATCH / statistics.median(times), "version": f"ONNX Runtime {ort.__version__}"}


def run_json(command, timeout=1800):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError((result.stderr.strip().splitlines() or ["exit status %d" % result.returncode])[-1])
    return json.loads(lines[-1])


def pneumo(build, repeats):
    out = subprocess.run([os.path.join(build, "bench_network"), "--device", "cpu", "--size", str(SIZE), "--channels",
                          str(CHANNELS), "--blocks", str(BLOCKS), "--depth", str(DEPTH), "--batch", str(BATCH),
                          "--repeats", str(repeats), "--threads", str(THREADS)],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"^result: .*inference_images_per_s=([0-9.eE+-]+) .*train_images_per_s=([0-9.eE+-]+)", out, re.M)
    return {"inference": float(match.group(1)), "train": float(match.group(2)), "version": "pneumo"}


def pytorch(python, repeats):
    check = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError((check.stderr.strip().splitlines() or ["no torch"])[-1])
    out = subprocess.run([python, os.path.join(ROOT, "benchmarks", "pytorch_network.py"), "--repeats", str(repeats),
                          "--threads", str(THREADS), "--batch", str(BATCH)], capture_output=True, text=True, check=True).stdout
    train = float(re.search(r"pytorch training step .* ([0-9.]+) images/s", out).group(1))
    infer = float(re.search(r"pytorch inference .* ([0-9.]+) images/s", out).group(1))
    return {"train": train, "inference": infer, "version": f"PyTorch {check.stdout.strip()}"}


def make_onnx(build, work):
    """The notebook network's ONNX file: a checkpoint from one batch of `pneumo train` on a tiny
    synthetic set (the weights do not matter for speed), then `pneumo export`."""
    pneumo_cli = os.path.join(build, "pneumo")
    subprocess.run([pneumo_cli, "synth", "--out", f"{work}/data", "--train-images", "24", "--test-images", "2",
                    "--image-size", "256", "--seed", "5"], check=True, capture_output=True)
    subprocess.run([pneumo_cli, "train", "--data", f"{work}/data", "--run-dir", f"{work}/run", "--preset", "notebook",
                    "--device", "cpu", "--batch", str(BATCH), "--validation", "8", "--epochs", "1", "--stop-after", "1",
                    "--workers", "2"], capture_output=True)  # exits 130 after saving `last` (--stop-after)
    if not os.path.exists(f"{work}/run/last.safetensors"):
        raise OSError("pneumo train --stop-after 1 wrote no checkpoint")
    subprocess.run([pneumo_cli, "export", "--checkpoint", f"{work}/run/last.safetensors", "--onnx", f"{work}/model.onnx"],
                   check=True, capture_output=True)
    return f"{work}/model.onnx"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--debian-python", default="/usr/bin/python3")
    parser.add_argument("--worker", choices=["keras", "ort"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "keras":
        print(json.dumps(keras_worker(args.repeats))); return
    if args.worker == "ort":
        print(json.dumps(ort_worker(args.repeats, args.model))); return

    work = tempfile.mkdtemp(prefix="pneumo-peers-speed-")
    try:
        onnx_model = make_onnx(args.build, work)
    except (subprocess.CalledProcessError, OSError) as error:
        onnx_model, onnx_error = None, f"pneumo export failed or missing ({error})"
    me = [sys.executable, os.path.abspath(__file__), "--repeats", str(args.repeats)]
    frameworks = [
        ("pneumo", lambda: pneumo(args.build, args.repeats)),
        ("Keras / TensorFlow", lambda: run_json(me + ["--worker", "keras"])),
        ("PyTorch 2.x (PyPI)", lambda: pytorch(sys.executable, args.repeats)),
        ("PyTorch (Debian)", lambda: pytorch(args.debian_python, args.repeats)),
        ("ONNX Runtime", lambda: run_json(me + ["--worker", "ort", "--model", onnx_model]) if onnx_model
         else (_ for _ in ()).throw(RuntimeError(onnx_error))),
    ]
    results = {name: [] for name, _ in frameworks}
    versions, failures = {}, {}
    for round_index in range(args.rounds):
        for name, measure in frameworks:
            if name in failures:
                continue
            try:
                result = measure()
            except Exception as error:  # not installed / cannot run: reported in the table
                failures[name] = str(error)[:120]
                continue
            versions[name] = result.pop("version")
            results[name].append(result)
            print(f"round {round_index + 1}: {versions[name]}: " +
                  ", ".join(f"{k} {v:.2f} images/s" for k, v in result.items()), flush=True)

    def median(name, key):
        values = [r[key] for r in results[name] if key in r]
        return statistics.median(values) if values else None
    ours_train, ours_infer = median("pneumo", "train"), median("pneumo", "inference")
    print(f"\nnotebook network {SIZE}x{SIZE}, {CHANNELS} channels, {BLOCKS} blocks, depth {DEPTH}, batch {BATCH}, "
          f"{THREADS} threads; medians of {args.rounds} back-to-back rounds, each the median of {args.repeats} steps")
    print(f"| framework | training images/s | pneumo / it | inference images/s | pneumo / it |")
    print(f"|---|---|---|---|---|")
    for name, _ in frameworks:
        if name in failures and not results[name]:
            print(f"| {name} | cannot run here: {failures[name]} | | | |")
            continue
        train, infer = median(name, "train"), median(name, "inference")
        cell = lambda value, ours: ("%.2f" % value, "%.2f" % (ours / value) if ours and name != "pneumo" else "") \
            if value else ("n/a (inference only)", "")
        t, tr = cell(train, ours_train)
        i, ir = cell(infer, ours_infer)
        print(f"| {versions[name]} | {t} | {tr} | {i} | {ir} |")


if __name__ == "__main__":
    main()
