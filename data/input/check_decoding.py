#!/usr/bin/python3
"""data/input/decoding.md, runnable: the page's resize written in numpy (mirror index, grid_mode source
coordinate, linear taps, the anti-aliasing Gaussian, clip to the input's range) against
scikit-image's resize(image, shape, mode='reflect') with the defaults the code mirrors (order=1,
anti_aliasing=None: on when an axis shrinks, clip=True, preserve_range=False), on random images
and odd sizes; then the stored value -> [0, 1] mapping on hand-worked cases.

Run: /usr/bin/python3 data/input/check_decoding.py        (Debian's python3-skimage, numpy)

Exercises
 1. Set MIRROR_EDGE_REPEATED = True (numpy's 'symmetric', d c b a | a b c d) and predict which
    cases fail: only those whose taps reach past the border. Which sizes are they?
 2. Replace the source coordinate (o + 0.5) * in/out - 0.5 by o * (in - 1) / (out - 1) (the
    'align corners' rule of many other libraries). How large is the error for 1024 -> 256?
 3. A 12-bit MONOCHROME1 file stores 1000. Work out its [0, 1] value by hand, then check it with
    map_to_unit.
"""
import math

import numpy as np
from skimage.transform import resize
from skimage.util import img_as_float

RESIZE_TOLERANCE = 1e-12   # both sides in float64; the sums differ only in order
MAPPING_TOLERANCE = 1e-15
MIRROR_EDGE_REPEATED = False
ALIGN_CORNERS = False  # exercise 2


def mirror_index(index, size):
    """resize_mirror_index: ... d c b | a b c d | c b a ... (edge not repeated)."""
    if size <= 1:
        return 0
    if MIRROR_EDGE_REPEATED:  # exercise 1
        period = 2 * size
        index = (index if index >= 0 else -index - 1) % period
        return index if index < size else period - 1 - index
    period = 2 * size - 2
    index = abs(index) % period
    return index if index < size else period - index


def axis_matrix(in_size, out_size, anti_aliasing):
    """(out, in) matrix of one axis: the Gaussian (when shrinking) composed with the linear taps."""
    sigma = max(0.0, (in_size / out_size - 1) / 2) if anti_aliasing else 0.0  # resize_antialias_sigma
    if sigma > 1e-15:
        radius = int(4.0 * sigma + 0.5)                                        # resize_gaussian_radius
        offsets = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 / sigma ** 2 * offsets.astype(float) ** 2)
        kernel /= kernel.sum()
    else:
        offsets, kernel = np.array([0]), np.array([1.0])
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size))
    for o in range(out_size):
        coordinate = (o + 0.5) * scale - 0.5                                   # resize_source_coordinate
        if ALIGN_CORNERS:
            coordinate = o * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        first = math.floor(coordinate)
        fraction = coordinate - first
        for centre, weight in ((first, 1.0 - fraction), (first + 1, fraction)):  # resize_linear_taps
            for d, g in zip(offsets, kernel):
                matrix[o, mirror_index(mirror_index(centre, in_size) + int(d), in_size)] += weight * g
    return matrix


def page_resize(image, out_height, out_width):
    height, width = image.shape
    anti_aliasing = out_height < height or out_width < width
    rows = axis_matrix(height, out_height, anti_aliasing)
    columns = axis_matrix(width, out_width, anti_aliasing)
    return np.clip(rows @ image @ columns.T, image.min(), image.max())


rng = np.random.default_rng(0)
cases = [((1024, 1024), (256, 256)), ((300, 200), (70, 90)), ((100, 80), (37, 153)),
         ((16, 16), (64, 64)), ((256, 256), (1024, 1024)), ((10, 7), (2, 3)), ((1, 20), (3, 5)),
         ((37, 53), (256, 256)), ((129, 97), (31, 250)), ((5, 5), (5, 5))]
worst = 0.0
for (h, w), (oh, ow) in cases:
    image = rng.random((h, w))
    error = np.abs(page_resize(image, oh, ow) - resize(image, (oh, ow), mode="reflect")).max()
    print("resize %4dx%-4d -> %4dx%-4d max |page - skimage| = %.3g" % (h, w, oh, ow, error))
    worst = max(worst, error)
# 8-bit input: skimage first applies img_as_float (stored / 255), the page's rule 2.
pixels = rng.integers(0, 256, (600, 512), dtype=np.uint8)
error = np.abs(page_resize(pixels / 255.0, 256, 256) - resize(pixels, (256, 256), mode="reflect")).max()
print("resize uint8 600x512 -> 256x256 (stored / 255 first) max |page - skimage| = %.3g" % error)
worst = max(worst, error)


# ---- stored values -> [0, 1] (data/input/dicom.cpp: stored_value, scale_pixels, PixelMapping) ----
def stored_value(raw, bits_stored, high_bit, is_signed):
    """The bits_stored bits ending at high_bit, sign-extended when signed."""
    value = (raw >> (high_bit + 1 - bits_stored)) & ((1 << bits_stored) - 1)
    if is_signed and value >= 1 << (bits_stored - 1):
        value -= 1 << bits_stored
    return value


def map_to_unit(stored, bits_stored, is_signed=False, slope=1.0, intercept=0.0, window=None,
                function="LINEAR", monochrome1=False):
    maximum = (1 << bits_stored) - 1
    if not is_signed and slope == 1 and intercept == 0 and window is None:  # rule 2: plain files
        return (maximum - stored if monochrome1 else stored) / maximum
    x = stored * slope + intercept                                           # rule 3
    if window is None:
        lowest = -(1 << (bits_stored - 1)) if is_signed else 0
        a, b = lowest * slope + intercept, (lowest + maximum) * slope + intercept
        y = (x - min(a, b)) / abs(b - a)
    else:
        c, width = window
        if function == "SIGMOID":
            y = 1 / (1 + math.exp(-4 * (x - c) / width))
        elif function == "LINEAR_EXACT" or width == 1:
            y = (x - (c - width / 2)) / width
        else:
            y = (x - (c - 0.5)) / (width - 1) + 0.5
    y = min(1.0, max(0.0, y))
    return 1 - y if monochrome1 else y


# (what, computed, expected by hand)
hand = [
    ("8-bit 0", map_to_unit(0, 8), 0.0),
    ("8-bit 255", map_to_unit(255, 8), 1.0),
    ("8-bit 51 = 51/255", map_to_unit(51, 8), 0.2),
    ("12-bit 4095", map_to_unit(4095, 12), 1.0),
    ("12-bit MONOCHROME1 1000 = 3095/4095", map_to_unit(1000, 12, monochrome1=True), 3095 / 4095),
    ("16-bit 65535", map_to_unit(65535, 16), 1.0),
    ("signed 16-bit -32768", map_to_unit(-32768, 16, is_signed=True), 0.0),
    ("signed 16-bit 32767", map_to_unit(32767, 16, is_signed=True), 1.0),
    ("signed 16-bit 0 = 32768/65535", map_to_unit(0, 16, is_signed=True), 32768 / 65535),
    ("CT rescale -1024, 12-bit 1024 = 1024/4095", map_to_unit(1024, 12, intercept=-1024), 1024 / 4095),
    ("negative slope -1, 8-bit 0 -> top", map_to_unit(0, 8, slope=-1.0), 1.0),
    ("LINEAR c40 w400, HU -160 (lower edge)", map_to_unit(864, 12, intercept=-1024, window=(40, 400)), 0.0),
    ("LINEAR c40 w400, HU 40 = (40-39.5)/399+0.5", map_to_unit(1064, 12, intercept=-1024, window=(40, 400)), 0.5 / 399 + 0.5),
    ("LINEAR c40 w400, HU 1000 clamps", map_to_unit(2024, 12, intercept=-1024, window=(40, 400)), 1.0),
    ("LINEAR_EXACT c40 w400, HU 140 = 300/400", map_to_unit(1164, 12, intercept=-1024, window=(40, 400), function="LINEAR_EXACT"), 0.75),
    ("SIGMOID c40 w400, HU 40", map_to_unit(1064, 12, intercept=-1024, window=(40, 400), function="SIGMOID"), 0.5),
    ("SIGMOID c0 w4, x 1 = 1/(1+e^-1)", map_to_unit(1, 8, is_signed=True, window=(0, 4), function="SIGMOID"), 1 / (1 + math.exp(-1))),
    ("window then MONOCHROME1, HU 140", map_to_unit(1164, 12, intercept=-1024, window=(40, 400), function="LINEAR_EXACT", monochrome1=True), 0.25),
    ("stored bits: raw 0xABCD, 12 bits, high bit 13 -> 0xAF3", stored_value(0xABCD, 12, 13, False), 0xAF3),
    ("stored bits, signed: raw 0x0FFF, 12 bits, high bit 11 -> -1", stored_value(0x0FFF, 12, 11, True), -1),
]
mapping_worst = 0.0
for what, computed, expected in hand:
    mapping_worst = max(mapping_worst, abs(computed - expected))
    if abs(computed - expected) > MAPPING_TOLERANCE:
        print("mapping WRONG: %s: %r, expected %r" % (what, computed, expected))
# Plain 8- and 16-bit files equal skimage's img_as_float (what the notebook's resize applies).
for dtype, bits in ((np.uint8, 8), (np.uint16, 16)):
    values = np.arange(0, 1 << bits, dtype=np.int64)
    ours = np.array([map_to_unit(int(v), bits) for v in values[:: max(1, len(values) // 4096)]])
    mapping_worst = max(mapping_worst, np.abs(ours - img_as_float(values[:: max(1, len(values) // 4096)].astype(dtype))).max())
# Signed without rescale or window = unsigned shifted by 2^(b-1).
for s in range(-128, 128):
    mapping_worst = max(mapping_worst, abs(map_to_unit(s, 8, is_signed=True) - map_to_unit(s + 128, 8)))
print("mapping: %d hand cases, img_as_float, signed = shifted unsigned: max |error| = %.3g"
      % (len(hand), mapping_worst))

# The exercises' answers (the page's "Solutions").
# 1. numpy's 'symmetric' mirror (edge repeated) instead of skimage's 'reflect': which cases fail?
MIRROR_EDGE_REPEATED = True
failing = []
for (h, w), (oh, ow) in cases:
    image = rng.random((h, w))
    if np.abs(page_resize(image, oh, ow) - resize(image, (oh, ow), mode="reflect")).max() > RESIZE_TOLERANCE:
        failing.append("%dx%d->%dx%d" % (h, w, oh, ow))
MIRROR_EDGE_REPEATED = False
print("symmetric mirror fails for:", ", ".join(failing))
print("symmetric_mirror_failing_cases = %d  # of %d" % (len(failing), len(cases)))
# 2. The align-corners source coordinate, 1024 -> 256, on a random image and on a smooth ramp.
ALIGN_CORNERS = True
noise = rng.random((1024, 1024))
ramp = np.add.outer(np.arange(1024.0), np.arange(1024.0)) / 2046
align_noise = np.abs(page_resize(noise, 256, 256) - resize(noise, (256, 256), mode="reflect")).max()
align_ramp = np.abs(page_resize(ramp, 256, 256) - resize(ramp, (256, 256), mode="reflect")).max()
ALIGN_CORNERS = False
print("align_corners_error_noise = %.2g" % align_noise)
print("align_corners_error_ramp = %.2g  # a 0..1 ramp: the shift of 1.5 input pixels at the edges" % align_ramp)
# 3. 12-bit MONOCHROME1, stored 1000: (4095 - 1000) / 4095.
print("monochrome1_12bit_1000 = %.4f" % map_to_unit(1000, 12, monochrome1=True))

if not worst <= RESIZE_TOLERANCE or not mapping_worst <= MAPPING_TOLERANCE:
    raise SystemExit("data/input/decoding.md: resize error %.3g (tolerance %g), mapping error %.3g (tolerance %g)"
                     % (worst, RESIZE_TOLERANCE, mapping_worst, MAPPING_TOLERANCE))
