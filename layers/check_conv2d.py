#!/usr/bin/python3
"""layers/conv2d.md, runnable: the weight gradient is a correlation of the input with the output
gradient, the input gradient a 'same' convolution of dy with the flipped, in/out-swapped weight;
the multiply-add count of each of the three; and Winograd's error constants beta and beta_w.

Run: /usr/bin/python3 layers/check_conv2d.py

Exercises
 1. Show that all three passes cost the same N*H*W*K*R*S*C multiply-adds. Which pass of the stem
    (C = 1) does the network skip, and why?
 2. Rewrite `page_dw` as one matrix product dy^T (K,P) @ col(x) (P,R*S*C) with torch's unfold and
    check it (that is GEMM 2 of the page).
"""
import importlib
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

# The exercises' answers (the page's "Solutions").
# 1. Each pass is N*H*W*K*R*S*C multiply-adds; the stem's input gradient is skipped (the images
# need none): conv0's share at batch 32.
print("conv0_multiply_adds_per_pass_g = %.2f" % (32 * 256 * 256 * 32 * 9 * 1 / 1e9))
# 2. The weight gradient as one GEMM: dy^T (K, P) @ col(x) (P, C*R*S), P = N*H*W; torch's unfold
# orders a column (c, i, j), matching its (K,C,R,S) weights (pneumo's im2col orders (i, j, c)).
columns = F.unfold(x.detach(), R, padding=p)  # (N, C*R*S, H*W)
col = columns.transpose(1, 2).reshape(N * H * W, C * R * R)  # (P, C*R*S)
dy_rows = dy.permute(0, 2, 3, 1).reshape(N * H * W, K)  # (P, K)
gemm_dw = (dy_rows.t() @ col).reshape(K, C, R, R)
print("gemm2_dw_error = %.1g" % (gemm_dw - w.grad).abs().max().item())
assert (gemm_dw - w.grad).abs().max().item() < 1e-12

# Winograd's error constants (the page's "Winograd's accuracy"), from the transforms of
# kernels/cpu/conv_winograd.cpp, element-wise in absolute value:
#   beta   = max over output rows u of sum_a |A^T[u,a]| * ||G[a,:]||_1 * ||B^T[a,:]||_1
#   beta_w = max over filter taps r of sum_a |G[a,r]| * ||A[a,:]||_1 * ||B^T[a,:]||_1
# (A = (A^T)^T). The tolerances of tests/test_conv2d.cpp are built from these.
WINOGRAD = importlib.import_module("winograd_transforms").WINOGRAD  # layers/winograd_transforms.py
print("\nWinograd error constants (the page's beta and beta_w):")
for name, m in WINOGRAD.items():
    BT, G, AT = (torch.tensor(m[k], dtype=torch.float64).abs() for k in ("BT", "G", "AT"))
    # The transforms are right: one 1-D tile through them is the 'valid' correlation.
    d, g = torch.randn(BT.shape[0], dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    Y = torch.tensor(m["AT"], dtype=torch.float64) @ ((torch.tensor(m["G"], dtype=torch.float64) @ g) *
                                                     (torch.tensor(m["BT"], dtype=torch.float64) @ d))
    direct = torch.stack([d[i:i + 3] @ g for i in range(AT.shape[0])])
    assert (Y - direct).abs().max().item() < 1e-12, name
    BT_norm, G_norm, A_norm = BT.sum(1), G.sum(1), AT.t().sum(1)
    beta = (AT * (G_norm * BT_norm)).sum(1).max().item()
    beta_w = (G.t() * (A_norm * BT_norm)).sum(1).max().item()
    print("beta_%s = %.4g" % (name, beta))
    print("beta_w_%s = %.4g" % (name, beta_w))

# ---- The engine's own Conv2d (layers/conv2d.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
for kernel in (3, 1):
    weight = torch.randn(K, C, kernel, kernel, dtype=torch.float64, requires_grad=True)  # torch (K,C,R,S)
    engine.check_layer("Conv2d %dx%d" % (kernel, kernel),
                       lambda pneumo, kernel=kernel: pneumo.layers.Conv2d(C, K, kernel),
                       lambda x, weight=weight, kernel=kernel: F.conv2d(x, weight, padding=kernel // 2),
                       [torch.randn(N, C, H, W, dtype=torch.float64)],
                       parameters=[("weight", weight, lambda t: t.permute(0, 2, 3, 1))])  # engine (K,R,S,C)
