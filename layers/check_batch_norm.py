#!/usr/bin/python3
"""layers/batch_norm.md, runnable: the derived input gradient of batch norm against autograd,
and why the statistics are summed around a shift.

Run: /usr/bin/python3 layers/check_batch_norm.py

Exercises
 1. Drop the last term of `page_dx` (the path through the variance) and predict the size of the
    error before running. Then drop the middle term (the path through the mean) instead.
 2. In inference mode the statistics are constants. Show that dx = gamma * inv_std * dy then,
    and check it with F.batch_norm(..., training=False).
 3. Raise MEAN to 1e6: at what mean does the unshifted float32 variance become useless?
"""
import importlib
import torch

torch.manual_seed(0)
N, H, W, C, EPS = 4, 5, 6, 3, 1e-3
x = torch.randn(N, C, H, W, dtype=torch.float64).mul(2).add(0.5).requires_grad_(True)
gamma = torch.randn(C, dtype=torch.float64, requires_grad=True)
beta = torch.randn(C, dtype=torch.float64, requires_grad=True)
dy = torch.randn(N, C, H, W, dtype=torch.float64)

y = torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
y.backward(dy)

# The page's formulas, per channel over the M = N*H*W values.
M = N * H * W
xd, g = x.detach(), gamma.detach().view(1, C, 1, 1)
mean = xd.mean(dim=(0, 2, 3), keepdim=True)
var = ((xd - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)  # biased
inv_std = 1 / torch.sqrt(var + EPS)
x_hat = (xd - mean) * inv_std
sum_dy = dy.sum(dim=(0, 2, 3), keepdim=True)
sum_dy_x_hat = (dy * x_hat).sum(dim=(0, 2, 3), keepdim=True)
page_dx = g * inv_std * (dy - sum_dy / M - x_hat * sum_dy_x_hat / M)
errors = {
    "dx": (page_dx - x.grad).abs().max().item(),
    "dgamma": (sum_dy_x_hat.flatten() - gamma.grad).abs().max().item(),
    "dbeta": (sum_dy.flatten() - beta.grad).abs().max().item(),
}
for name, error in errors.items():
    print("batch norm %-6s max |page - autograd| = %.3g" % (name, error))
    assert error < 1e-12, error

# Numerics: var = E[x^2] - mean^2 in float32 cancels when |mean| >> std; a shift s near the mean
# (the CPU uses the mean of 256 evenly spaced rows) removes the cancellation.
MEAN = 1e4
values = (torch.randn(100000, dtype=torch.float64) + MEAN).float()
true_var = values.double().var(unbiased=False).item()
naive = ((values * values).mean() - values.mean() ** 2).item()
shift = values[:: len(values) // 256][:256].mean()
d = values - shift
shifted = ((d * d).mean() - d.mean() ** 2).item()
print("variance of mean-%g data: true %.6f, float32 naive %.6f, float32 shifted %.6f"
      % (MEAN, true_var, naive, shifted))
assert abs(shifted - true_var) < 1e-3 * true_var

# The exercises' answers (the page's "Solutions").
# 1. Dropping a path: the error is the dropped term itself, relative to the largest |dx|.
scale = x.grad.abs().max().item()
without_variance = g * inv_std * (dy - sum_dy / M)
without_mean = g * inv_std * (dy - x_hat * sum_dy_x_hat / M)
print("drop_variance_term_relative_error = %.2f" % ((without_variance - x.grad).abs().max().item() / scale))
print("drop_mean_term_relative_error = %.2f" % ((without_mean - x.grad).abs().max().item() / scale))
# 2. Inference: the statistics are constants, dx = gamma * inv_std * dy.
running_mean, running_var = torch.randn(C, dtype=torch.float64), torch.rand(C, dtype=torch.float64) + 0.5
x.grad = None
torch.nn.functional.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=EPS).backward(dy)
inference_dx = g * (1 / torch.sqrt(running_var + EPS)).view(1, C, 1, 1) * dy
print("inference_dx_error = %.1g" % (inference_dx - x.grad).abs().max().item())
assert (inference_dx - x.grad).abs().max().item() < 1e-12
# 3. The unshifted float32 variance of unit-variance data as the mean grows: relative error.
for mean in (1e2, 1e3, 2e3, 4e3, 1e4, 1e6):
    values = (torch.randn(100000, dtype=torch.float64) + mean).float()
    true_var = values.double().var(unbiased=False).item()
    naive = ((values * values).mean() - values.mean() ** 2).item()
    print("naive_variance_relative_error_mean_%d = %.2g" % (mean, abs(naive - true_var) / true_var))

# ---- The engine's own BatchNorm2d (layers/batch_norm.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
engine_gamma = torch.randn(C, dtype=torch.float64, requires_grad=True)
engine_beta = torch.randn(C, dtype=torch.float64, requires_grad=True)
engine.check_layer("BatchNorm2d (training)", lambda pneumo: pneumo.layers.BatchNorm2d(C, epsilon=EPS),
                   lambda x: torch.nn.functional.batch_norm(x, None, None, engine_gamma, engine_beta, training=True, eps=EPS),
                   [torch.randn(N, C, H, W, dtype=torch.float64).mul(2).add(0.5)], training=True,
                   parameters=[("gamma", engine_gamma, lambda t: t), ("beta", engine_beta, lambda t: t)], tolerance=1e-4)
