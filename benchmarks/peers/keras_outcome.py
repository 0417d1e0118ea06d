"""Outcome parity, the Keras half: for each pneumo run directory (`pneumo train --preset cpu
--seed S`), trains the notebook's Keras model (notebook_keras.py) with the same settings
(config.txt: size, channels, blocks, depth, batch, epochs, learning rate, flips) on the same
split (the run's validation_labels.csv; every other image trains), the notebook's way: the
generator's per-epoch shuffle and random horizontal flips, full batches only, model.fit with the
LearningRateScheduler(cosine_annealing); validation loss, accuracy and mean IoU every epoch. Then
the validation images are predicted, post-processed with the notebook's own prediction cell
(/usr/bin/python3 + scikit-image: resize to 1024 mode='reflect', > 0.5, measure.label,
regionprops, mean probability in each box) into a submission scored by `pneumo evaluate` against
the same validation labels. Writes OUT/outcome.png (every learning curve of both frameworks),
OUT/outcome.md (the mAP table) and OUT/keras-seed<S>/history.csv.

Images: pneumo's decoded and resized inputs (`pneumo dump-batches --all`), which equal the
notebook's pydicom + skimage resize(mode='reflect') path (tests/data: decoding against pydicom,
resize against scikit-image), so both frameworks see the same pixels.
"""
import argparse
import csv
import os
import random
import re
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

POSTPROCESS = r'''
import sys, numpy as np
from skimage import measure
from skimage.transform import resize
data = np.load(sys.argv[1]); ids = open(sys.argv[2]).read().split()
with open(sys.argv[3], "w") as out:
    out.write("patientId,PredictionString\n")
    for pid, pred in zip(ids, data):
        # the notebook's prediction cell
        pred = resize(pred, (1024, 1024), mode='reflect')
        comp = pred[:, :, 0] > 0.5
        comp = measure.label(comp)
        predictionString = ''
        for region in measure.regionprops(comp):
            y, x, y2, x2 = region.bbox
            height = y2 - y
            width = x2 - x
            conf = np.mean(pred[y:y+height, x:x+width])
            predictionString += str(conf) + ' ' + str(x) + ' ' + str(y) + ' ' + str(width) + ' ' + str(height) + ' '
        out.write(pid + ',' + predictionString.strip() + '\n')
'''


def read_key_values(path):
    values = {}
    for line in open(path):
        if "=" in line and not line.strip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def read_history(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def train_keras(run_dir, images, masks, ids, out_dir, pneumo_binary):
    import tensorflow as tf
    from tensorflow import keras
    import notebook_keras as nk
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config = read_key_values(os.path.join(run_dir, "config.txt"))
    seed = int(config["seed"])
    keras.utils.set_random_seed(seed)
    random.seed(seed)
    validation_ids = [row["patientId"] for row in csv.DictReader(open(os.path.join(run_dir, "validation_labels.csv")))]
    validation_ids = list(dict.fromkeys(validation_ids))
    index = {pid: i for i, pid in enumerate(ids)}
    valid_rows = np.array([index[p] for p in validation_ids])
    train_rows = np.array(sorted(set(range(len(ids))) - set(valid_rows.tolist())))
    size, batch = int(config["network.input_size"]), int(config["batch_size"])
    epochs, lr, flip = int(config["epochs"]), float(config["learning_rate"]), config["flip"] == "1"

    class Generator(keras.utils.PyDataset):
        """The notebook's generator over in-memory arrays: shuffle on epoch end, flip half the
        time when augmenting, full batches only."""
        def __init__(self, rows, augment):
            super().__init__()
            self.rows, self.augment = list(rows), augment
            random.shuffle(self.rows)

        def __len__(self):
            return int(len(self.rows) / batch)

        def __getitem__(self, i):
            chosen = self.rows[i * batch:(i + 1) * batch]
            x, y = images[chosen].copy(), masks[chosen].copy()
            if self.augment:
                for j in range(len(chosen)):
                    if random.random() > 0.5:
                        x[j], y[j] = np.fliplr(x[j]), np.fliplr(y[j])
            return x, y

        def on_epoch_end(self):
            random.shuffle(self.rows)

    model = nk.create_network(input_size=size, channels=int(config["network.channels"]),
                              n_blocks=int(config["network.n_blocks"]), depth=int(config["network.depth"]))
    nk.compile_notebook_model(model, learning_rate=lr)
    schedule = keras.callbacks.LearningRateScheduler(nk.cosine_annealing_for(lr, epochs))
    start = time.time()
    history = model.fit(Generator(train_rows, flip), validation_data=(images[valid_rows], masks[valid_rows]),
                        batch_size=batch, callbacks=[schedule], epochs=epochs, verbose=2)
    seconds = time.time() - start
    keras_dir = os.path.join(out_dir, f"keras-seed{seed}")
    os.makedirs(keras_dir, exist_ok=True)
    probabilities = model.predict(images[valid_rows], batch_size=batch, verbose=0)
    np.save(os.path.join(keras_dir, "validation_probabilities.npy"), probabilities)
    with open(os.path.join(keras_dir, "validation_ids.txt"), "w") as handle:
        handle.write("\n".join(validation_ids) + "\n")
    script = os.path.join(keras_dir, "postprocess.py")
    open(script, "w").write(POSTPROCESS)
    submission = os.path.join(keras_dir, "submission.csv")
    subprocess.run(["/usr/bin/python3", script, os.path.join(keras_dir, "validation_probabilities.npy"),
                    os.path.join(keras_dir, "validation_ids.txt"), submission], check=True)
    scored = subprocess.run([pneumo_binary, "evaluate", "--labels", os.path.join(run_dir, "validation_labels.csv"),
                             "--submission", submission], capture_output=True, text=True, check=True).stdout
    mAP = float(re.search(r"^mAP ([0-9.]+)", scored, re.M).group(1))
    with open(os.path.join(keras_dir, "history.csv"), "w") as handle:
        keys = list(history.history)
        handle.write("epoch," + ",".join(keys) + "\n")
        for e in range(len(history.history[keys[0]])):
            handle.write(f"{e + 1}," + ",".join(str(history.history[k][e]) for k in keys) + "\n")
    open(os.path.join(keras_dir, "evaluate.txt"), "w").write(scored)
    return {"seed": seed, "history": history.history, "map": mAP, "seconds": seconds, "train": len(train_rows),
            "validation": len(valid_rows), "evaluate": scored}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="pneumo run directories (one per seed)")
    parser.add_argument("--images", required=True, help="pneumo dump-batches --all output")
    parser.add_argument("--pneumo", default="build/pneumo")
    parser.add_argument("--out", default="out/peers-outcome")
    args = parser.parse_args()
    tensors = load_file(args.images)
    with safe_open(args.images, "np") as handle:
        ids = handle.metadata()["ids"].split(",")
    images, masks = tensors["images"], tensors["masks"]
    keras_results = [train_keras(run, images, masks, ids, args.out, args.pneumo) for run in args.runs]
    pneumo_results = []
    for run in args.runs:
        rows = read_history(os.path.join(run, "history.csv"))
        config = read_key_values(os.path.join(run, "config.txt"))
        pneumo_results.append({"seed": int(config["seed"]), "rows": rows,
                               "map": float(rows[-1]["validation_map"]),
                               "best": max(float(r["validation_map"]) for r in rows),
                               "seconds": sum(float(r["seconds"]) for r in rows)})

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for result in pneumo_results:
        epochs = [int(r["epoch"]) for r in result["rows"]]
        for axis, (train_key, valid_key) in zip(axes, [("train_loss", "validation_loss"),
                                                       ("train_accuracy", "validation_accuracy"),
                                                       ("train_iou", "validation_iou")]):
            axis.plot(epochs, [float(r[train_key]) for r in result["rows"]], color="tab:blue", alpha=0.8,
                      label="pneumo train" if result is pneumo_results[0] else None)
            axis.plot(epochs, [float(r[valid_key]) for r in result["rows"]], color="tab:blue", linestyle="--",
                      alpha=0.8, label="pneumo validation" if result is pneumo_results[0] else None)
    for result in keras_results:
        h = result["history"]
        epochs = list(range(1, len(h["loss"]) + 1))
        for axis, (train_key, valid_key) in zip(axes, [("loss", "val_loss"), ("accuracy", "val_accuracy"),
                                                       ("mean_iou", "val_mean_iou")]):
            axis.plot(epochs, h[train_key], color="tab:orange", alpha=0.8,
                      label="Keras train" if result is keras_results[0] else None)
            axis.plot(epochs, h[valid_key], color="tab:orange", linestyle="--", alpha=0.8,
                      label="Keras validation" if result is keras_results[0] else None)
    for axis, title in zip(axes, ["loss (0.5 BCE + 0.5 IoU)", "pixel accuracy", "mean IoU (notebook metric)"]):
        axis.set_title(title); axis.set_xlabel("epoch"); axis.legend()
    figure.suptitle(f"cpu preset, pneumo (blue) vs the notebook's Keras (orange), {len(args.runs)} seeds each")
    figure.tight_layout()
    figure.savefig(os.path.join(args.out, "outcome.png"), dpi=80)

    lines = ["| seed | pneumo validation mAP (last epoch) | pneumo best | Keras validation mAP (last epoch) | pneumo s | Keras s |",
             "|---|---|---|---|---|---|"]
    for p, k in zip(pneumo_results, keras_results):
        lines.append(f"| {p['seed']} | {p['map']:.4f} | {p['best']:.4f} | {k['map']:.4f} | {p['seconds']:.0f} | {k['seconds']:.0f} |")
    pm, km = [p["map"] for p in pneumo_results], [k["map"] for k in keras_results]
    lines.append(f"| mean ± sd | {np.mean(pm):.4f} ± {np.std(pm, ddof=1) if len(pm) > 1 else 0:.4f} | | "
                 f"{np.mean(km):.4f} ± {np.std(km, ddof=1) if len(km) > 1 else 0:.4f} | | |")
    lines.append(f"\n{keras_results[0]['train']} training and {keras_results[0]['validation']} validation images "
                 f"(seed {keras_results[0]['seed']}'s split); Keras range {min(km):.4f}..{max(km):.4f}, "
                 f"pneumo range {min(pm):.4f}..{max(pm):.4f}")
    text = "\n".join(lines) + "\n"
    open(os.path.join(args.out, "outcome.md"), "w").write(text)
    print(text)
    print("chart:", os.path.join(args.out, "outcome.png"))


if __name__ == "__main__":
    main()
