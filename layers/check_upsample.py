#!/usr/bin/python3
"""layers/upsample.md, runnable: nearest upsampling's backward sums each factor x factor block.

Run: /usr/bin/python3 layers/check_upsample.py

Exercises
 1. The notebook upsamples by 16 from 16x16 to 256x256. How many output pixels feed each input
    gradient? Predict the ratio dx.abs().mean() / dy.abs().mean() for random dy (about
    sqrt(factor^2) for independent signs), then set FACTOR = 16 and look.
"""
import importlib
import torch

FACTOR = 4
torch.manual_seed(0)
x = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)  # NCHW for torch
dy = torch.randn(2, 3, 5 * FACTOR, 5 * FACTOR, dtype=torch.float64)
torch.nn.functional.interpolate(x, scale_factor=FACTOR, mode="nearest").backward(dy)
page = dy.reshape(2, 3, 5, FACTOR, 5, FACTOR).sum(dim=(3, 5))  # dx[h,w] = sum of its block
error = (page - x.grad).abs().max().item()
print("upsample x%d: max |dx_page - dx_autograd| = %.3g" % (FACTOR, error))
print("mean |dx| / mean |dy| = %.2f" % (x.grad.abs().mean() / dy.abs().mean()).item())
assert error < 1e-12, error

# The exercise's answer (the page's "Solutions"): factor 16, each dx sums 256 values of dy.
x16 = torch.randn(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
dy16 = torch.randn(2, 3, 256, 256, dtype=torch.float64)
torch.nn.functional.interpolate(x16, scale_factor=16, mode="nearest").backward(dy16)
print("factor16_dx_over_dy = %.1f" % (x16.grad.abs().mean() / dy16.abs().mean()).item())

# ---- The engine's own Upsample (layers/upsample.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine.check_layer("Upsample x%d" % FACTOR, lambda pneumo: pneumo.layers.Upsample(FACTOR),
                   lambda x: torch.nn.functional.interpolate(x, scale_factor=FACTOR, mode="nearest"), [x])
