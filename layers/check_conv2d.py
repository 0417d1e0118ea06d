#!/usr/bin/python3
"""layers/conv2d.md, runnable: the weight gradient is a correlation of the input with the output
gradient, the input gradient a 'same' convolution of dy with the flipped, in/out-swapped weight;
and the multiply-add count of each of the three.

Run: /usr/bin/python3 layers/check_conv2d.py

Exercises
 1. Show that all three passes cost the same N*H*W*K*R*S*C multiply-adds. Which pass of the stem
    (C = 1) does the network skip, and why?
 2. Rewrite `page_dw` as one matrix product dy^T (K,P) @ col(x) (P,R*S*C) with torch's unfold and
    check it (that is GEMM 2 of the page).
"""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
N, H, W, C, K, R = 2, 6, 5, 3, 4, 3
p = R // 2
x = torch.randn(N, C, H, W, dtype=torch.float64, requires_grad=True)
w = torch.randn(K, C, R, R, dtype=torch.float64, requires_grad=True)  # torch (K,C,R,S)
dy = torch.randn(N, K, H, W, dtype=torch.float64)
F.conv2d(x, w, padding=p).backward(dy)

# Weight gradient: dw[k,c,i,j] = sum_{n,h,w} dy[n,k,h,w] * x_pad[n,c,h+i,w+j]  (a correlation)
x_pad = F.pad(x.detach(), (p, p, p, p))
page_dw = torch.zeros_like(w)
for i in range(R):
    for j in range(R):
        page_dw[:, :, i, j] = torch.einsum("nkhw,nchw->kc", dy, x_pad[:, :, i:i + H, j:j + W])
# Input gradient: a 'same' convolution of dy with w flipped in space, in/out swapped.
w_flipped = w.detach().flip(2, 3).transpose(0, 1)  # (C,K,R,S)
page_dx = F.conv2d(dy, w_flipped, padding=p)
errors = {"dw": (page_dw - w.grad).abs().max().item(), "dx": (page_dx - x.grad).abs().max().item()}
for name, error in errors.items():
    print("conv2d %s: max |page - autograd| = %.3g" % (name, error))
    assert error < 1e-12, error

# Multiply-adds per pass for the notebook's layers at batch 32 (each pass N*H*W*K*R*S*C).
print("\nmultiply-adds per training step, batch 32 (forward = input gradient = weight gradient):")
for name, size, c_in, k_out, r in [("conv0 3x3 1->32", 256, 1, 32, 3), ("down1.conv 1x1 32->64", 256, 32, 64, 1),
                                   ("block1 conv 3x3 64->64", 128, 64, 64, 3), ("block4 conv 3x3 512->512", 16, 512, 512, 3)]:
    macs = 32 * size * size * k_out * r * r * c_in
    print("  %-26s %7.2f G multiply-adds per pass" % (name, macs / 1e9))
