#!/usr/bin/python3
"""layers/batch_norm.md, "Momentum across frameworks", runnable: Keras's momentum m is PyTorch's
1 - m, the running statistics average about the last 1 / (1 - m) batches, and the running
variance is unbiased (PyTorch, TensorFlow's fused Keras 2 batch norm, pneumo) or biased (Keras 3).

Run: /usr/bin/python3 layers/check_batch_norm_momentum.py

Exercises
 1. After how many steps from its initial value 1 does the running variance keep less than 1% of
    that initial value, with the notebook's momentum 0.9 and with Keras's default 0.99?
 2. Which M = N*H*W makes the unbiased running variance 1% larger than the biased one? Which
    layer of the notebook's network has the smallest M at batch 32, and how large is its ratio?
 3. What is the mean age, in steps, of the batches in a running average with momentum m?
"""
import math

import numpy as np
import torch


def keras_update(moving, batch_value, momentum):
    """Keras (and pneumo, kernels/batch_norm_math.h): moving = m * moving + (1 - m) * batch."""
    return momentum * moving + (1 - momentum) * batch_value


torch.manual_seed(0)
C, steps = 3, 40
batches = [torch.randn(4, C, 5, 5, dtype=torch.float64) * (1 + step % 3) + step * 0.1 for step in range(steps)]
M = 4 * 5 * 5

# 1. The conversion: PyTorch's momentum is the weight of the NEW batch, Keras's of the OLD value.
for keras_momentum in (0.9, 0.99):
    layer = torch.nn.BatchNorm2d(C, momentum=1 - keras_momentum, dtype=torch.float64).train()
    wrong = torch.nn.BatchNorm2d(C, momentum=keras_momentum, dtype=torch.float64).train()
    mean, var_unbiased, var_biased = np.zeros(C), np.ones(C), np.ones(C)
    for x in batches:
        layer(x), wrong(x)
        values = x.transpose(0, 1).reshape(C, -1).numpy()
        mean = keras_update(mean, values.mean(axis=1), keras_momentum)
        var_unbiased = keras_update(var_unbiased, values.var(axis=1, ddof=1), keras_momentum)  # pneumo, Keras 2
        var_biased = keras_update(var_biased, values.var(axis=1, ddof=0), keras_momentum)  # Keras 3
    error = max(abs(layer.running_mean.numpy() - mean).max(), abs(layer.running_var.numpy() - var_unbiased).max())
    print("Keras momentum %.2f = torch momentum %.2f: max |torch - keras-style update| = %.2g"
          % (keras_momentum, 1 - keras_momentum, error))
    assert error < 1e-12
    wrong_error = abs(wrong.running_mean.numpy() - mean).max()
    print("  torch momentum %.2f instead (the number copied across): running mean off by %.3g"
          % (keras_momentum, wrong_error))
    assert wrong_error > 0.1
    ratio = (layer.running_var.numpy() / var_biased).mean()
    print("  unbiased / biased running variance after %d steps, M = %d: %.5f (M / (M - 1) = %.5f)"
          % (steps, M, ratio, M / (M - 1)))
    if keras_momentum == 0.9:  # after 40 steps the initial value's weight 0.9^40 is 1.5%
        assert abs(ratio - M / (M - 1)) < 2e-3

# 2. The window: the batch k steps back has weight (1 - m) m^k; the weights sum to 1 - m^t after
# t steps (the rest is still the initial value), their mean age is m / (1 - m), and the last
# 1 / (1 - m) batches hold 1 - m^(1/(1-m)) ~ 1 - 1/e of the average.
for momentum in (0.9, 0.99):
    name = "%02d" % round(100 * momentum)
    window = 1 / (1 - momentum)
    print("window_%s = %.0f  # 1 / (1 - m) batches" % (name, window))
    print("last_window_share_%s = %.3f  # weight of the last 1 / (1 - m) batches" % (name, 1 - momentum ** window))
    print("mean_age_%s = %.0f  # steps" % (name, momentum / (1 - momentum)))
    steps_to_1_percent = math.ceil(math.log(0.01) / math.log(momentum))
    print("steps_until_initial_below_1_percent_%s = %d" % (name, steps_to_1_percent))
    weights = [(1 - momentum) * momentum ** k for k in range(100000)]
    assert abs(sum(weights[:round(window)]) - (1 - momentum ** window)) < 1e-9
    assert abs(sum(k * w for k, w in enumerate(weights)) - momentum / (1 - momentum)) < 1e-6
    assert momentum ** steps_to_1_percent < 0.01 <= momentum ** (steps_to_1_percent - 1)

# 3. Bessel's correction in the notebook's network at batch 32: M = 32 * H * W per batch norm.
for side in (256, 128, 64, 32, 16):
    m = 32 * side * side
    print("bessel_ratio_%d = %.6f  # M / (M - 1), M = 32 * %d * %d" % (side, m / (m - 1), side, side))
print("bessel_one_percent_M = %d  # the largest M whose M / (M - 1) is at least 1.01" % 101)
assert 101 / 100 >= 1.01 and 102 / 101 < 1.01
