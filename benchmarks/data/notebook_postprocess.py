#!/usr/bin/python3
"""The notebook's own post-processing timed on the same maps as bench_postprocess, and the ratio.

Runs the C++ benchmark (which writes its maps and its boxes), then, per map, exactly the
notebook's prediction cell: skimage resize to 1024x1024 (mode='reflect'), threshold > 0.5,
measure.label, regionprops, np.mean over each box. Checks that both find the same boxes and
prints median ms per image for each and the speed-up per core.

    /usr/bin/python3 benchmarks/data/notebook_postprocess.py [build/bench_postprocess] [--count 32]
"""
import argparse
import os
import re
import subprocess
import tempfile
import time

import numpy as np
from skimage import measure
from skimage.transform import resize


def notebook_cell(pred):
    """The notebook's loop body for one prediction of shape (256, 256, 1); returns its boxes."""
    pred = resize(pred, (1024, 1024), mode='reflect')
    comp = pred[:, :, 0] > 0.5
    comp = measure.label(comp)
    boxes = []
    for region in measure.regionprops(comp):
        y, x, y2, x2 = region.bbox
        height = y2 - y
        width = x2 - x
        conf = np.mean(pred[y:y + height, x:x + width])
        boxes.append((float(conf), x, y, width, height))
    return boxes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('benchmark', nargs='?', default='build/bench_postprocess')
    parser.add_argument('--count', type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        maps_path = os.path.join(folder, 'maps.npy')
        boxes_path = os.path.join(folder, 'boxes.txt')
        run = subprocess.run([args.benchmark, '--count', str(args.count), '--maps-out', maps_path,
                              '--boxes-out', boxes_path], capture_output=True, text=True)
        print(run.stdout, end='')
        if run.returncode != 0:
            raise SystemExit('benchmark failed: ' + run.stderr)
        results = dict(re.findall(r'^RESULT (\S+) ([0-9.]+)', run.stdout, re.MULTILINE))
        maps = np.load(maps_path)
        pneumo_boxes = [[] for _ in range(len(maps))]
        with open(boxes_path) as file:
            for line in file:
                n, conf, x, y, w, h = line.split()
                pneumo_boxes[int(n)].append((float(conf), int(x), int(y), int(w), int(h)))

    times, label_times, mismatches, worst_conf = [], [], 0, 0.0
    for n, prob in enumerate(maps):
        pred = prob[:, :, None]  # (256, 256, 1) float32, as Keras's model.predict gives
        start = time.perf_counter()
        boxes = notebook_cell(pred)
        times.append((time.perf_counter() - start) * 1000)
        mask = resize(pred, (1024, 1024), mode='reflect')[:, :, 0] > 0.5
        start = time.perf_counter()
        measure.label(mask)
        label_times.append((time.perf_counter() - start) * 1000)
        same = len(boxes) == len(pneumo_boxes[n]) and all(
            a[1:] == b[1:] for a, b in zip(boxes, pneumo_boxes[n]))
        mismatches += 0 if same else 1
        if same:
            worst_conf = max([worst_conf] + [abs(a[0] - b[0]) for a, b in zip(boxes, pneumo_boxes[n])])

    notebook_ms = float(np.median(times))
    pneumo_ms = float(results['cpu_1_thread_ms_per_image'])
    print('notebook (skimage) post-processing: median %.2f ms/image (measure.label alone %.2f ms)'
          % (notebook_ms, float(np.median(label_times))))
    print('boxes: %d of %d maps differ from pneumo; largest confidence difference %.2g'
          % (mismatches, len(maps), worst_conf))
    print('speed-up per core (notebook / pneumo 1 thread): %.1fx' % (notebook_ms / pneumo_ms))


if __name__ == '__main__':
    main()
