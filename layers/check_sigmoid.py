#!/usr/bin/python3
"""layers/sigmoid.md, runnable: dx = dy * y * (1 - y) against torch autograd, and the stable form.

Run: /usr/bin/python3 layers/check_sigmoid.py

Exercises
 1. The backward reads the OUTPUT y, not the input x. Rewrite `page` below in terms of x only
    and check that it still agrees; which one needs the exp again?
 2. Evaluate 1 / (1 + exp(-x)) in float32 at x = -100 and x = 100 and compare with the page's
    form (e = exp(-|x|)). Which form returns exactly 0 or 1, and which loses x = -30's precision?
"""
import importlib
import numpy as np
import torch

torch.manual_seed(0)
x = torch.randn(2, 4, 4, 3, dtype=torch.float64, requires_grad=True) * 4
x.retain_grad()
dy = torch.randn(2, 4, 4, 3, dtype=torch.float64)
y = torch.sigmoid(x)
y.backward(dy)
page = dy * y.detach() * (1 - y.detach())
error = (page - x.grad).abs().max().item()
print("sigmoid: max |dx_page - dx_autograd| = %.3g" % error)
assert error < 1e-14, error

# The page's stable forward: e = exp(-|x|); y = 1/(1+e) for x >= 0, e/(1+e) for x < 0.
xs = torch.tensor([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0], dtype=torch.float32)
e = torch.exp(-xs.abs())
stable = torch.where(xs >= 0, 1 / (1 + e), e / (1 + e))
reference = torch.sigmoid(xs.double())
relative = ((stable.double() - reference).abs() / reference.clamp_min(1e-300)).max().item()
print("stable float32 sigmoid: max relative error %.3g over x in [-1000, 1000]" % relative)
assert relative < 1e-6, relative

# Saturation in float32, with the code's formula (kernels/activation_math.h) in numpy float32 and
# torch.sigmoid beside it. For x >= 0, y = 1/(1+e) is exactly 1 once 1 + e rounds to 1
# (e < 2^-24); for x < 0, y = e/(1+e) is about e = exp(x): tiny but not 0, and so is the gradient
# y(1-y), until exp(x) underflows (subnormals end near x = -103.97).


def code_sigmoid(x):
    x = np.float32(x)
    e = np.exp(-np.abs(x), dtype=np.float32)
    return np.float32(1) / (np.float32(1) + e) if x >= 0 else e / (np.float32(1) + e)


def code_gradient(y):  # sigmoid_gradient with dy = 1
    return y * (np.float32(1) - y)


for x in (17.0, -17.0):
    y, t = code_sigmoid(x), torch.sigmoid(torch.tensor(x, dtype=torch.float32)).item()
    tag = "plus" if x > 0 else "minus"
    print("float32 sigmoid(%g) = %.9g (torch %.9g), gradient %.3g" % (x, y, t, code_gradient(y)))
    print("sigmoid_%s17 = %.3g" % (tag, y))
    print("sigmoid_gradient_%s17 = %.3g" % (tag, code_gradient(y)))
assert code_sigmoid(17.0) == 1 and code_gradient(code_sigmoid(17.0)) == 0
assert 4e-8 < code_sigmoid(-17.0) < 4.2e-8 and abs(code_gradient(code_sigmoid(-17.0)) / code_sigmoid(-17.0) - 1) < 1e-6
# The smallest float32 x at which y is exactly 1, and the largest at which y is exactly 0.
grid = np.arange(16, 17, 1e-4, dtype=np.float32)
first_one = next(x for x in grid if code_sigmoid(x) == 1)
grid = -np.arange(103, 105, 1e-4, dtype=np.float32)
first_zero = next(x for x in grid if code_sigmoid(x) == 0)
print("sigmoid_exactly_one_from = %.2f" % first_one)
print("sigmoid_exactly_zero_below = %.2f" % first_zero)
assert 16.5 < first_one < 16.7 and -104.1 < first_zero < -103.9

# The exercises' answers (the page's "Solutions").
# 1. In terms of x only: dx = dy * exp(-x) / (1 + exp(-x))^2 (the exp again).
inputs = (torch.randn(2, 4, 4, 3, dtype=torch.float64) * 4).requires_grad_(True)
torch.sigmoid(inputs).backward(dy)
xd = inputs.detach()
from_x = dy * torch.exp(-xd) / (1 + torch.exp(-xd)) ** 2
print("gradient_from_x_error = %.1g" % (from_x - inputs.grad).abs().max().item())
assert (from_x - inputs.grad).abs().max().item() < 1e-14


# 2. The naive form in float32 against the page's, at -100, -30 and 100.
def naive_sigmoid(x):
    return np.float32(1) / (np.float32(1) + np.exp(-np.float32(x), dtype=np.float32))


with np.errstate(over="ignore"):
    for x in (-100.0, -30.0, 100.0):
        exact = 1 / (1 + np.exp(-np.float64(x)))
        tag = ("minus%d" if x < 0 else "plus%d") % abs(x)
        print("naive_sigmoid_%s = %.3g   # page's form %.3g, exact %.3g"
              % (tag, naive_sigmoid(x), code_sigmoid(x), exact))
        print("naive_relative_error_%s = %.2g" % (tag, abs(naive_sigmoid(x) - exact) / exact))
        print("page_relative_error_%s = %.2g" % (tag, abs(code_sigmoid(x) - exact) / exact))

# ---- The engine's own Sigmoid (layers/sigmoid.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine.check_layer("Sigmoid", lambda pneumo: pneumo.layers.Sigmoid(), torch.sigmoid,
                   [torch.randn(2, 4, 4, 3, dtype=torch.float64) * 4], nchw=False)
