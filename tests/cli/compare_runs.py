#!/usr/bin/env python3
"""Compares two training runs' results: checkpoints (every tensor byte and every metadata field,
the history's `seconds` column aside), history.csv (the same way) and the curves.
Usage: compare_runs.py RUN_A RUN_B; prints what differs and exits 1, or prints "same" and exits 0.
Standard library only (CTest runs it with any python3)."""
import json
import struct
import sys


def without_seconds(history_text):
    rows = [line.split(",") for line in history_text.strip().splitlines()]
    return [row[:-1] for row in rows]  # seconds is the last column (apps/learning_curves.h)


def read_checkpoint(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    return header, metadata, data[8 + length:]


def main():
    a, b = sys.argv[1], sys.argv[2]
    problems = []
    for name in ("last.safetensors", "best.safetensors"):
        try:
            header_a, meta_a, body_a = read_checkpoint(f"{a}/{name}")
            header_b, meta_b, body_b = read_checkpoint(f"{b}/{name}")
        except OSError as error:
            problems.append(f"{name}: {error}")
            continue
        if header_a != header_b or body_a != body_b:
            problems.append(f"{name}: tensors differ")
        for key in sorted(set(meta_a) | set(meta_b)):
            va, vb = meta_a.get(key), meta_b.get(key)
            if key == "run.history" and va is not None and vb is not None:
                va, vb = without_seconds(va), without_seconds(vb)
            if va != vb:
                problems.append(f"{name}: metadata {key} differs: {va!r} vs {vb!r}")
    try:
        with open(f"{a}/history.csv") as fa, open(f"{b}/history.csv") as fb:
            if without_seconds(fa.read()) != without_seconds(fb.read()):
                problems.append("history.csv differs")
    except OSError as error:
        problems.append(f"history.csv: {error}")
    for name in ("curves.png", "validation_grid.png"):
        try:
            with open(f"{a}/{name}", "rb") as fa, open(f"{b}/{name}", "rb") as fb:
                if fa.read() != fb.read():
                    problems.append(f"{name} differs")
        except OSError as error:
            problems.append(f"{name}: {error}")
    for problem in problems:
        print(problem)
    if not problems:
        print("same")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
