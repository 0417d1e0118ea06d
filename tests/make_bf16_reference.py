#!/usr/bin/env python3
"""Writes tests/fixtures/bf16_rounding.txt: float32 bit patterns and the bfloat16 bits torch rounds
them to (`.to(torch.bfloat16)`, round to nearest even), the independent reference of
kernels/bf16_math.h (tests/test_precision.cpp). Run with Debian's python: /usr/bin/python3
tests/make_bf16_reference.py. Each line: "<float32 bits hex> <bfloat16 bits hex>"."""
import os
import struct

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
special = [
    0x00000000, 0x80000000,  # +-0
    0x3f800000, 0xbf800000,  # +-1
    0x3f808000,  # 1 + 2^-8: exactly halfway between 1 and 1 + 2^-7, last kept bit 0: down
    0x3f818000,  # halfway with last kept bit 1: up to 1 + 2^-6
    0x3f808001, 0x3f807fff,  # just above / below halfway
    0x7f7fffff, 0xff7fffff,  # float32's largest: rounds to +-infinity
    0x7f7f7fff,  # just below bfloat16's largest + half ulp: stays finite
    0x7f800000, 0xff800000,  # +-infinity
    0x00000001, 0x807fffff, 0x00400000,  # subnormals (rounded, not flushed)
    0x00800000,  # the smallest normal
    0x3e99999a,  # 0.3
    0x40490fdb,  # pi
]
patterns = special + [int(x) for x in rng.integers(0, 2**32, size=400, dtype=np.uint64)]
patterns += [int(np.float32(v).view(np.uint32)) for v in rng.normal(0.0, 1.0, 200)]
patterns = [p for p in patterns if not ((p & 0x7fffffff) > 0x7f800000)]  # NaNs: checked apart
values = np.array(patterns, dtype=np.uint32).view(np.float32)
rounded = torch.from_numpy(values.copy()).to(torch.bfloat16).view(torch.int16).numpy().astype(np.uint16)
with open(os.path.join(here, "fixtures", "bf16_rounding.txt"), "w") as out:
    out.write("# float32 bits -> torch %s .to(torch.bfloat16) bits (tests/make_bf16_reference.py)\n" % torch.__version__)
    for pattern, bits in zip(patterns, rounded):
        out.write("%08x %04x\n" % (pattern, bits))
print("wrote", len(patterns), "cases")
