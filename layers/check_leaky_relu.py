#!/usr/bin/python3
"""layers/leaky_relu.md, runnable: the LeakyReLU gradient of the page against torch autograd.

Run: /usr/bin/python3 layers/check_leaky_relu.py        (Debian's python3-torch)

Exercises
 1. Set SLOPE to 0.2 and predict, before running, what fraction of the entries of dx equal dy
    exactly and what the others equal. Then run it.
 2. Put an input exactly at 0. Which side of the kink does the page's rule use, and what does
    torch autograd give there? (Both say slope * dy.)
"""
import importlib
import torch

SLOPE = 0.0  # the notebook's LeakyReLU(0)
torch.manual_seed(0)
x = torch.randn(2, 5, 5, 3, dtype=torch.float64, requires_grad=True)  # (N,H,W,C)
dy = torch.randn(2, 5, 5, 3, dtype=torch.float64)

torch.nn.functional.leaky_relu(x, SLOPE).backward(dy)
page = torch.where(x > 0, dy, SLOPE * dy)  # dx = dy for x > 0, slope * dy for x <= 0
error = (page - x.grad).abs().max().item()
print("LeakyReLU(slope=%g): max |dx_page - dx_autograd| = %.3g" % (SLOPE, error))
assert error < 1e-14, error

# ---- The engine's own LeakyReLU (layers/leaky_relu.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine.check_layer("LeakyReLU", lambda pneumo: pneumo.layers.LeakyReLU(SLOPE),
                   lambda x: torch.nn.functional.leaky_relu(x, SLOPE), [x], nchw=False)
