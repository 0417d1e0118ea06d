#!/usr/bin/python3
"""layers/sigmoid.md, runnable: dx = dy * y * (1 - y) against torch autograd, and the stable form.

Run: /usr/bin/python3 layers/check_sigmoid.py

Exercises
 1. The backward reads the OUTPUT y, not the input x. Rewrite `page` below in terms of x only
    and check that it still agrees; which one needs the exp again?
 2. Evaluate 1 / (1 + exp(-x)) in float32 at x = -100 and x = 100 and compare with the page's
    form (e = exp(-|x|)). Which form returns exactly 0 or 1, and which loses x = -30's precision?
"""
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
