#!/usr/bin/python3
"""layers/max_pool.md, runnable: max pool routes each dy to the first maximum of its window.

Run: /usr/bin/python3 layers/check_max_pool.py

Exercises
 1. Make every input of one window equal (a tie) and predict which of the four inputs gets dy
    under the page's rule. Does torch agree on this machine? (The script prints both.)
 2. With odd H, which input row gets no gradient at all, and why is that correct for 'valid'
    pooling?
 3. What fraction of down1.pool's windows are tied on a noise image, and on the same image with
    a flat border? Where do the ties come from? (Measured at the end; worked answer on the page.)
"""
import importlib
import os

import torch

torch.manual_seed(0)
# Distinct values, so the argmax is unique and autograd's subgradient is the page's.
x = (torch.randperm(2 * 3 * 6 * 7).double() * 0.05).reshape(2, 3, 6, 7).requires_grad_(True)
dy = torch.randn(2, 3, 3, 3, dtype=torch.float64)
torch.nn.functional.max_pool2d(x, 2).backward(dy)


def page_backward(x, dy):
    """The page's routing: dy goes to the FIRST maximum in row-major window order."""
    dx = torch.zeros_like(x)
    N, C, H, W = x.shape
    for n in range(N):
        for c in range(C):
            for i in range(H // 2):
                for j in range(W // 2):
                    window = [(2 * i, 2 * j), (2 * i, 2 * j + 1), (2 * i + 1, 2 * j), (2 * i + 1, 2 * j + 1)]
                    values = [x[n, c, h, w].item() for h, w in window]
                    h, w = window[values.index(max(values))]  # list.index: the first maximum
                    dx[n, c, h, w] += dy[n, c, i, j]
    return dx


error = (page_backward(x.detach(), dy) - x.grad).abs().max().item()
print("max pool, distinct values: max |dx_page - dx_autograd| = %.3g" % error)
assert error == 0.0
print("last column (W = 7 is odd) gets no gradient:", bool((x.grad[..., 6] == 0).all()))

tie = torch.ones(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
torch.nn.functional.max_pool2d(tie, 2).backward(torch.ones(1, 1, 1, 1, dtype=torch.float64))
print("a 2x2 tie: page routes dy to (0,0); torch here gives", tie.grad.flatten().tolist())

# Exercise 3: how common are ties where the network pools? down1.pool follows down1.conv, a 1x1
# convolution after bn -> relu (layers/network.cpp), so its windows hold conv outputs, not ReLU
# zeros. Measured on the notebook's network (the nn.Module of layers/checkpoint.md, random
# initial weights) for one 256x256 image of uniform noise, and the same image with a flat (0)
# border 16 pixels wide, 23.4% of the area.
page = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint.md")).read()
namespace = {}
exec(page.split("<!-- tested by layers/check_checkpoint.py -->", 1)[1].split("```python", 1)[1].split("```", 1)[0],
     namespace)
torch.manual_seed(0)
network = namespace["PneumoNet"](channels=32, n_blocks=2, depth=4).eval()
pool_input = {}
network.nodes["down1"]["conv"].register_forward_hook(lambda module, inputs, output: pool_input.update(x=output))


def tied_window_percent(images):
    with torch.no_grad():
        network(images)
    x = pool_input["x"]  # (N,C,H,W), what down1.pool reads
    N, C, H, W = x.shape
    windows = x.reshape(N, C, H // 2, 2, W // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(N, C, H // 2, W // 2, 4)
    largest = windows.max(-1, keepdim=True).values
    return 100 * ((windows == largest).sum(-1) > 1).double().mean().item()


noise = torch.rand(1, 1, 256, 256)
bordered = torch.zeros_like(noise)
bordered[..., 16:-16, 16:-16] = noise[..., 16:-16, 16:-16]
print("down1_pool_tied_windows_percent_noise = %.1f" % tied_window_percent(noise))
print("down1_pool_tied_windows_percent_flat_border = %.1f" % tied_window_percent(bordered))

# ---- The engine's own MaxPool2d (layers/max_pool.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine.check_layer("MaxPool2d", lambda pneumo: pneumo.layers.MaxPool2d(),
                   lambda x: torch.nn.functional.max_pool2d(x, 2), [x])  # distinct values: one argmax each
