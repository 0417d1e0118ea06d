#!/usr/bin/python3
"""layers/receptive_field.md, runnable: the receptive field of one output pixel of the notebook's
network, derived layer by layer (kernel, stride, jump) and measured with autograd.

Run: /usr/bin/python3 layers/check_receptive_field.py

The network is the nn.Module of layers/checkpoint.md (create_network(256, 32, n_blocks=2,
depth=4)) with Keras's glorot_uniform convolutions, as pneumo initializes them. Its batch norms
hold the statistics of the batch they see (one training-mode forward with cumulative running
averages), then the module runs in eval mode: in training mode batch norm's mean and variance
would connect every input pixel to every output pixel, which is not what "receptive field" means.

Exercises
 1. With depth 5 (input 256, one more max pool and two more blocks), predict the analytic
    receptive field, then check it with `analytic_receptive_field(depth=5)`.
 2. What does the analytic receptive field become with n_blocks = 1, and with n_blocks = 3?
 3. Why is the support of the gradient of an output pixel in the corner 137 pixels wide and not
    258 / 2 = 129?
"""
import math
import os

import torch

page = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint.md")).read()
namespace = {}
exec(page.split("<!-- tested by layers/check_checkpoint.py -->", 1)[1].split("```python", 1)[1].split("```", 1)[0],
     namespace)
PneumoNet = namespace["PneumoNet"]


def layer_table(n_blocks=2, depth=4):
    """The spatial layers of the network layers/network.cpp builds, in order: (name, kernel,
    stride). 1x1 convolutions, batch norms, ReLUs and the residual adds do not widen the field
    (the skip path of an add sees less than its branch, so the branch sets the field)."""
    table = [("conv0", 3, 1)]
    for d in range(1, depth + 1):
        table.append(("down%d.pool" % d, 2, 2))
        for b in range(1, n_blocks + 1):
            table += [("block%d_%d.conv1" % (d, b), 3, 1), ("block%d_%d.conv2" % (d, b), 3, 1)]
    return table


def analytic_receptive_field(n_blocks=2, depth=4, verbose=False):
    """r_out = r_in + (kernel - 1) * jump_in; jump_out = jump_in * stride (r and jump start at 1)."""
    r, jump = 1, 1
    for name, kernel, stride in layer_table(n_blocks, depth):
        r += (kernel - 1) * jump
        jump *= stride
        if verbose:
            print("  %-16s kernel %d stride %d -> jump %2d, receptive field %3d" % (name, kernel, stride, jump, r))
    return r, jump


print("Per layer (the page's table):")
r, jump = analytic_receptive_field(verbose=True)
rf_after = {}
for d in range(0, 5):
    rf_after[d] = analytic_receptive_field(depth=d)[0] if d else 3
    print("rf_after_depth%d = %d" % (d, rf_after[d]))
print("analytic_receptive_field = %d" % r)
print("analytic_jump = %d" % jump)
assert (r, jump) == (258, 16)
for blocks in (1, 3):
    print("analytic_receptive_field_blocks%d = %d" % (blocks, analytic_receptive_field(n_blocks=blocks)[0]))
print("analytic_receptive_field_depth5 = %d" % analytic_receptive_field(depth=5)[0])


def clipped_window(cell, size=256, field=258, jump=16):
    """Input rows an output cell (16 pixels of the 256 output, one pixel of the 16x16 map) sees:
    the field centred on the cell's 16 pixels, clipped to the image."""
    half = (field - jump) // 2
    return max(0, cell * jump - half), min(size - 1, cell * jump + jump - 1 + half)


torch.manual_seed(0)
model = PneumoNet(channels=32, n_blocks=2, depth=4).double()
for module in model.modules():
    if isinstance(module, torch.nn.Conv2d):
        torch.nn.init.xavier_uniform_(module.weight)  # Keras glorot_uniform: fan = k*k*channels
    if isinstance(module, torch.nn.BatchNorm2d):
        module.momentum = None  # cumulative average: after one forward, the batch's statistics
images = torch.rand(2, 1, 256, 256, dtype=torch.float64)
with torch.no_grad():
    model.train()(images)
model.eval()

images.requires_grad_(True)
probabilities = model(images)  # (2,1,256,256)
gradients = {}
for where, (y, x) in {"centre": (128, 128), "corner": (0, 0)}.items():
    images.grad = None
    probabilities[:, 0, y, x].sum().backward(retain_graph=True)
    gradients[where] = images.grad[:, 0].abs()  # (2,256,256): |d p(y,x) / d image|

for where, (y, x) in {"centre": (128, 128), "corner": (0, 0)}.items():
    seen = gradients[where][0] > 0  # first image
    rows = torch.nonzero(seen.any(dim=1)).flatten()
    cols = torch.nonzero(seen.any(dim=0)).flatten()
    height, width = rows[-1].item() - rows[0].item() + 1, cols[-1].item() - cols[0].item() + 1
    expected = clipped_window(y // 16), clipped_window(x // 16)
    print("%s output pixel (%d,%d): gradient support rows %d..%d, columns %d..%d (analytic, clipped: %s %s)"
          % (where, y, x, rows[0], rows[-1], cols[0], cols[-1], expected[0], expected[1]))
    assert (rows[0].item(), rows[-1].item()) == expected[0] and (cols[0].item(), cols[-1].item()) == expected[1]
    print("support_%s_side = %d" % (where, height))
    print("support_%s_zero_percent = %.1f  # of the pixels inside the support box with zero gradient"
          % (where, 100.0 * (1 - seen[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].double().mean().item())))

# Effective receptive field (Luo et al., 2016): how the gradient magnitude is spread. Sum |grad|
# over the two images, then count the fewest pixels holding 50% and 90% of it, and the side of
# the square centred on the output cell that holds that much.
magnitude = gradients["centre"].sum(dim=0)  # (256,256)
total = magnitude.sum()
ordered = magnitude.flatten().sort(descending=True).values.cumsum(0) / total
centre = 128 + 7.5  # the middle of the output cell's 16 pixels (128..143)
for share in (50, 90):
    pixels = int((ordered < share / 100).sum().item()) + 1
    side = 1
    while True:
        low, high = max(0, math.ceil(centre - side / 2)), min(256, math.ceil(centre + side / 2))
        if magnitude[low:high, low:high].sum() >= share / 100 * total:
            break
        side += 1
    print("erf%d_pixels = %d  # the fewest pixels holding %d%% of |grad|" % (share, pixels, share))
    print("erf%d_equivalent_side = %.0f  # the side of a square of that area" % (share, math.sqrt(pixels)))
    print("erf%d_centred_square_side = %d  # the centred square holding %d%%" % (share, side, share))
    print("erf%d_area_percent_of_support = %.1f" % (share, 100.0 * pixels / (249 * 249)))
row_profile = magnitude.sum(dim=1)
within_16 = row_profile[128 - 16:144 + 16].sum() / row_profile.sum()
print("centre_cell_plus_16_rows_percent = %.1f  # of |grad| in the rows 112..159" % (100 * within_16.item()))
