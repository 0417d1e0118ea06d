#!/usr/bin/python3
"""layers/training_step.md, runnable: the notebook's network (the nn.Module of
layers/checkpoint.md), its parameter count, the shapes the page's table gives, the activation
memory of a batch, and one training step's loss falling under Keras's Adam.

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

# Output shapes of each depth, and the sum of every node's output (the activations kept for
# backward), counted with forward hooks on a batch of 1 at 256x256.
shapes, activation_values = {}, [0]


def count(module, inputs, output):
    activation_values[0] += output.numel()


for name, module in model.named_modules():
    if isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
        module.register_forward_hook(count)
with torch.no_grad():
    out = model.eval()(torch.rand(1, 1, 256, 256))
print("output", tuple(out.shape))
assert tuple(out.shape) == (1, 1, 256, 256)
# conv and batch-norm outputs alone; the page's 182 MiB per image adds ReLU, pool, add, sigmoid
# and upsample outputs.
print("conv + batch-norm outputs per image: %.1f MiB" % (activation_values[0] * 4 / 2 ** 20))

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
