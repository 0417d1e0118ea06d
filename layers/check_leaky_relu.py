#!/usr/bin/python3
"""layers/leaky_relu.md, runnable: the LeakyReLU gradient of the page against torch autograd.

Run: /usr/bin/python3 layers/check_leaky_relu.py        (Debian's python3-torch)

Exercises
 1. Set SLOPE to 0.2 and predict, before running, what fraction of the entries of dx equal dy
    exactly and what the others equal. Then run it.
 2. Put an input exactly at 0. Which side of the kink does the page's rule use, and what does
    torch autograd give there? (Both say slope * dy.)
"""
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
