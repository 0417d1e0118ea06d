#!/usr/bin/python3
"""Golden reference for tests/test_golden.cpp: the notebook's network, loss and Keras Adam in
PyTorch (float64), independent of the engine.

Builds create_network(input_size=64, channels=2, n_blocks=2, depth=4) with fixed seeded weights
(Glorot-uniform conv weights, perturbed batch-norm gamma/beta/running statistics, a non-zero head
bias), runs on a batch of 2 synthetic images/masks:
  step 1: training forward -> probabilities, notebook loss, every parameter gradient and the
          input gradient; then a Keras Adam update (beta1 .9, beta2 .999, epsilon 1e-7, lr 1e-3,
          written out by hand: torch.optim.Adam puts epsilon elsewhere);
  steps 2, 3: the same (training forward updates the running statistics each time);
  then the parameters and running statistics after 3 steps and an inference forward with them.
Writes tests/fixtures/golden_network.safetensors (float32, our layouts: activations NHWC,
conv weights (K,R,S,C)), tensor names:
  images, masks (2,64,64,1); initial.<param>; step1.output (2,64,64,1); step1.gradient.<param>;
  step1.input_gradient (2,64,64,1); losses (3); final.<param>; final.inference_output.
<param> are the engine's parameter names (layers/network.h), state included.

channels=2 rather than 4 keeps the fixture under 1 MB (about 50k parameters stored three
times); every layer kind, the residual sums and all four depths are still exercised.

Run: /usr/bin/python3 tests/golden/make_golden.py   (from the repository root)
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

INPUT_SIZE, CHANNELS, N_BLOCKS, DEPTH, BATCH = 64, 2, 2, 4, 2
MOMENTUM, BN_EPSILON, LEAKY_SLOPE = 0.9, 1e-3, 0.0   # Keras BatchNormalization(momentum=0.9)
LEARNING_RATE, BETA1, BETA2, ADAM_EPSILON = 1e-3, 0.9, 0.999, 1e-7
CLIP = 1e-7
STEPS = 3
DT = torch.float64


def conv_spec(name, in_channels, out_channels, kernel, bias):
    specs = [(name + ".weight", "conv", (out_channels, kernel, kernel, in_channels))]  # (K,R,S,C)
    if bias:
        specs.append((name + ".bias", "bias", (out_channels,)))
    return specs


def bn_spec(name, channels):
    return [(name + ".gamma", "gamma", (channels,)), (name + ".beta", "beta", (channels,)),
            (name + ".running_mean", "running_mean", (channels,)),
            (name + ".running_var", "running_var", (channels,))]


def parameter_specs():
    """(name, kind, shape) in the engine's registration order (node order)."""
    specs = conv_spec("conv0", 1, CHANNELS, 3, False)
    channels = CHANNELS
    for d in range(1, DEPTH + 1):
        specs += bn_spec(f"down{d}.bn", channels)
        specs += conv_spec(f"down{d}.conv", channels, channels * 2, 1, False)
        channels *= 2
        for b in range(1, N_BLOCKS + 1):
            block = f"block{d}_{b}"
            specs += bn_spec(block + ".bn1", channels)
            specs += conv_spec(block + ".conv1", channels, channels, 3, False)
            specs += bn_spec(block + ".bn2", channels)
            specs += conv_spec(block + ".conv2", channels, channels, 3, False)
    specs += bn_spec("head.bn", channels)
    specs += conv_spec("head.conv", channels, 1, 1, True)
    return specs


def initial_values(specs, rng):
    values = {}
    for name, kind, shape in specs:
        if kind == "conv":
            K, R, S, C = shape
            limit = math.sqrt(6.0 / (C * R * S + K * R * S))
            value = rng.uniform(-limit, limit, size=shape)
        elif kind == "gamma":
            value = 1.0 + rng.uniform(-0.25, 0.25, size=shape)
        elif kind in ("beta", "bias"):
            value = rng.uniform(-0.2, 0.2, size=shape)
        elif kind == "running_mean":
            value = rng.uniform(-0.1, 0.1, size=shape)
        else:  # running_var
            value = rng.uniform(0.8, 1.2, size=shape)
        values[name] = value.astype(np.float32)
    return values


def synthetic_batch(rng):
    """Noisy images with bright rectangles; masks cover most rectangles (and one false one)."""
    images = rng.uniform(0.0, 0.3, size=(BATCH, INPUT_SIZE, INPUT_SIZE, 1))
    masks = np.zeros((BATCH, INPUT_SIZE, INPUT_SIZE, 1))
    for n in range(BATCH):
        for box in range(3):
            y, x = rng.integers(0, INPUT_SIZE - 20, size=2)
            h, w = rng.integers(8, 20, size=2)
            images[n, y:y + h, x:x + w, 0] += rng.uniform(0.4, 0.7)
            if box < 2:
                masks[n, y:y + h, x:x + w, 0] = 1.0
    images = np.clip(images, 0.0, 1.0)
    return images.astype(np.float32), masks.astype(np.float32)


# ---- the network in PyTorch, NCHW, on tensors keyed by the engine's names -----------------

def to_torch(values):
    """Engine layouts -> PyTorch: conv (K,R,S,C) -> (K,C,R,S)."""
    tensors = {}
    for name, value in values.items():
        array = value.astype(np.float64)
        if array.ndim == 4:
            array = array.transpose(0, 3, 1, 2)
        tensors[name] = torch.tensor(np.ascontiguousarray(array), dtype=DT)
    return tensors


def to_engine(tensor):
    """PyTorch -> engine layouts, float32: conv weights (K,C,R,S) -> (K,R,S,C) and activations
    (N,C,H,W) -> (N,H,W,C) are the same permutation."""
    array = tensor.detach().cpu().numpy()
    if array.ndim == 4:
        array = array.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(array).astype(np.float32)


def network_forward(p, images_nchw, training):
    def conv(x, name, padding):
        return F.conv2d(x, p[name + ".weight"], p.get(name + ".bias"), padding=padding)

    def bn(x, name):
        # PyTorch momentum 0.1 == Keras momentum 0.9; running_var gets the unbiased variance.
        return F.batch_norm(x, p[name + ".running_mean"], p[name + ".running_var"],
                            p[name + ".gamma"], p[name + ".beta"], training=training,
                            momentum=1.0 - MOMENTUM, eps=BN_EPSILON)

    def act(x):
        return F.leaky_relu(x, LEAKY_SLOPE)

    x = conv(images_nchw, "conv0", 1)
    for d in range(1, DEPTH + 1):
        x = act(bn(x, f"down{d}.bn"))
        x = F.max_pool2d(conv(x, f"down{d}.conv", 0), 2)
        for b in range(1, N_BLOCKS + 1):
            block = f"block{d}_{b}"
            y = conv(act(bn(x, block + ".bn1")), block + ".conv1", 1)
            y = conv(act(bn(y, block + ".bn2")), block + ".conv2", 1)
            x = y + x
    x = conv(act(bn(x, "head.bn")), "head.conv", 0)
    x = torch.sigmoid(x)
    return F.interpolate(x, scale_factor=2 ** DEPTH, mode="nearest")


def notebook_loss(probabilities, masks):
    """0.5 * Keras binary_crossentropy (clipped, mean over all pixels) + 0.5 * IoU loss over the
    whole batch: 1 - (I + 1) / (sum y + sum p - I + 1)."""
    clipped = probabilities.clamp(CLIP, 1.0 - CLIP)
    bce = -(masks * torch.log(clipped) + (1.0 - masks) * torch.log(1.0 - clipped)).mean()
    intersection = (masks * probabilities).sum()
    score = (intersection + 1.0) / (masks.sum() + probabilities.sum() - intersection + 1.0)
    return 0.5 * bce + 0.5 * (1.0 - score)


def keras_adam_step(parameters, moments, step):
    """w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon), t = step (1-based)."""
    rate = LEARNING_RATE * math.sqrt(1.0 - BETA2 ** step) / (1.0 - BETA1 ** step)
    with torch.no_grad():
        for name, value in parameters.items():
            m, v = moments[name]
            g = value.grad
            m.mul_(BETA1).add_((1.0 - BETA1) * g)
            v.mul_(BETA2).add_((1.0 - BETA2) * g * g)
            value.sub_(rate * m / (v.sqrt() + ADAM_EPSILON))
            value.grad = None


# ---- safetensors, written by hand --------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)))
        file.write(text)
        for blob in blobs:
            file.write(blob)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(20180827)
    specs = parameter_specs()
    initial = initial_values(specs, rng)
    images, masks = synthetic_batch(rng)

    p = to_torch(initial)
    trainable = {name: p[name] for name, kind, _ in specs
                 if kind not in ("running_mean", "running_var")}
    for value in trainable.values():
        value.requires_grad_(True)
    moments = {name: (torch.zeros_like(v), torch.zeros_like(v)) for name, v in trainable.items()}
    images_nchw = torch.tensor(images.transpose(0, 3, 1, 2), dtype=DT, requires_grad=True)
    masks_nchw = torch.tensor(masks.transpose(0, 3, 1, 2), dtype=DT)

    out = {"images": images, "masks": masks}
    out.update({"initial." + name: value for name, value in initial.items()})
    losses = []
    for step in range(1, STEPS + 1):
        probabilities = network_forward(p, images_nchw, training=True)
        loss = notebook_loss(probabilities, masks_nchw)
        loss.backward()
        losses.append(loss.item())
        if step == 1:
            out["step1.output"] = to_engine(probabilities)
            out["step1.input_gradient"] = to_engine(images_nchw.grad)
            for name, value in trainable.items():
                out["step1.gradient." + name] = to_engine(value.grad)
        keras_adam_step(trainable, moments, step)
    out["losses"] = np.array(losses, dtype=np.float32)
    for name, _, _ in specs:
        out["final." + name] = to_engine(p[name])
    with torch.no_grad():
        inference = network_forward(p, images_nchw, training=False)
    out["final.inference_output"] = to_engine(inference)

    metadata = {"config": f"input_size={INPUT_SIZE} channels={CHANNELS} n_blocks={N_BLOCKS} "
                          f"depth={DEPTH} batch={BATCH} leaky_slope={LEAKY_SLOPE}",
                "losses": " ".join(repr(value) for value in losses),
                "generator": "tests/golden/make_golden.py (PyTorch " + torch.__version__ + ", float64)"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tests", "fixtures", "golden_network.safetensors")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for name in ("step1.output", "step1.input_gradient", "final.inference_output"):
        assert out[name].shape == images.shape, name
    write_safetensors(path, out, metadata)
    count = sum(int(np.prod(shape)) for name, kind, shape in specs
                if kind not in ("running_mean", "running_var"))
    print(f"wrote {path}: {os.path.getsize(path)} bytes, {count} trainable parameters, "
          f"losses {losses}", file=sys.stderr)


if __name__ == "__main__":
    main()
