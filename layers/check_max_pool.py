#!/usr/bin/python3
"""layers/max_pool.md, runnable: max pool routes each dy to the first maximum of its window.

Run: /usr/bin/python3 layers/check_max_pool.py

Exercises
 1. Make every input of one window equal (a tie) and predict which of the four inputs gets dy
    under the page's rule. Does torch agree on this machine? (The script prints both.)
 2. With odd H, which input row gets no gradient at all, and why is that correct for 'valid'
    pooling?
"""
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
