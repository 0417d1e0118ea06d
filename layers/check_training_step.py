#!/usr/bin/python3
"""layers/training_step.md, runnable: the notebook's network (the nn.Module of
layers/checkpoint.md), its parameter count, the shapes the page's table gives, the activation
memory of a batch term by term (the numbers section 2 quotes), and one training step's loss falling under Keras's Adam.

Run: /usr/bin/python3 layers/check_training_step.py

Exercises
 1. Before running, predict the output shape after depth 2 for input_size 256 and channels 32.
 2. Double `channels`: by what factor do the parameters grow, and by what factor the activations?
    (About 4x and 2x: weights are channels x channels, activations are channels wide.)
"""
import math
import os

import torch

page = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint.md")).read()
namespace = {}
exec(page.split("<!-- tested by layers/check_checkpoint.py -->", 1)[1].split("```python", 1)[1].split("```", 1)[0],
     namespace)
PneumoNet = namespace["PneumoNet"]

model = PneumoNet(channels=32, n_blocks=2, depth=4)  # create_network(256, 32, n_blocks=2, depth=4)
trainable = sum(p.numel() for p in model.parameters())
print("trainable parameters: %d (page: 12,718,305)" % trainable)
assert trainable == 12718305

# The activations kept for backward, term by term: every node's output on a batch of 1 at
# 256x256, tallied by the torch function that made it (conv2d, batch_norm, leaky_relu,
# max_pool2d, add, sigmoid, interpolate = the network's Conv2d, BatchNorm2d, LeakyReLU,
# MaxPool2d, Add, Sigmoid, Upsample nodes).
from torch.overrides import TorchFunctionMode

outputs = {}


class CountOutputs(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor):  # not dim() and the like
            outputs[func.__name__] = outputs.get(func.__name__, 0) + result.numel()
        return result


depth2_shape = []  # exercise 1: the output of depth 2 (block2_2's conv2, the add has its shape)
model.nodes["block2_2"]["conv2"].register_forward_hook(lambda module, inputs, output: depth2_shape.append(output.shape))
image = torch.rand(1, 1, 256, 256)
with torch.no_grad(), CountOutputs():
    out = model.eval()(image)
print("output", tuple(out.shape))
assert tuple(out.shape) == (1, 1, 256, 256)
MIB = 4 / 2 ** 20  # float32
node = {"conv2d": "Conv2d", "batch_norm": "BatchNorm2d", "leaky_relu": "LeakyReLU (in place over BN)",
        "max_pool2d": "MaxPool2d", "add": "Add (in place over conv2)", "sigmoid": "Sigmoid",
        "interpolate": "Upsample"}
assert set(outputs) == set(node), outputs
print("node outputs per image, MiB (name = value; the node kind after #):")
for function, label in node.items():
    print("activations_%s_mib = %.2f   # %s" % (function, outputs[function] * MIB, label))
# Network::plan_in_place: each LeakyReLU writes over its batch norm's output and each Add over
# its conv2's output, so their outputs take no memory of their own.
per_node = sum(outputs.values()) * MIB
in_place = per_node - (outputs["leaky_relu"] + outputs["add"]) * MIB
print("activations_per_image_in_place_mib = %.1f" % in_place)
print("activations_per_image_per_node_mib = %.1f" % per_node)
print("activations_batch32_in_place_mib = %.0f" % (32 * in_place))
print("activations_batch32_per_node_mib = %.0f" % (32 * per_node))
# The page's activations row (training_memory_budget, layers/network.cpp) at batch 32.
assert round(32 * in_place) == 3880 and round(32 * per_node) == 5816, (in_place, per_node)

# One step on a tiny configuration: the loss before and after a hand-written Keras Adam step.
torch.manual_seed(0)
small = PneumoNet(channels=4, n_blocks=1, depth=2).double().train()
images = torch.rand(4, 1, 32, 32, dtype=torch.float64)
masks = (images > 0.7).double()


def loss_of(p):
    pc = p.clamp(1e-7, 1 - 1e-7)
    bce = -(masks * pc.log() + (1 - masks) * (1 - pc).log()).mean()
    i = (masks * p).sum()
    return 0.5 * bce + 0.5 * (1 - (i + 1) / (masks.sum() + p.sum() - i + 1))


before = loss_of(small(images))
before.backward()
with torch.no_grad():
    lr_t = 1e-2 * math.sqrt(1 - 0.999) / (1 - 0.9)
    for p in small.parameters():
        m, v = 0.1 * p.grad, 0.001 * p.grad ** 2
        p -= lr_t * m / (v.sqrt() + 1e-7)
after = loss_of(small(images))
print("tiny network, one step at lr 1e-2: loss %.5f -> %.5f" % (before.item(), after.item()))
assert after.item() < before.item()

# The exercises' answers (the page's "Solutions").
# 1. After depth 2: 256 / 2 / 2 = 64 pixels a side, 32 * 2 * 2 = 128 channels (NCHW in torch).
print("depth2_output_shape (N,C,H,W) =", tuple(depth2_shape[0]))
print("depth2_output_side = %d" % depth2_shape[0][2])
print("depth2_output_channels = %d" % depth2_shape[0][1])
assert tuple(depth2_shape[0]) == (1, 128, 64, 64)


# 2. Doubling the channels: parameters (weights are channels x channels) and activations
# (channels wide), counted on 64x64 images (the ratio does not depend on the size but for the
# one-channel sigmoid and upsample outputs).
def activations(channels):
    network, images = PneumoNet(channels=channels, n_blocks=2, depth=4).eval(), torch.rand(1, 1, 64, 64)
    outputs.clear()
    with torch.no_grad(), CountOutputs():
        network(images)
    return sum(outputs.values())


parameters64 = sum(p.numel() for p in PneumoNet(channels=64, n_blocks=2, depth=4).parameters())
print("trainable_parameters_channels64 = %d" % parameters64)
print("parameter_ratio_channels64 = %.3f" % (parameters64 / trainable))
print("activation_ratio_channels64 = %.3f" % (activations(64) / activations(32)))
