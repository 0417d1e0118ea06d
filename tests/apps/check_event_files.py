#!/usr/bin/env python3
"""Reads the TensorBoard event files of a `pneumo train` run directory back and checks them.

  check_event_files.py --reader hand|tensorboard RUN [--recorded-step S] [--same-as OTHER_RUN]

--reader hand: a parser written here from the format's description (TFRecord framing with its own
bit-by-bit CRC-32C and mask; protobuf wire format decoded by hand; TensorBoard's field numbers),
run by Debian's python. --reader tensorboard: TensorBoard's own code (EventAccumulator for the
values, the record reader that verifies every CRC), run by the peers' environment.
Checks, against the run's other files (independent of the event files):
  * every file starts with file_version "brain.Event:2", every record's CRCs hold;
  * epoch/* scalars: one per history.csv row at step = epoch, each equal to the row's value
    rounded to float32 (exact); the validation grid image at every epoch, a PNG of that size;
  * step/* scalars: one per Adam step 1..N (N: last.safetensors' step); loss = (bce + iou_loss)/2;
    the learning rate is its epoch's; the mean of an epoch's step losses (and accuracies, IoUs)
    is history.csv's train_loss (train_accuracy, train_iou) to float32 rounding;
  * --recorded-step S (the last step, recorded with --inspect-every): weights/<p> histograms equal
    numpy.histogram(last.safetensors' p, bins=30) exactly; gradients/<p> count every value;
  * --same-as OTHER: the same scalars as OTHER's (but times and images/s), e.g. a stopped and
    resumed run against an uninterrupted one.
Prints one line per check and exits 1 on the first failure.
"""
import argparse
import csv
import glob
import json
import os
import struct
import sys

import numpy as np

TIMING_TAGS = {"epoch/seconds", "step/images_per_second"}


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


def ok(message):
    print("ok: " + message)


def f32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


# ---- the hand-rolled reader -------------------------------------------------------------------
def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        if at + 12 > len(data):
            fail(f"{path}: torn record header at byte {at}")
        length, = struct.unpack_from("<Q", data, at)
        header_crc, = struct.unpack_from("<I", data, at + 8)
        if masked(crc32c(data[at:at + 8])) != header_crc:
            fail(f"{path}: record at byte {at}: length CRC differs")
        payload = data[at + 12:at + 12 + length]
        if len(payload) != length or at + 16 + length > len(data):
            fail(f"{path}: torn record at byte {at}")
        payload_crc, = struct.unpack_from("<I", data, at + 12 + length)
        if masked(crc32c(payload)) != payload_crc:
            fail(f"{path}: record at byte {at}: payload CRC differs")
        yield payload
        at += 16 + length


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data):
    """{field number: [values]}: varints as int, fixed64/fixed32 as raw bytes, length-delimited as bytes."""
    out, at = {}, 0
    while at < len(data):
        key, at = varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        elif wire == 2:
            length, at = varint(data, at)
            value, at = data[at:at + length], at + length
        else:
            fail(f"unexpected protobuf wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def double(raw):
    return struct.unpack("<d", raw)[0]


def doubles(values):  # packed (one length-delimited run) or not
    out = []
    for raw in values:
        out += list(struct.unpack(f"<{len(raw) // 8}d", raw))
    return out


def read_hand(run):
    """(scalars {tag: [(step, value)]}, images {tag: [(step, width, height, png)]}, histograms {tag: [(step, dict)]})."""
    scalars, images, histograms = {}, {}, {}
    files = sorted(glob.glob(os.path.join(run, "*tfevents*")))
    for path in files:
        for index, payload in enumerate(records(path)):
            event = fields(payload)
            if index == 0:
                if event.get(3) != [b"brain.Event:2"]:
                    fail(f"{path}: the first record is not file_version brain.Event:2")
                continue
            step = event.get(2, [0])[0]
            for summary in event.get(5, []):
                for value in fields(summary).get(1, []):
                    value = fields(value)
                    tag = value[1][0].decode()
                    if 2 in value:
                        scalars.setdefault(tag, []).append((step, struct.unpack("<f", value[2][0])[0]))
                    elif 4 in value:
                        image = fields(value[4][0])
                        images.setdefault(tag, []).append((step, image.get(2, [0])[0], image.get(1, [0])[0],
                                                           image.get(3, [0])[0], image[4][0]))
                    elif 5 in value:
                        histo = fields(value[5][0])
                        histograms.setdefault(tag, []).append((step, {
                            "min": double(histo[1][0]) if 1 in histo else 0.0,
                            "max": double(histo[2][0]) if 2 in histo else 0.0,
                            "num": double(histo[3][0]) if 3 in histo else 0.0,
                            "sum": double(histo[4][0]) if 4 in histo else 0.0,
                            "bucket_limit": doubles(histo.get(6, [])), "bucket": doubles(histo.get(7, []))}))
    return files, scalars, images, histograms


# ---- TensorBoard's reader ---------------------------------------------------------------------
def read_tensorboard(run):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
    files = sorted(glob.glob(os.path.join(run, "*tfevents*")))
    for path in files:  # TensorBoard's record reader raises DataLossError on a CRC that differs
        reader = PyRecordReader_New(path)
        count = 0
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            count += 1
        ok(f"{os.path.basename(path)}: TensorBoard's record reader verifies the CRCs of {count} records")
    accumulator = event_accumulator.EventAccumulator(run, size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.HISTOGRAMS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in tags["scalars"]}
    images = {tag: [(e.step, e.width, e.height, 3, e.encoded_image_string) for e in accumulator.Images(tag)]
              for tag in tags["images"]}
    histograms = {}
    for tag in tags["histograms"]:
        for e in accumulator.Histograms(tag):
            h = e.histogram_value
            histograms.setdefault(tag, []).append((e.step, {
                "min": h.min, "max": h.max, "num": h.num, "sum": h.sum,
                "bucket_limit": list(h.bucket_limit), "bucket": list(h.bucket)}))
    return files, scalars, images, histograms


# ---- the run's other files --------------------------------------------------------------------
def safetensors(path):
    data = open(path, "rb").read()
    size, = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + size])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[8 + size + begin:8 + size + end], dtype=np.float32)
    return header.get("__metadata__", {}), tensors


def check(run, reader, recorded_step, same_as):
    read = read_hand if reader == "hand" else read_tensorboard
    files, scalars, images, histograms = read(run)
    if not files:
        fail(f"{run}: no event files")
    ok(f"{run}: {len(files)} event file(s) read by the {reader} reader")
    history = list(csv.DictReader(open(os.path.join(run, "history.csv"))))
    metadata, tensors = safetensors(os.path.join(run, "last.safetensors"))
    steps = int(metadata["step"])
    epochs = len(history)

    columns = {"epoch/loss": "train_loss", "epoch/accuracy": "train_accuracy", "epoch/mean_iou": "train_iou",
               "epoch/val_loss": "validation_loss", "epoch/val_accuracy": "validation_accuracy",
               "epoch/val_mean_iou": "validation_iou", "epoch/val_map": "validation_map",
               "epoch/learning_rate": "learning_rate", "epoch/seconds": "seconds"}
    for tag, column in columns.items():
        points = scalars.get(tag, [])
        expected = [(int(row["epoch"]), f32(float(row[column]))) for row in history]
        if tag == "epoch/seconds":  # wall-clock: one per epoch, positive (history.csv's are
            expected = [(epoch, None) for epoch, _ in expected]  # rewritten on resume)
            points = [(step, None) if value > 0 else (step, value) for step, value in points]
        if sorted(points) != sorted(expected):
            fail(f"{tag}: {points} but history.csv's {column} gives {expected}")
    ok(f"epoch scalars ({len(columns)} tags x {epochs} epochs) equal history.csv's rows as float32")

    for tag in ("step/loss", "step/bce", "step/iou_loss", "step/accuracy", "step/mean_iou", "step/learning_rate",
                "step/images_per_second"):
        if sorted(step for step, _ in scalars.get(tag, [])) != list(range(1, steps + 1)):
            fail(f"{tag}: steps {sorted(step for step, _ in scalars.get(tag, []))}, expected 1..{steps}")
    per_step = {tag: dict(scalars[tag]) for tag in scalars if tag.startswith("step/")}
    for step in range(1, steps + 1):
        loss, bce, iou = per_step["step/loss"][step], per_step["step/bce"][step], per_step["step/iou_loss"][step]
        if abs(loss - 0.5 * (bce + iou)) > 1e-6 * max(1.0, abs(loss)):
            fail(f"step {step}: loss {loss} is not (bce {bce} + iou_loss {iou}) / 2")
    if steps % epochs:
        fail(f"{steps} steps do not divide into {epochs} epochs")
    per_epoch = steps // epochs
    for row in history:
        epoch = int(row["epoch"])
        epoch_steps = range((epoch - 1) * per_epoch + 1, epoch * per_epoch + 1)
        for tag, column in (("step/loss", "train_loss"), ("step/accuracy", "train_accuracy"),
                            ("step/mean_iou", "train_iou")):
            mean = sum(per_step[tag][s] for s in epoch_steps) / per_epoch
            if abs(mean - float(row[column])) > 2e-7 * max(1.0, abs(mean)) + 1e-7:
                fail(f"epoch {epoch}: mean {tag} {mean} but history.csv's {column} is {row[column]}")
        for s in epoch_steps:
            if per_step["step/learning_rate"][s] != f32(float(row["learning_rate"])):
                fail(f"step {s}: learning rate {per_step['step/learning_rate'][s]}, epoch {epoch}'s is {row['learning_rate']}")
    ok(f"step scalars at steps 1..{steps}: loss = (bce + iou_loss)/2, epoch means equal history.csv's, learning rates")

    grid = images.get("epoch/validation_grid", [])
    if sorted(step for step, *_ in grid) != list(range(1, epochs + 1)):
        fail(f"epoch/validation_grid at steps {[step for step, *_ in grid]}, expected 1..{epochs}")
    for step, width, height, _, png in grid:
        if png[:8] != b"\x89PNG\r\n\x1a\n" or struct.unpack(">II", png[16:24]) != (width, height):
            fail(f"epoch/validation_grid at {step}: not a {width}x{height} PNG")
    ok(f"epoch/validation_grid: a PNG of the recorded size at each of {epochs} epochs")

    if recorded_step is not None:
        trainable = [name for name in tensors if f"weights/{name}" in histograms]
        if not trainable or any(not n.startswith(("conv", "down", "block", "head")) for n in trainable):
            fail(f"weights histograms: {sorted(histograms)}")
        for name in trainable:
            at = dict(histograms[f"weights/{name}"]).get(recorded_step)
            if at is None:
                fail(f"weights/{name}: no histogram at step {recorded_step}")
            values = tensors[name].astype(np.float64)
            counts, edges = np.histogram(values, bins=30) if values.min() < values.max() else (
                np.array([values.size]), np.array([values.max(), values.max()]))
            if at["bucket"] != [float(c) for c in counts] or at["bucket_limit"] != list(edges[1:]):
                fail(f"weights/{name} at step {recorded_step}: buckets {at['bucket']} differ from numpy.histogram's "
                     f"{list(counts)} of last.safetensors")
            if (at["min"], at["max"], at["num"]) != (values.min(), values.max(), values.size) or \
                    abs(at["sum"] - values.sum()) > 1e-9 * max(1.0, abs(values.sum())):
                fail(f"weights/{name} at step {recorded_step}: min/max/num/sum differ from last.safetensors")
            gradient = dict(histograms.get(f"gradients/{name}", [])).get(recorded_step)
            if gradient is None or gradient["num"] != values.size or sum(gradient["bucket"]) != values.size:
                fail(f"gradients/{name} at step {recorded_step}: does not count the {values.size} values")
        ok(f"weights histograms of {len(trainable)} parameters at step {recorded_step} equal numpy.histogram of "
           f"last.safetensors; the gradients' count every value")

    if same_as:
        _, other, _, _ = read(same_as)
        for tag in sorted(set(scalars) | set(other)):
            if tag in TIMING_TAGS:
                continue
            if sorted(scalars.get(tag, [])) != sorted(other.get(tag, [])):
                fail(f"{tag}: differs between {run} and {same_as}")
        ok(f"the scalars of {run} equal {same_as}'s (but wall-clock times)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reader", choices=["hand", "tensorboard"], required=True)
    parser.add_argument("--recorded-step", type=int)
    parser.add_argument("--same-as")
    parser.add_argument("run")
    arguments = parser.parse_args()
    check(arguments.run, arguments.reader, arguments.recorded_step, arguments.same_as)


if __name__ == "__main__":
    main()
