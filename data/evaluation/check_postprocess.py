#!/usr/bin/python3
"""data/evaluation/postprocess.md, runnable: threshold -> 8-connected components -> boxes -> confidences,
written from the page in plain Python (a flood fill), against the notebook's scikit-image cell.

Run: /usr/bin/python3 data/evaluation/check_postprocess.py        (Debian's python3-skimage, numpy)

Exercises
 1. Two pixels touch only at a corner. How many components are they under the page's rule, and
    how many with 4-connectivity? Change NEIGHBOURS to the 4 edge neighbours and compare.
 2. The confidence averages the whole box, background included. Make a thin diagonal component:
    why is its confidence much lower than its pixels' mean?
"""
import numpy as np
from skimage import measure

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]  # 8-connected


def boxes_from_map(probability, threshold=0.5):
    """The page's steps 2-5: (confidence, x, y, width, height) per component, in raster order of
    each component's first pixel."""
    foreground = probability > threshold
    seen = np.zeros_like(foreground)
    rows, cols = foreground.shape
    boxes = []
    for r in range(rows):
        for c in range(cols):
            if not foreground[r, c] or seen[r, c]:
                continue
            stack, pixels = [(r, c)], []
            seen[r, c] = True
            while stack:
                y, x = stack.pop()
                pixels.append((y, x))
                for dy, dx in NEIGHBOURS:
                    v, u = y + dy, x + dx
                    if 0 <= v < rows and 0 <= u < cols and foreground[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        stack.append((v, u))
            ys, xs = [p[0] for p in pixels], [p[1] for p in pixels]
            y0, x0, y1, x1 = min(ys), min(xs), max(ys) + 1, max(xs) + 1
            boxes.append((float(np.mean(probability[y0:y1, x0:x1], dtype=np.float64)), x0, y0, x1 - x0, y1 - y0))
    return boxes


def notebook(probability):
    """The notebook's cell (without the resize)."""
    comp = measure.label(probability > 0.5)
    out = []
    for region in measure.regionprops(comp):
        y, x, y2, x2 = region.bbox
        out.append((float(np.mean(probability[y:y2, x:x2], dtype=np.float64)), x, y, x2 - x, y2 - y))
    return out


rng = np.random.default_rng(0)
worst, total = 0.0, 0
for trial in range(20):
    smooth = rng.random((64, 64))
    for _ in range(3):  # blur a little so blobs form
        smooth = (smooth + np.roll(smooth, 1, 0) + np.roll(smooth, 1, 1) + np.roll(smooth, -1, 0)
                  + np.roll(smooth, -1, 1)) / 5
    probability = ((smooth - smooth.min()) / (smooth.max() - smooth.min())).astype(np.float32)
    ours, theirs = boxes_from_map(probability), notebook(probability)
    assert [b[1:] for b in ours] == [b[1:] for b in theirs], trial
    worst = max([worst] + [abs(a[0] - b[0]) for a, b in zip(ours, theirs)])
    total += len(ours)
print("20 random maps, %d components: boxes identical to skimage, max |confidence difference| %.3g"
      % (total, worst))
assert worst < 1e-12

# The exercises' answers (the page's "Solutions").
# 1. Two pixels touching at a corner: one component under 8-connectivity, two under 4.
corner = np.zeros((4, 4), dtype=np.float32)
corner[1, 1] = corner[2, 2] = 0.9
print("corner_components_8 = %d" % len(boxes_from_map(corner)))
eight = NEIGHBOURS
NEIGHBOURS = [(-1, 0), (0, -1), (0, 1), (1, 0)]
print("corner_components_4 = %d" % len(boxes_from_map(corner)))
NEIGHBOURS = eight
# 2. A thin diagonal of 10 pixels at 0.9 on a background of 0.1: its box is 10 x 10, and the
# confidence averages 10 component pixels with 90 background ones.
diagonal = np.full((16, 16), 0.1, dtype=np.float32)
for i in range(10):
    diagonal[3 + i, 3 + i] = 0.9
(confidence, x, y, width, height), = boxes_from_map(diagonal)
print("diagonal_box_side = %d" % width)
print("diagonal_confidence = %.2f  # the pixels' own mean is 0.9" % confidence)
assert (width, height) == (10, 10) and abs(confidence - (10 * 0.9 + 90 * 0.1) / 100) < 1e-6
