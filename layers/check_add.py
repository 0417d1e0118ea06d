#!/usr/bin/python3
"""layers/add.md, runnable: the residual sum copies dy to both inputs, and a tensor used twice
(the block input feeds the add AND the branch) receives the SUM of both paths' gradients.

Run: /usr/bin/python3 layers/check_add.py

Exercises
 1. In the residual block y = x + f(x), f(x) = w * relu(x): write dy/dx by hand, then compare with
    `block_dx` below. Which term is the skip path?
 2. Why must every backward ACCUMULATE (+=) rather than overwrite? Change `block_dx` to keep only
    the last path's contribution and watch the check fail.
"""
import importlib
import torch

torch.manual_seed(0)
a = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
b = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
dy = torch.randn(2, 3, 3, 4, dtype=torch.float64)
(a + b).backward(dy)
error = max((a.grad - dy).abs().max().item(), (b.grad - dy).abs().max().item())
print("add: max |da - dy|, |db - dy| = %.3g" % error)
assert error == 0.0

x = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
w = 0.7
(x + w * torch.relu(x)).backward(dy)
block_dx = dy + w * dy * (x.detach() > 0)  # skip path + branch path, accumulated
error = (block_dx - x.grad).abs().max().item()
print("residual block x + w*relu(x): max |dx_page - dx_autograd| = %.3g" % error)
assert error < 1e-14, error

# The exercises' answers (the page's "Solutions").
# 1. dy/dx = 1 + w * [x > 0]: the 1 is the skip path, w * [x > 0] the branch.
print("skip_path_gradient_share_where_relu_open = %.3f  # 1 / (1 + w)" % (1 / (1 + w)))
# 2. Overwriting keeps only the last path written (here the branch): the skip path's dy is lost.
overwritten = w * dy * (x.detach() > 0)
print("overwrite_error = %.2f  # max |dx_overwrite - dx_autograd| = max |dy|" % (overwritten - x.grad).abs().max().item())
assert abs((overwritten - x.grad).abs().max().item() - dy.abs().max().item()) < 1e-12

# ---- The engine's own Add (layers/add.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine.check_layer("Add", lambda pneumo: pneumo.layers.Add(), lambda a, b: a + b,
                   [torch.randn(2, 3, 3, 4, dtype=torch.float64), torch.randn(2, 3, 3, 4, dtype=torch.float64)],
                   nchw=False)
