#!/usr/bin/python3
"""Reference outputs of scikit-image's resize (the notebook's call) for tests/data/test_resize.cpp.

Run with Debian's /usr/bin/python3 (scikit-image 0.19.3, SciPy 1.10):
    /usr/bin/python3 tests/data/make_resize_reference.py
Writes tests/fixtures/data/resize_*.arr and mask_*.arr. Inputs are not stored: they come from the
integer formulas below, which test_resize.cpp repeats exactly (pattern_u8, pattern_probability).

.arr format (little endian): b"PNA1", uint32 dtype (1 float32, 2 uint8, 3 int32, 4 float64),
uint32 ndim, uint32 dims[ndim], then the data row-major.
"""
import os
import struct

import numpy as np
import skimage
from skimage.transform import resize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data")
DTYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int32): 3,
          np.dtype(np.float64): 4}


def save(name, array):
    array = np.ascontiguousarray(array)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"PNA1" + struct.pack("<II", DTYPES[array.dtype], array.ndim))
        f.write(struct.pack("<%dI" % array.ndim, *array.shape))
        f.write(array.astype(array.dtype.newbyteorder("<")).tobytes())


def pattern_u8(height, width):
    """An 8-bit 'X-ray': smooth ramps plus deterministic noise. Same formula in the C++ test."""
    r = np.arange(height, dtype=np.int64)[:, None]
    c = np.arange(width, dtype=np.int64)[None, :]
    value = (r * c) // 512 + r // 5 + c // 7 + (r * 7919 + c * 104729 + r * c * 13) % 41
    return (value % 256).astype(np.uint8)


def pattern_probability(height, width):
    """A float32 map in [0, 1] (k / 999 for integer k), same formula in the C++ test."""
    r = np.arange(height, dtype=np.int64)[:, None]
    c = np.arange(width, dtype=np.int64)[None, :]
    k = (r * 131 + c * 71 + r * c * 3) % 1000
    return k.astype(np.float32) / np.float32(999)


def main():
    assert skimage.__version__.startswith("0.19"), skimage.__version__
    os.makedirs(OUT, exist_ok=True)
    # The notebook: resize(pixel_array uint8, (256, 256), mode='reflect') -> float64.
    save("resize_u8_1024_to_256.arr",
         resize(pattern_u8(1024, 1024), (256, 256), mode="reflect").astype(np.float32))
    # Non-square, non-integer factors on both axes (4.29 and 2.22).
    save("resize_u8_300x200_to_70x90.arr",
         resize(pattern_u8(300, 200), (70, 90), mode="reflect").astype(np.float32))
    # Upscaling probability maps (no anti-aliasing): 16 -> 64 whole, 256 -> 1024 rows subset.
    save("resize_p_16_to_64.arr",
         resize(pattern_probability(16, 16), (64, 64), mode="reflect").astype(np.float32))
    big = resize(pattern_probability(256, 256), (1024, 1024), mode="reflect")
    rows = np.array(sorted(set(list(range(0, 6)) + list(range(1018, 1024)) +
                               list(range(0, 1024, 37)))), dtype=np.int32)
    save("resize_p_256_to_1024_rows.arr", rows)
    save("resize_p_256_to_1024.arr", big[rows].astype(np.float32))
    # Shrink one axis, enlarge the other (sigma 0 on the enlarged axis).
    save("resize_p_100x80_to_37x153.arr",
         resize(pattern_probability(100, 80), (37, 153), mode="reflect").astype(np.float32))
    # Gaussian radius (8) longer than the image: repeated mirroring.
    save("resize_p_10x7_to_2x3.arr",
         resize(pattern_probability(10, 7), (2, 3), mode="reflect").astype(np.float32))
    # A single input row (mirror of size 1), enlarged rows, shrunk columns.
    save("resize_p_1x20_to_3x5.arr",
         resize(pattern_probability(1, 20), (3, 5), mode="reflect").astype(np.float32))

    # Masks as the notebook makes them: fill boxes (clipped) at full size, resize, > 0.5.
    # Stored as uint8: 0/1 = skimage's value; 2/3 = skimage's value 0/1 at a tie, i.e. where the
    # resized value is within 1e-9 of 0.5 and the outcome is decided by rounding noise.
    mask_cases = {
        "mask_1024_to_256.arr": (1024, 1024, 256, [(264, 152, 213, 379), (562, 152, 256, 453),
                                                   (900, 850, 200, 300), (-20, 10, 60, 50),
                                                   (2, 602, 50, 46)]),
        "mask_600x800_to_128.arr": (600, 800, 128, [(100, 50, 300, 200), (450, 333, 123, 250)]),
    }
    for name, (height, width, size, boxes) in mask_cases.items():
        canvas = np.zeros((height, width))
        for x, y, w, h in boxes:
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, width), min(y + h, height)
            canvas[y0:y1, x0:x1] = 1
        value = resize(canvas, (size, size), mode="reflect")
        mask = (value > 0.5).astype(np.uint8)
        tie = np.abs(value - 0.5) < 1e-9
        save(name, mask + 2 * tie.astype(np.uint8))
        print(name, "ties:", int(tie.sum()), "tie outcomes 1:", int((mask[tie] == 1).sum()))


if __name__ == "__main__":
    main()
