#!/usr/bin/python3
"""engine/layout.md, runnable: a 3x3 'same' convolution computed by hand on flat NHWC / KRSC
buffers with the page's offset formulas (and as the im2col GEMM the CPU back end runs), against
torch.nn.functional.conv2d on the same numbers after the page's transposes; then a 1x1
convolution as one GEMM and the Keras kernel conversion.

Run: /usr/bin/python3 engine/check_layout.py        (Debian's python3-torch, numpy)

Exercises
 1. Replace `transpose(0, 3, 1, 2)` for the weight by `transpose(0, 3, 2, 1)` (rows and columns
    swapped: KCSR instead of KCRS). Predict: does the check still pass for a symmetric kernel?
    For this random one? Run it.
 2. Change `activation_offset` to ((n*W + x)*H + y)*C + c (an NWHC layout read as NHWC). Which
    shapes would still pass (hint: H == W and a kernel symmetric under transposition)?
 3. Work out, from the offsets, how many contiguous runs of floats one im2col row of a 3x3
    convolution reads in NHWC, and how many in NCHW.
"""
import numpy as np
import torch

TOLERANCE = 1e-12  # float64: only the summation order differs
rng = np.random.default_rng(0)
N, H, W, C, K, R, S = 2, 7, 5, 3, 4, 3, 3
P = R // 2  # 'same' zero padding, stride 1 (layers/conv2d.h)

x = rng.standard_normal((N, H, W, C))    # (N,H,W,C) ours
w = rng.standard_normal((K, R, S, C))    # (K,R,S,C) ours
b = rng.standard_normal(K)               # (K)
x_flat, w_flat = x.ravel(), w.ravel()    # the engine's buffers: one flat float array each


def activation_offset(n, y, x_, c, H=H, W=W, C=C):
    return ((n * H + y) * W + x_) * C + c


def weight_offset(k, i, j, c):
    return ((k * R + i) * S + j) * C + c


# 1. The offset formulas are numpy's row-major strides.
assert all(x_flat[activation_offset(n, y, q, c)] == x[n, y, q, c]
           for n in range(N) for y in range(H) for q in range(W) for c in range(C))
assert all(w_flat[weight_offset(k, i, j, c)] == w[k, i, j, c]
           for k in range(K) for i in range(R) for j in range(S) for c in range(C))

# 2. The convolution by hand on the flat buffers:
#    out[n,y,x,k] = b[k] + sum_{i,j,c} in[n, y+i-P, x+j-P, c] * w[k,i,j,c]   (zero outside)
out_flat = np.zeros(N * H * W * K)       # (N,H,W,K)
for n in range(N):
    for y in range(H):
        for q in range(W):
            for k in range(K):
                total = b[k]
                for i in range(R):
                    for j in range(S):
                        v, u = y + i - P, q + j - P
                        if 0 <= v < H and 0 <= u < W:
                            for c in range(C):
                                total += x_flat[activation_offset(n, v, u, c)] * w_flat[weight_offset(k, i, j, c)]
                out_flat[activation_offset(n, y, q, k, C=K)] = total
ours = out_flat.reshape(N, H, W, K)

# 3. The same as im2col + GEMM: one row of R*S*C values per output pixel, in (i, j, c) order,
#    times the KRSC weight read as a plain (K, R*S*C) matrix.
padded = np.zeros((N, H + 2 * P, W + 2 * P, C))
padded[:, P:P + H, P:P + W, :] = x
columns = np.stack([padded[:, i:i + H, j:j + W, :] for i in range(R) for j in range(S)], axis=3)  # (N,H,W,R*S,C)
gemm = columns.reshape(N * H * W, R * S * C) @ w.reshape(K, R * S * C).T + b  # (N*H*W, K)

# 4. PyTorch: NCHW activations, KCRS weights, through the page's transposes.
x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())   # (N,H,W,C) -> (N,C,H,W)
w_torch = torch.from_numpy(w.transpose(0, 3, 1, 2).copy())   # (K,R,S,C) -> (K,C,R,S)
y_torch = torch.nn.functional.conv2d(x_torch, w_torch, torch.from_numpy(b), padding=P)  # (N,K,H,W)
theirs = y_torch.numpy().transpose(0, 2, 3, 1)               # (N,K,H,W) -> (N,H,W,K)

# 5. A 1x1 convolution is one GEMM on the NHWC buffer: (N*H*W, C) x (K, C)^T, no copies.
w1 = rng.standard_normal((K, 1, 1, C))
one_by_one = (x.reshape(N * H * W, C) @ w1.reshape(K, C).T).reshape(N, H, W, K)
torch_one_by_one = torch.nn.functional.conv2d(x_torch, torch.from_numpy(w1.transpose(0, 3, 1, 2).copy()))

# 6. Keras kernels are (R,S,C,K): ours = transpose(3, 0, 1, 2), back with (1, 2, 3, 0).
w_keras = w.transpose(1, 2, 3, 0)
keras_sum = np.einsum("nyxrsc,rsck->nyxk",
                      np.stack([np.stack([padded[:, i:i + H, j:j + W, :] for j in range(S)], axis=3)
                                for i in range(R)], axis=3), w_keras) + b

errors = {
    "by hand (offsets) vs torch conv2d": np.abs(ours - theirs).max(),
    "im2col GEMM vs torch conv2d": np.abs(gemm.reshape(N, H, W, K) - theirs).max(),
    "1x1 as one GEMM vs torch conv2d": np.abs(one_by_one - torch_one_by_one.numpy().transpose(0, 2, 3, 1)).max(),
    "Keras RSCK kernel vs torch conv2d": np.abs(keras_sum - theirs).max(),
    "Keras round trip (3,0,1,2)/(1,2,3,0)": np.abs(np.transpose(w_keras, (3, 0, 1, 2)) - w).max(),
}
failed = False
for name, error in errors.items():
    print("layout %-38s max |difference| = %.3g (tolerance %g)" % (name, error, TOLERANCE))
    failed = failed or not error <= TOLERANCE
if failed:
    raise SystemExit("engine/layout.md: a layout formula disagrees with torch beyond the tolerance")

# The exercises' answers (the page's "Solutions").
# 1. The weight transposed (0, 3, 2, 1) (KCSR read as KCRS) swaps the kernel's rows and columns.
def torch_conv(x_nhwc, w_kcrs):
    x_nchw = torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())
    return torch.nn.functional.conv2d(x_nchw, torch.from_numpy(w_kcrs), torch.from_numpy(b), padding=P).numpy()


symmetric = w + w.transpose(0, 2, 1, 3)  # w[k,i,j,c] == w[k,j,i,c]
for name, kernel in (("random", w), ("symmetric", symmetric)):
    right = torch_conv(x, kernel.transpose(0, 3, 1, 2).copy())
    swapped = torch_conv(x, kernel.transpose(0, 3, 2, 1).copy())
    print("kcsr_error_%s_kernel = %.2g" % (name, np.abs(swapped - right).max()))


# 2. The NHWC buffer read with the NWHC formula ((n*W + x)*H + y)*C + c, input and output alike,
# is the convolution of the image transposed (H and W swapped), transposed back: the same result
# only when H == W (else the read is not even a transpose) and the kernel is symmetric.
def nwhc_read_conv(x_nhwc, kernel):
    n_, h_, w_, c_ = x_nhwc.shape
    read = x_nhwc.ravel().reshape(n_, w_, h_, c_).transpose(0, 2, 1, 3)  # what the NWHC formula reads
    out = torch_conv(read, kernel.transpose(0, 3, 1, 2).copy()).transpose(0, 2, 3, 1)  # (N,H,W,K)
    return out.transpose(0, 2, 1, 3).ravel().reshape(n_, h_, w_, K)  # written back with the formula


square = rng.standard_normal((N, 5, 5, C))
for name, image, kernel in (("square_symmetric", square, symmetric), ("square_random", square, w),
                            ("nonsquare_symmetric", x, symmetric)):
    right = torch_conv(image, kernel.transpose(0, 3, 1, 2).copy()).transpose(0, 2, 3, 1)
    print("nwhc_error_%s = %.2g" % (name, np.abs(nwhc_read_conv(image, kernel) - right).max()))


# 3. Contiguous runs of one im2col row (an interior output pixel of a 3x3 convolution).
def runs(offsets):
    return 1 + sum(1 for a, b_ in zip(offsets, offsets[1:]) if b_ != a + 1)


C_NET, H_NET, W_NET = 64, 128, 128  # block1_1.conv1
y0, x0 = 10, 10
nhwc = [((y0 + i - 1) * W_NET + (x0 + j - 1)) * C_NET + c for i in range(3) for j in range(3) for c in range(C_NET)]
nchw = sorted((c * H_NET + (y0 + i - 1)) * W_NET + (x0 + j - 1) for i in range(3) for j in range(3) for c in range(C_NET))
print("im2col_runs_nhwc_c64 = %d  # of %d floats each" % (runs(nhwc), 3 * C_NET))
print("im2col_runs_nchw_c64 = %d  # of 3 floats each" % runs(nchw))
