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

# The exercises' answers (the page's "Solutions").
# 1. Slope 0.2: dx = dy exactly where x > 0, 0.2 * dy elsewhere.
x2 = x.detach().clone().requires_grad_(True)
torch.nn.functional.leaky_relu(x2, 0.2).backward(dy)
print("slope02_share_dx_equals_dy_percent = %.1f" % (100 * (x2.grad == dy).double().mean().item()))
print("slope02_share_positive_inputs_percent = %.1f" % (100 * (x > 0).double().mean().item()))
assert torch.equal(x2.grad, torch.where(x > 0, dy, 0.2 * dy))
# 2. At exactly 0 the page's rule (x > 0 is false) gives slope * dy; so does autograd.
zero = torch.zeros(1, dtype=torch.float64, requires_grad=True)
torch.nn.functional.leaky_relu(zero, 0.2).backward(torch.ones(1, dtype=torch.float64))
print("gradient_at_zero_slope02 = %.1f" % zero.grad.item())
assert zero.grad.item() == 0.2

# ---- The engine's own LeakyReLU (layers/leaky_relu.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine.check_layer("LeakyReLU", lambda pneumo: pneumo.layers.LeakyReLU(SLOPE),
                   lambda x: torch.nn.functional.leaky_relu(x, SLOPE), [x], nchw=False)
