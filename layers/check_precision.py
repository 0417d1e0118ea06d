#!/usr/bin/python3
"""layers/precision.md, runnable: bfloat16's range and precision; round to nearest even as
kernels/bf16_math.h does it (bit trick) against torch's conversion; why bf16 needs no loss scaling
(fp16 underflows where bf16 does not); what breaks when the master weights or a batch-norm sum
are kept in bf16; and the error bound of a bf16 Winograd element-wise stage, measured.

Run: /usr/bin/python3 layers/check_precision.py

Exercises
 1. With the bit trick of `round_to_bf16`, round 1 + 3 * 2^-8 by hand. Which neighbour does it go
    to, and why is that not "round half up"?
 2. Adam's first step moves every weight by about the learning rate. From which weight magnitude
    on does a step of 1e-3 vanish entirely when the weights are stored in bf16?
 3. A batch-norm mean over 128x128 pixels of batch 16 accumulates 262,144 values. Summing them in
    bf16 one by one, where does the sum of values that are all 1 stop growing?
 4. Why is F(2x2,3x3) usable with a bf16 element-wise stage and F(4x4,3x3) not? Use the measured
    ratios the script prints.
"""
import importlib
import struct

import numpy as np
import torch
import torch.nn.functional as F


def bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_bits(b):
    return struct.unpack("<f", struct.pack("<I", b & 0xffffffff))[0]


def round_to_bf16(x):
    """kernels/bf16_math.h's bit trick: add 0x7fff plus the lowest kept bit, truncate."""
    b = bits(x)
    if (b & 0x7fffffff) > 0x7f800000:
        return float("nan")
    lowest_kept = (b >> 16) & 1
    return from_bits(((b + 0x7fff + lowest_kept) >> 16) << 16)


def bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)


# ---- the format -------------------------------------------------------------------------------
info = torch.finfo(torch.bfloat16)
print("bfloat16: 1 sign, 8 exponent, 7 fraction bits")
print("bf16_max = %.5g" % info.max)
print("bf16_smallest_normal = %.4g" % info.tiny)
print("bf16_epsilon = %.6g  # spacing of the numbers just above 1 (2^-7)" % info.eps)
print("bf16_unit_roundoff = %.6g  # round to nearest: relative error at most half the spacing at 1, 2^-8" % (info.eps / 2))
print("fp16_max = %.5g" % torch.finfo(torch.float16).max)
print("fp16_smallest_normal = %.4g" % torch.finfo(torch.float16).tiny)

# ---- round to nearest even: the bit trick against torch ---------------------------------------
rng = np.random.default_rng(1)
values = np.concatenate([rng.normal(0, 1, 20000), rng.normal(0, 1e-30, 1000), rng.normal(0, 1e30, 1000)])
values = values.astype(np.float32)
ours = np.array([round_to_bf16(float(v)) for v in values], dtype=np.float32)
theirs = bf16(torch.from_numpy(values)).numpy()
mismatches = int((ours != theirs).sum())
print("rounding_mismatches_vs_torch = %d" % mismatches)
assert mismatches == 0
ties = [(1 + 2**-8, 1.0), (1 + 3 * 2**-8, 1 + 2**-6)]  # halfway cases go to the even neighbour
for x, expected in ties:
    assert round_to_bf16(x) == expected, (x, round_to_bf16(x))
relative = np.abs(ours - values) / np.abs(values)
worst = float(relative[np.abs(values) > 1e-37].max())
print("worst_relative_rounding_error = %.4g  # measured; the bound is 2^-8 = 0.0039" % worst)
assert worst <= 2**-8

# ---- no loss scaling: small gradients survive in bf16, not in fp16 ------------------------------
grads = torch.tensor([1e-3, 1e-6, 1e-8, 1e-12, 1e-20, 1e-30])
as_fp16 = grads.to(torch.float16).float()
as_bf16 = bf16(grads)
print("\ngradient magnitudes:  " + "  ".join("%8.0e" % g for g in grads.tolist()))
print("stored in fp16:       " + "  ".join("%8.1e" % g for g in as_fp16.tolist()))
print("stored in bf16:       " + "  ".join("%8.1e" % g for g in as_bf16.tolist()))
lost_fp16 = int((as_fp16 == 0).sum())
lost_bf16 = int((as_bf16 == 0).sum())
print("gradients_flushed_to_zero_fp16 = %d" % lost_fp16)
print("gradients_flushed_to_zero_bf16 = %d" % lost_bf16)
assert lost_bf16 == 0 and lost_fp16 >= 3

# ---- where fp32 must stay (1): the master weights ----------------------------------------------
# A step smaller than half the spacing at the weight's magnitude is rounded away.
step = 1e-3
for magnitude in [0.01, 0.1, 0.25, 0.5, 1.0]:
    w = bf16(torch.tensor([magnitude]))
    moved = (bf16(w + step) != w).item()
    print("  weight %.2f, step +%.0e: %s in bf16" % (magnitude, step, "moves" if moved else "LOST"))
candidates = bf16(torch.linspace(0.01, 2, 4000)).unique()
smallest_lost = min(w.item() for w in candidates if bf16(w + step) == w)
print("weight_magnitude_where_steps_of_1e_3_vanish = %.3g  # spacing there 2^-8, half of it 1.95e-3 > 1e-3" % smallest_lost)
assert smallest_lost == 0.5
# Over 200 Adam-sized steps the bf16-stored weight drifts from the fp32 one.
w32, w16 = torch.tensor([0.3]), torch.tensor([0.3])
for _ in range(200):
    w32 = w32 - 1e-4
    w16 = bf16(w16 - 1e-4)
print("after 200 steps of 1e-4 from 0.3: fp32 %.4f, bf16-stored %.4f" % (w32.item(), w16.item()))
assert w16.item() == bf16(torch.tensor([0.3])).item()  # not one step took

# ---- where fp32 must stay (2): sums of many values (batch-norm statistics, the loss) -----------
total = torch.tensor(0.0, dtype=torch.bfloat16)
ones = torch.ones(4096, dtype=torch.bfloat16)
for v in ones:
    total = total + v
print("bf16_running_sum_of_4096_ones = %d" % int(total.item()))
assert total.item() == 256.0

# ---- a bf16 Winograd element-wise stage: the bound, measured -----------------------------------
# Rounding U = G g G^T and V = B^T d B to bf16 before the element-wise product puts a relative
# error of up to 2u (u = 2^-8) on each product; through A^T . A the absolute error of one
# channel's contribution is bounded by 2u * beta^2 * max|d| * max|g| (beta of layers/conv2d.md),
# where a direct bf16 convolution's is 2u * sum|g||d| <= 2u * 9 * max|d| * max|g|.
WINOGRAD = importlib.import_module("winograd_transforms").WINOGRAD  # layers/winograd_transforms.py
torch.manual_seed(0)
C, tiles = 64, 2000
print("\nbf16 error of one output summed over %d channels (inputs in [-1,1], Glorot-sized filters):" % C)
for name, t in WINOGRAD.items():
    BT, G, AT = (torch.tensor(t[k], dtype=torch.float64) for k in ("BT", "G", "AT"))
    m = AT.shape[0]
    alpha = m + 2
    d = (torch.rand(tiles, C, alpha, alpha, dtype=torch.float64) * 2 - 1).float().double()
    g = ((torch.rand(C, 3, 3, dtype=torch.float64) * 2 - 1) * (6 / (18 * C)) ** 0.5).float().double()
    exact = torch.einsum("ua,tcab,vb->tuv", AT,
                         torch.einsum("ai,cij,bj->cab", G, g, G) * torch.einsum("ai,tcij,bj->tcab", BT, d, BT), AT)
    # Direct bf16: operands rounded, exact products, exact sum (the portable path's model).
    d16, g16 = bf16(d.float()).double(), bf16(g.float()).double()
    direct = torch.einsum("ua,tcab,vb->tuv", AT,
                          torch.einsum("ai,cij,bj->cab", G, g16, G) * torch.einsum("ai,tcij,bj->tcab", BT, d16, BT),
                          AT)
    # bf16 element-wise stage: U and V rounded after their (exact) transforms.
    U = bf16(torch.einsum("ai,cij,bj->cab", G, g, G).float()).double()
    V = bf16(torch.einsum("ai,tcij,bj->tcab", BT, d, BT).float()).double()
    staged = torch.einsum("ua,tcab,vb->tuv", AT, U * V, AT)
    scale = exact.abs().max().item()
    direct_error = (direct - exact).abs().max().item() / scale
    staged_error = (staged - exact).abs().max().item() / scale
    print("  %s: operands rounded %.2e, element-wise stage rounded %.2e of the largest output (x%.1f)"
          % (name, direct_error, staged_error, staged_error / direct_error))
    beta = (AT.abs() * (G.abs().sum(1) * BT.abs().sum(1))).sum(1).max().item()
    print("winograd_bf16_stage_bound_ratio_%s = %.3g  # beta^2 / 9: the bounds' ratio" % (name, beta**2 / 9))
    print("winograd_bf16_stage_error_ratio_%s = %.3g  # measured" % (name, staged_error / direct_error))
    print("winograd_bf16_stage_error_%s = %.2g" % (name, staged_error))
