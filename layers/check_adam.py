#!/usr/bin/python3
"""layers/adam.md, runnable: Keras's Adam (used here) against torch.optim.Adam, in numbers.

Run: /usr/bin/python3 layers/check_adam.py

Keras:   w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
PyTorch: w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps_torch)
They are the same update exactly when eps_torch = eps / sqrt(1 - b2^t) (divide the PyTorch
denominator by 1/sqrt(1 - b2^t)): a different epsilon at every step, large at first.

Exercises
 1. At which step t does eps / sqrt(1 - b2^t) fall within 10% of eps? (Solve, then print it.)
 2. For a gradient of 1e-3 instead of 1e-9, predict whether the two optimizers still differ by
    more than 1% at step 1. Set TINY and look.
"""
import importlib
import math

import torch

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7
TINY = 1e-9


def keras_steps(w, gradients):
    m = torch.zeros_like(w)
    v = torch.zeros_like(w)
    w = w.clone()
    for t, g in enumerate(gradients, 1):
        lr_t = LR * math.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        w -= lr_t * m / (v.sqrt() + EPS)
    return w


def torch_steps(w, gradients, eps_for_step):
    w = w.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=LR, betas=(B1, B2), eps=EPS)
    for t, g in enumerate(gradients, 1):
        optimizer.param_groups[0]["eps"] = eps_for_step(t)
        w.grad = g.clone()
        optimizer.step()
    return w.detach()


torch.manual_seed(0)
w0 = torch.randn(1000, dtype=torch.float64)
gradients = [torch.randn(1000, dtype=torch.float64) * 10 ** torch.empty(1000).uniform_(-9, 0).double()
             for _ in range(5)]
keras = keras_steps(w0, gradients)
mapped = torch_steps(w0, gradients, lambda t: EPS / math.sqrt(1 - B2 ** t))
plain = torch_steps(w0, gradients, lambda t: EPS)
error = (keras - mapped).abs().max().item()
print("5 steps, eps_torch = eps / sqrt(1 - b2^t): max |w_keras - w_torch| = %.3g" % error)
assert error < 1e-15, error
print("5 steps, eps_torch = eps (constant):       max |w_keras - w_torch| = %.3g"
      % (keras - plain).abs().max().item())

print("\nstep size |w1 - w0| at step 1 for a gradient of %g:" % TINY)
g = [torch.full((1,), TINY, dtype=torch.float64)]
zero = torch.zeros(1, dtype=torch.float64)
k = -keras_steps(zero, g).item()
for name, eps_torch in [("torch eps=1e-7", 1e-7), ("torch eps=1e-8 (default)", 1e-8)]:
    s = -torch_steps(zero, g, lambda t, e=eps_torch: e).item()
    print("  keras %.3g   %-26s %.3g   ratio %.1f" % (k, name, s, s / k))
# A gradient of 1e-3: both move by about lr * sign(g) at step 1; by how much do they differ?
g = [torch.full((1,), 1e-3, dtype=torch.float64)]
k = -keras_steps(zero, g).item()
for name, eps_torch in [("eps_1e_7", 1e-7), ("eps_1e_8", 1e-8)]:
    s = -torch_steps(zero, g, lambda t, e=eps_torch: e).item()
    print("step_difference_percent_g_1e_3_%s = %.2f   # torch %.6g vs keras %.6g at step 1"
          % (name, 100 * (s / k - 1), s, k))
print("eps_torch equivalent to Keras's 1e-7 at t = 1, 10, 100, 1000, 10000:",
      ", ".join("%.2g" % (EPS / math.sqrt(1 - B2 ** t)) for t in (1, 10, 100, 1000, 10000)))

# The exercises' answers (the page's "Solutions").
# 1. eps / sqrt(1 - b2^t) <= 1.1 eps  <=>  b2^t <= 1 - 1/1.21.
t_10 = math.ceil(math.log(1 - 1 / 1.1 ** 2) / math.log(B2))
assert 1 / math.sqrt(1 - B2 ** t_10) <= 1.1 < 1 / math.sqrt(1 - B2 ** (t_10 - 1))
print("eps_within_10_percent_step = %d" % t_10)

# ---- The engine's own Adam (layers/adam.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
pneumo = engine.load_pneumo()
if pneumo is not None:
    import numpy as np  # python3-numpy comes with python3-torch
    network = pneumo.Network(size=16, channels=2, blocks=1, depth=2, seed=3)
    adam = pneumo.Adam(beta1=B1, beta2=B2, epsilon=EPS)
    name = "block1_1.conv1.weight"
    images = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
    history = [torch.tensor(np.array(network.parameter(name)), dtype=torch.float64).flatten()]
    gradients = []
    for step in range(3):  # three steps on three gradients, against keras_steps above
        network.zero_gradients()
        network.forward(images, training=True)
        network.backward(np.full((2, 16, 16, 1), 0.1 * (step + 1), dtype=np.float32))
        gradients.append(torch.tensor(np.array(network.parameter_gradient(name)), dtype=torch.float64).flatten())
        adam.step(network, LR)
    expected = keras_steps(history[0], gradients)
    mine = torch.tensor(np.array(network.parameter(name)), dtype=torch.float64).flatten()
    error = (mine - expected).abs().max().item() / (expected - history[0]).abs().max().item()
    print("engine Adam through pneumo, 3 steps of %s vs the Keras update: max |w - w_keras| / max |step| = %.2g"
          % (name, error))
    assert error < 1e-4 and adam.step_count == 3, error
