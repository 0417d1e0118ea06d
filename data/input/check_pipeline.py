#!/usr/bin/python3
"""data/input/pipeline.md, runnable: the training mask of a box (fill, resize 'reflect', > 0.5) is the
box rasterised at output pixel centres, x0 < (o + 0.5) * W/S < x0 + w, except near corners where
it is the product rule; a flipped image's mask runs are [S - end, S - begin); the batches of an
epoch; and the seeded Fisher-Yates with multiply-high draws gives every order equally often.

Run: /usr/bin/python3 data/input/check_pipeline.py        (Debian's python3-skimage, numpy)

Exercises
 1. Make a box 3 pixels wide in a 1024 image resized to 256. The centre rule says one output
    column; predict what the mask shows, then check with notebook_mask.
 2. Put a box 2 pixels from the left border (x = 2): the mirror adds a reflected copy at
    x in (-w-2, -2]. Does the centre rule still hold? Why does x = 0 not break it?
 3. With 10 images and batch 4, how many batches does Train mode give, and Evaluate mode?
"""
import numpy as np
from skimage.transform import resize

rng = np.random.default_rng(0)
MASK64 = (1 << 64) - 1


def notebook_mask(boxes, height, width, size):
    """The notebook's cell (independent of the page's rule): fill, skimage resize, > 0.5."""
    canvas = np.zeros((height, width))
    for x, y, w, h in boxes:
        canvas[y:y + h, x:x + w] = 1
    return resize(canvas, (size, size), mode="reflect") > 0.5


def centre_rule(box, height, width, size):
    """The page's rule: output pixel (r, c) is 1 when its centre, in input edge coordinates,
    lies strictly inside the box."""
    x, y, w, h = box
    centre_x = (np.arange(size) + 0.5) * width / size
    centre_y = (np.arange(size) + 0.5) * height / size
    return np.outer((centre_y > y) & (centre_y < y + h), (centre_x > x) & (centre_x < x + w))


def axis_profile(begin, end, in_size, size):
    """The 1-D resize of one box side (the value of the separable resize along one axis)."""
    line = np.zeros((1, in_size))
    line[0, begin:end] = 1
    return resize(line, (1, size), mode="reflect")[0]


# 1. Masks: centre rule everywhere except the corner zones, where the value is the product of
#    the two 1-D profiles (separability), which can fall below 0.5 although both exceed it.
cases, corner_pixels, differing = 0, 0, 0
for height, width, size in [(1024, 1024, 256), (600, 800, 128), (100, 80, 256), (1024, 1024, 320), (1024, 1024, 200)]:
    reach = int(4 * max(0, (max(height, width) / size - 1) / 2) + 0.5) + 2  # Gaussian radius + linear tap
    for trial in range(6):
        w = int(rng.integers(max(4 * reach, width // 8), width // 2))
        h = int(rng.integers(max(4 * reach, height // 8), height // 2))
        # either touching the border or at least `reach` away from it
        x = 0 if trial == 0 else int(rng.integers(reach, width - w - reach))
        y = height - h if trial == 1 else int(rng.integers(reach, height - h - reach))
        box = (x, y, w, h)
        ours, theirs = centre_rule(box, height, width, size), notebook_mask([box], height, width, size)
        profile_x, profile_y = axis_profile(x, x + w, width, size), axis_profile(y, y + h, height, size)
        partial_x = (profile_x > 1e-12) & (profile_x < 1 - 1e-12)  # a box edge is within reach
        partial_y = (profile_y > 1e-12) & (profile_y < 1 - 1e-12)
        corner = np.outer(partial_y, partial_x)
        assert not (theirs & ~ours).any(), ("mask outside the centre rule", box)
        assert (ours == theirs)[~corner].all(), ("centre rule broken away from the corners", box)
        product = np.outer(profile_y, profile_x) > 0.5 + 1e-9
        assert (product == theirs).all(), ("product rule broken", box)
        cases += 1
        corner_pixels += int(corner.sum())
        differing += int((ours != theirs).sum())
print("masks: %d boxes, centre rule exact outside corner zones (%d corner pixels, %d rounded off); "
      "product of 1-D profiles exact everywhere" % (cases, corner_pixels, differing))

# 2. Flip: the loader reverses each image row; a mask run [begin, end) of row r becomes
#    [S - end, S - begin) (data/input/loader.cpp load_into).
size = 64
mask = notebook_mask([(100, 200, 300, 400), (600, 150, 250, 500)], 1024, 1024, size)
flipped = np.zeros_like(mask)
for r in range(size):
    c = 0
    while c < size:
        if not mask[r, c]:
            c += 1
            continue
        end = c
        while end < size and mask[r, end]:
            end += 1
        flipped[r, size - end:size - c] = True
        c = end
assert (flipped == mask[:, ::-1]).all()
print("flip: runs [S - end, S - begin) equal the mirrored mask (%d pixels)" % mask.sum())

# 3. Batches: batch b holds order[b*B : min((b+1)*B, n)]; Train yields floor(n/B), others ceil(n/B).
for n in range(0, 40):
    for batch in (1, 3, 4, 32):
        train = [list(range(b * batch, (b + 1) * batch)) for b in range(n // batch)]
        evaluate = [list(range(b * batch, min((b + 1) * batch, n))) for b in range(-(-n // batch))]
        chunks = [list(range(n))[i:i + batch] for i in range(0, n, batch)]
        assert evaluate == chunks and train == [c for c in chunks if len(c) == batch]
print("batches: Train floor(n/B) full batches, Evaluate ceil(n/B) with a short last one")


# 4. The seeded shuffle (data/input/loader.cpp seeded_shuffle): splitmix64 stream, j = (draw * i) >> 64.
def mix64(value):
    value = (value + 0x9E3779B97F4A7C15) & MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


def seeded_shuffle(items, seed):
    items, state = list(items), mix64(seed)
    for i in range(len(items), 1, -1):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        j = (mix64(state) * i) >> 64  # in [0, i)
        items[i - 1], items[j] = items[j], items[i - 1]
    return items


# The exercises' answers (the page's "Solutions").
# 1. A box 3 pixels wide (x 100..102) in a 1024 image resized to 256.
thin = (100, 300, 3, 200)
print("thin_box_centre_rule_columns = %d" % centre_rule(thin, 1024, 1024, 256).any(axis=0).sum())
print("thin_box_mask_pixels = %d" % notebook_mask([thin], 1024, 1024, 256).sum())
print("thin_box_profile_peak = %.2f  # the resized 1-D profile's largest value" % axis_profile(100, 103, 1024, 256).max())


# 2. Boxes near the left border: the centre rule against the notebook's mask, away from corners.
def mismatches_away_from_corners(box):
    x, y, w, h = box
    ours, theirs = centre_rule(box, 1024, 1024, 256), notebook_mask([box], 1024, 1024, 256)
    partial_x = axis_profile(x, x + w, 1024, 256)
    partial_y = axis_profile(y, y + h, 1024, 256)
    corner = np.outer((partial_y > 1e-12) & (partial_y < 1 - 1e-12), (partial_x > 1e-12) & (partial_x < 1 - 1e-12))
    return int(((ours != theirs) & ~corner).sum())


for x in (0, 1, 2, 3, 5):
    print("border_box_x%d_mismatches = %d" % (x, mismatches_away_from_corners((x, 300, 100, 200))))
print("border_box_x2_column0_profile = %.3f  # 0.5 without the mirrored copy" % axis_profile(2, 102, 1024, 256)[0])
# 3. 10 images, batch 4.
print("train_batches_10_4 = %d" % (10 // 4))
print("evaluate_batches_10_4 = %d" % -(-10 // 4))

TRIALS = 24000
counts = {}
for seed in range(TRIALS):
    order = tuple(seeded_shuffle("abcd", seed))
    counts[order] = counts.get(order, 0) + 1
assert len(counts) == 24, "every one of the 4! orders must occur"
expected = TRIALS / 24
chi_square = sum((c - expected) ** 2 / expected for c in counts.values())
# 23 degrees of freedom: P(chi^2 > 49.7) = 0.001
print("shuffle: %d seeds over 4 items, all 24 orders, chi^2 = %.1f (23 dof, fails above 49.7)" % (TRIALS, chi_square))
assert chi_square < 49.7, chi_square
ids = ["%04d" % i for i in range(100)]
split = seeded_shuffle(sorted(ids), 7)
assert split == seeded_shuffle(sorted(reversed(ids)), 7), "the split must not depend on the input order"
