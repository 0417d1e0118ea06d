#!/usr/bin/python3
"""bf16 against fp32 on outcomes (benchmarks/precision_outcome.sh runs the trainings): reads each
run directory's config.txt and history.csv, tabulates the last epoch's validation mAP per seed and
precision (mean and sample standard deviation), draws every learning curve (train loss, validation
loss, validation mAP; fp32 blue, bf16 orange) into OUT/precision_curves.png, and compares two
submissions of the same checkpoint (fp32 and bf16 `pneumo predict`): per image, the number of
boxes, and for boxes matched by IoU >= 0.5, the corner shift in pixels and the confidence change.
Writes OUT/precision_outcome.md and prints it. Debian's /usr/bin/python3 (numpy, matplotlib)."""
import argparse
import csv
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def read_config(run):
    values = {}
    with open(os.path.join(run, "config.txt")) as f:
        for line in f:
            if "=" in line:
                key, value = line.rstrip("\n").split("=", 1)
                values[key.strip()] = value.strip()
    return values


def read_history(run):
    with open(os.path.join(run, "history.csv")) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_boxes(path):
    """patientId -> [(confidence, x, y, w, h)]"""
    boxes = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            values = [float(v) for v in row["PredictionString"].split()]
            boxes[row["patientId"]] = [tuple(values[i:i + 5]) for i in range(0, len(values), 5)]
    return boxes


def iou(a, b):
    ax, ay, aw, ah = a[1:]
    bx, by, bw, bh = b[1:]
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def compare_submissions(first, second):
    a, b = read_boxes(first), read_boxes(second)
    assert set(a) == set(b), "the submissions cover different images"
    count_changed, unmatched, shifts, confidence_changes, total = 0, 0, [], [], 0
    for image in a:
        boxes_a, boxes_b = a[image], list(b[image])
        total += len(boxes_a)
        count_changed += len(boxes_a) != len(boxes_b)
        for box in boxes_a:
            best = max(boxes_b, key=lambda other: iou(box, other), default=None)
            if best is None or iou(box, best) < 0.5:
                unmatched += 1
                continue
            boxes_b.remove(best)
            corners_a = np.array([box[1], box[2], box[1] + box[3], box[2] + box[4]])
            corners_b = np.array([best[1], best[2], best[1] + best[3], best[2] + best[4]])
            shifts.append(float(np.abs(corners_a - corners_b).max()))
            confidence_changes.append(abs(box[0] - best[0]))
        unmatched += len(boxes_b)
    return {
        "images": len(a),
        "boxes": total,
        "images whose box count changed": count_changed,
        "boxes without a match (IoU >= 0.5)": unmatched,
        "matched boxes with identical corners": sum(s == 0 for s in shifts),
        "largest corner shift of a matched box (px, 1024 frame)": max(shifts, default=0.0),
        "median corner shift (px)": statistics.median(shifts) if shifts else 0.0,
        "largest confidence change": max(confidence_changes, default=0.0),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--submissions", nargs=2, metavar=("FP32_CSV", "BF16_CSV"))
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    rows, curves = {}, []
    for run in args.runs:
        config, history = read_config(run), read_history(run)
        precision = config.get("precision", "fp32")
        rows.setdefault(precision, []).append((int(config["seed"]), history[-1]["validation_map"]))
        curves.append((precision, int(config["seed"]), history))
    lines = ["| seed | " + " | ".join(f"{p} validation mAP (last epoch)" for p in rows) + " |",
             "|---|" + "---|" * len(rows)]
    seeds = sorted({seed for values in rows.values() for seed, _ in values})
    for seed in seeds:
        cells = [next((f"{m:.3f}" for s, m in rows[p] if s == seed), "-") for p in rows]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    summary = []
    for p, values in rows.items():
        maps = [m for _, m in values]
        sd = statistics.stdev(maps) if len(maps) > 1 else 0.0
        summary.append(f"{statistics.mean(maps):.3f} ± {sd:.3f}")
    lines.append("| mean ± sd | " + " | ".join(summary) + " |")
    if "fp32" in rows and "bf16" in rows:
        fp32 = [m for _, m in rows["fp32"]]
        bf16 = [m for _, m in rows["bf16"]]
        spread = max(fp32) - min(fp32)
        difference = statistics.mean(bf16) - statistics.mean(fp32)
        lines.append("")
        lines.append(f"bf16 mean - fp32 mean = {difference:+.3f}; fp32 seed-to-seed range = {spread:.3f} "
                     f"({'within' if abs(difference) <= spread else 'OUTSIDE'} the spread)")
    if args.submissions:
        lines.append("")
        lines.append(f"`pneumo predict` of one fp32 checkpoint, fp32 vs bf16 ({os.path.basename(args.submissions[0])} "
                     f"vs {os.path.basename(args.submissions[1])}):")
        lines.append("")
        for key, value in compare_submissions(*args.submissions).items():
            lines.append(f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "precision_outcome.md"), "w") as f:
        f.write(text)
    print(text)

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = {"fp32": "tab:blue", "bf16": "tab:orange"}
    for precision, seed, history in curves:
        epochs = [h["epoch"] for h in history]
        label = f"{precision} seed {seed}"
        for axis, key in zip(axes, ["train_loss", "validation_loss", "validation_map"]):
            axis.plot(epochs, [h[key] for h in history], color=colors.get(precision, "gray"), alpha=0.8,
                      linestyle="-" if precision == "fp32" else "--", label=label)
    for axis, title in zip(axes, ["train loss", "validation loss", "validation mAP"]):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    figure.suptitle("cpu preset, fp32 (solid) vs bf16 (dashed), same data and split per seed")
    figure.tight_layout()
    figure.savefig(os.path.join(args.out, "precision_curves.png"), dpi=90)


if __name__ == "__main__":
    main()
