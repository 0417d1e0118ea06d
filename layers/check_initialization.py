#!/usr/bin/python3
"""layers/initialization.md, runnable: the activation scale through the notebook's network at
initialization, with batch norm and without, under Keras's glorot_uniform (what pneumo and the
notebook use), He's normal and a too-small normal initialization.

Run: /usr/bin/python3 layers/check_initialization.py

The network is the nn.Module of layers/checkpoint.md (create_network(S, 32, n_blocks=2,
depth=4)) on a batch of 4 random 64x64 images in [0, 1]; "without batch norm" replaces every
batch norm by the identity. Each line prints the variance of a node's output over the batch.

Exercises
 1. Glorot's uniform limit is sqrt(6 / (fan_in + fan_out)). What is the weight variance of a
    3x3 convolution 64 -> 64, and how does it compare with He's 2 / fan_in?
 2. Without batch norm, by what factor should one conv + ReLU pair scale the second moment
    under Glorot on a square layer? Check it against `chain_ratio_glorot`.
 3. With batch norm, multiply the weights of every convolution but the head's by 100: what
    happens to the network's output? (Run it: `forward(..., scale=100)`.)
"""
import math
import os

import torch
import torch.nn.functional as F

page = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint.md")).read()
namespace = {}
exec(page.split("<!-- tested by layers/check_checkpoint.py -->", 1)[1].split("```python", 1)[1].split("```", 1)[0],
     namespace)
PneumoNet = namespace["PneumoNet"]


def initialize(model, how, seed=0):
    """glorot: Keras's Conv2D default (uniform, limit sqrt(6 / (fan_in + fan_out)), fan = k*k*C);
    he: normal with variance 2 / fan_in; small: normal with standard deviation 0.01."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            if how == "glorot":
                torch.nn.init.xavier_uniform_(module.weight)
            elif how == "he":
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            else:
                torch.nn.init.normal_(module.weight, std=0.01)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return model


def forward(model, images, batch_norm=True, scale=1.0):
    """The module's forward (layers/checkpoint.md), recording the variance of each node's output;
    batch norm in training mode (batch statistics, as in a training step) or replaced by the
    identity; the output of every convolution but the head's multiplied by `scale` (= their
    weights times scale)."""
    record = []
    bn = (lambda layer, x: F.batch_norm(x, None, None, layer.weight, layer.bias, True, 0.0, layer.eps)) \
        if batch_norm else (lambda layer, x: x)
    conv = lambda layer, x: layer(x) * scale
    x = conv(model.conv0, images)
    record.append(("conv0", x))
    for d in range(1, model.depth + 1):
        down = model.nodes["down%d" % d]
        x = F.max_pool2d(conv(down["conv"], F.relu(bn(down["bn"], x))), 2)
        record.append(("down%d.pool" % d, x))
        for b in range(1, model.n_blocks + 1):
            block = model.nodes["block%d_%d" % (d, b)]
            y = conv(block["conv1"], F.relu(bn(block["bn1"], x)))
            record.append(("block%d_%d.conv1" % (d, b), y))
            y = conv(block["conv2"], F.relu(bn(block["bn2"], y)))
            record.append(("block%d_%d.conv2" % (d, b), y))
            x = x + y
            record.append(("block%d_%d.add" % (d, b), x))
    head = model.nodes["head"]
    logits = head["conv"](F.relu(bn(head["bn"], x)))  # the head's 1x1 conv is not scaled
    record.append(("head.conv (logits)", logits))
    return [(name, value.var().item()) for name, value in record], torch.sigmoid(logits)


torch.manual_seed(1)
images = torch.rand(4, 1, 64, 64)
model = PneumoNet(channels=32, n_blocks=2, depth=4)
runs = {}
with torch.no_grad():
    for label, how, batch_norm in [("glorot_bn", "glorot", True), ("glorot_nobn", "glorot", False),
                                   ("he_nobn", "he", False), ("small_nobn", "small", False),
                                   ("small_bn", "small", True)]:
        runs[label], _ = forward(initialize(model, how), images, batch_norm)
    _, p1 = forward(initialize(model, "glorot"), images, True)
    _, p1000 = forward(model, images, True, scale=1000.0)
    _, p100 = forward(model, images, True, scale=100.0)

names = [name for name, _ in runs["glorot_bn"]]
print("variance of each node's output at initialization (batch of 4, 64x64):")
print("%-20s" % "node" + "".join("%13s" % label for label in runs))
for i, name in enumerate(names):
    print("%-20s" % name + "".join("%13.3g" % runs[label][i][1] for label in runs))

for label, values in runs.items():
    print("%s_logit_variance = %.3g" % (label, values[-1][1]))
    print("%s_conv0_variance = %.3g" % (label, values[0][1]))
# The conv + ReLU chain inside a block (bn1 -> relu1 -> conv1 -> relu2 -> conv2 without bn): the
# second moment of conv2's output over conv1's, averaged over the blocks of depths 2..4.
for label in ("glorot_nobn", "he_nobn", "small_nobn"):
    values = dict(runs[label])
    ratios = [values["block%d_%d.conv2" % (d, b)] / values["block%d_%d.conv1" % (d, b)]
              for d in (2, 3, 4) for b in (1, 2)]
    print("chain_ratio_%s = %.2f  # var(conv2) / var(conv1) in a block, mean over depths 2-4"
          % (label.replace("_nobn", ""), sum(ratios) / len(ratios)))

fan_in = fan_out = 9 * 64
glorot_variance = 6 / (fan_in + fan_out) / 3  # uniform(-a, a) has variance a^2 / 3
print("glorot_weight_variance_3x3_64 = %.3g" % glorot_variance)
print("he_weight_variance_3x3_64 = %.3g" % (2 / fan_in))
# Batch norm makes each layer's output independent of the scale of the weights before it, up to
# epsilon: at scale 1 conv0's variance (0.02) is only 20 times epsilon (1e-3), at scale 100 2e5 times.
print("weights_times_100_max_probability_change = %.2g" % (p100 - p1).abs().max().item())
print("weights_times_100_vs_1000_max_probability_change = %.2g" % (p1000 - p100).abs().max().item())

bn = dict(runs["glorot_bn"])
nobn = dict(runs["glorot_nobn"])
small = dict(runs["small_nobn"])
# With batch norm every branch input has unit variance, whatever the weights: the logits stay
# of order one. Without it, Glorot shrinks the signal, and a too-small init kills it.
assert 0.05 < bn["head.conv (logits)"] < 20, bn
assert nobn["head.conv (logits)"] < 1e-2 * bn["head.conv (logits)"]
assert small["head.conv (logits)"] < 1e-10
# With batch norm a too-small init still reaches the head with variance of order one: only the
# head's own 1x1 convolution (not followed by a batch norm) keeps its small scale.
assert 0.1 < dict(runs["small_bn"])["block4_2.add"] < 10
assert (p1000 - p100).abs().max().item() < 1e-3 < 0.1 < (p100 - p1).abs().max().item()
