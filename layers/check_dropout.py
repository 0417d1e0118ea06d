#!/usr/bin/python3
"""layers/dropout.md, runnable: inverted dropout keeps the expectation, its gradient is the same
mask times the same scale, and the mask is a pure function of (seed, step, index).

Run: /usr/bin/python3 layers/check_dropout.py

Exercises
 1. Predict the variance of y = x * mask / (1 - rate) for a constant x = 1 and rate 0.3, then
    check it on `many` below. (rate / (1 - rate).)
 2. Change STEP by one and count how many mask entries change. Why about 2 * rate * (1 - rate)?
"""
import torch

RATE, SEED, STEP = 0.3, 7, 3
MASK64 = (1 << 64) - 1


def splitmix64_mix(z):  # kernels/dropout_math.h
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mask(seed, step, count, rate):
    key = splitmix64_mix(seed ^ splitmix64_mix((step + 0x9E3779B97F4A7C15) & MASK64))
    threshold = round(rate * 2 ** 32)
    return torch.tensor([float((splitmix64_mix((key + i * 0x9E3779B97F4A7C15) & MASK64) >> 32) >= threshold)
                         for i in range(count)], dtype=torch.float64)


torch.manual_seed(0)
shape = (2, 6, 6, 4)
count = 2 * 6 * 6 * 4
keep = mask(SEED, STEP, count, RATE).reshape(shape)
scale = 1 / (1 - RATE)
x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
dy = torch.randn(shape, dtype=torch.float64)
(x * keep * scale).backward(dy)
page = dy * keep * scale  # dx = dy / (1 - rate) where kept, 0 where dropped
error = (page - x.grad).abs().max().item()
print("dropout(rate=%g): kept %d of %d; max |dx_page - dx_autograd| = %.3g"
      % (RATE, int(keep.sum()), count, error))
assert error == 0.0

many = mask(SEED, STEP, 20000, RATE) * scale  # y for x = 1
print("E[y] for x = 1: %.4f (expect 1), Var[y]: %.4f (expect rate/(1-rate) = %.4f)"
      % (many.mean().item(), many.var().item(), RATE / (1 - RATE)))
assert abs(many.mean().item() - 1) < 0.03
changed = (mask(SEED, STEP + 1, count, RATE).reshape(shape) != keep).double().mean().item()
print("share of the mask that changes from step %d to %d: %.2f" % (STEP, STEP + 1, changed))

# The exercises' answers (the page's "Solutions").
print("variance_constant_input = %.3f  # measured on 20000 draws" % many.var().item())
print("variance_expected = %.3f  # rate / (1 - rate)" % (RATE / (1 - RATE)))
assert abs(many.var().item() - RATE / (1 - RATE)) < 0.03
print("mask_change_share_measured = %.3f  # of 288 entries" % changed)
large = (mask(SEED, STEP + 1, 20000, RATE) != mask(SEED, STEP, 20000, RATE)).double().mean().item()
print("mask_change_share_20000 = %.3f" % large)
print("mask_change_share_expected = %.2f  # 2 * rate * (1 - rate)" % (2 * RATE * (1 - RATE)))
assert abs(large - 2 * RATE * (1 - RATE)) < 0.02
