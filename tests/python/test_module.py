#!/usr/bin/python3
"""The Python module against independent implementations (torch autograd, numpy, pydicom):

 * the network: forward, every parameter's gradient and nodes' d loss / d output against the
   same graph rebuilt in torch (float64) from the module's own parameters;
 * one training step: the loss against the notebook's formula in torch, Adam's update against
   the formula in numpy;
 * arrays cross without copies (parameters are views of the engine's memory) and wrong dtypes,
   layouts and shapes raise pneumo.Error with a one-line message;
 * checkpoints round-trip; read_dicom against pydicom; post-processing and the metric on cases
   worked out by hand.
  test_module.py WORK_DIR
"""
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

try:
    import pneumo
except ImportError as error:
    print("SKIPPED: the pneumo Python module is not importable (%s)" % error)
    sys.exit(77)

work = sys.argv[1]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def check(name, condition, detail=""):
    print("%s %s %s" % ("ok  " if condition else "FAIL", name, detail))
    if not condition:
        failures.append(name)


def raises(name, call, needle):
    try:
        call()
    except pneumo.Error as error:
        message = str(error)
        check(name, needle in message and "\n" not in message, repr(message))
        return
    check(name, False, "no pneumo.Error")


def nchw(array):  # (N,H,W,C) numpy -> (N,C,H,W) float64 torch
    return torch.from_numpy(np.array(array, dtype=np.float64)).permute(0, 3, 1, 2).contiguous()


def torch_network(network, images, slope):
    """The module's graph (node kinds and inputs) run in torch float64 from its parameters."""
    values, leaves = {}, {}

    def parameter(name):
        if name not in leaves:
            array = np.array(network.parameter(name), dtype=np.float64)
            if array.ndim == 4:  # conv weight (K,R,S,C) -> torch (K,C,R,S)
                array = array.transpose(0, 3, 1, 2)
            leaves[name] = torch.tensor(array, requires_grad=name.endswith(("weight", "bias", "gamma", "beta")))
        return leaves[name]

    for name in network.node_names():
        node = network.node(name)
        inputs = [images if source == "images" else values[source] for source in node["inputs"]]
        kind, x = node["kind"], inputs[0]
        if kind == "Conv2d":
            weight = parameter(name + ".weight")
            bias = parameter(name + ".bias") if name + ".bias" in node["parameters"] else None
            y = F.conv2d(x, weight, bias, padding=weight.shape[2] // 2)
        elif kind == "BatchNorm2d":
            y = F.batch_norm(x, None, None, parameter(name + ".gamma"), parameter(name + ".beta"), training=True,
                             eps=1e-3)
        elif kind == "LeakyReLU":
            y = F.leaky_relu(x, slope)
        elif kind == "MaxPool2d":
            y = F.max_pool2d(x, 2)
        elif kind == "Add":
            y = inputs[0] + inputs[1]
        elif kind == "Sigmoid":
            y = torch.sigmoid(x)
        elif kind == "Upsample":
            y = F.interpolate(x, scale_factor=node["image_shape"][1] // x.shape[2], mode="nearest")
        else:
            raise AssertionError("unexpected layer kind " + kind)
        y.retain_grad()
        values[name] = y
    return values, leaves


# ---- the network against torch autograd ----------------------------------------------------------
SIZE, N = 32, 3
network = pneumo.Network(size=SIZE, channels=4, blocks=1, depth=2, seed=7, conv_algorithms="direct,gemm")
rng = np.random.default_rng(1)
images = rng.random((N, SIZE, SIZE, 1), dtype=np.float32)
probabilities = network.forward(images, training=True)
check("forward gives (N,S,S,1) float32", probabilities.shape == (N, SIZE, SIZE, 1) and probabilities.dtype == np.float32)
dy = rng.standard_normal((N, SIZE, SIZE, 1)).astype(np.float32)
network.zero_gradients()
dimages = network.backward(dy, input_gradient=True)

torch_images = nchw(images).requires_grad_(True)
values, leaves = torch_network(network, torch_images, 0.0)
(values["head.upsample"] * nchw(dy)).sum().backward()
forward_error = np.abs(probabilities - values["head.upsample"].detach().permute(0, 2, 3, 1).numpy()).max()
check("network forward = torch", forward_error < 1e-5, "max error %.3g" % forward_error)
for name in ("conv0.weight", "down1.conv.weight", "block2_1.bn1.gamma", "block1_1.conv2.weight", "head.conv.bias"):
    mine = np.array(network.parameter_gradient(name), dtype=np.float64)
    theirs = leaves[name].grad.numpy()
    if mine.ndim == 4:
        theirs = theirs.transpose(0, 2, 3, 1)
    error = np.abs(mine - theirs).max() / max(1e-12, np.abs(theirs).max())
    check("gradient of %s = torch" % name, error < 1e-4, "relative error %.3g" % error)
for name in ("block1_1.relu1", "down2.pool", "head.bn"):
    mine = network.read_gradient(name)
    theirs = values[name].grad.permute(0, 2, 3, 1).numpy()
    error = np.abs(mine - theirs).max() / max(1e-12, np.abs(theirs).max())
    check("d loss / d %s = torch" % name, error < 1e-4, "relative error %.3g" % error)
    output_error = np.abs(network.read_output(name) - values[name].detach().permute(0, 2, 3, 1).numpy()).max()
    check("output of %s = torch" % name, output_error < 1e-4, "max error %.3g" % output_error)
theirs = torch_images.grad.permute(0, 2, 3, 1).numpy()
input_error = np.abs(dimages - theirs).max() / np.abs(theirs).max()
check("d loss / d images = torch", input_error < 1e-4, "relative error %.3g" % input_error)

# ---- bf16 convolutions (layers/precision.md) -------------------------------------------------------
check("a network starts in fp32", network.precision == "fp32")
fp32_probabilities = network.forward(images, training=True).copy()  # forward returns a view of the output
network.precision = "bf16"
difference = np.abs(network.forward(images, training=True) - fp32_probabilities).max()
check("bf16 forward differs from fp32 by bf16 rounding (0 < max difference < 2e-2)", 0 < difference < 2e-2,
      "max difference %.3g" % difference)
network.precision = "fp32"
check("back to fp32 gives the fp32 forward bit for bit",
      np.array_equal(network.forward(images, training=True), fp32_probabilities))
raises("an unknown precision is a pneumo.Error", lambda: setattr(network, "precision", "fp16"), "expected fp32 or bf16")

# ---- without copies, and clear errors otherwise --------------------------------------------------
weight = network.parameter("conv0.weight")
check("a parameter is a view of the engine's memory", weight.base is not None and weight.flags.writeable)
saved = weight.copy()
weight[...] = 0
check("writing through the view changes the network", not network.parameter("conv0.weight").any())
weight[...] = saved
check("node outputs are read-only views", not network.read_output("conv0").flags.writeable)
raises("float64 images", lambda: network.forward(images.astype(np.float64)), "expected a float32 array, got float64")
raises("strided images", lambda: network.forward(np.asfortranarray(np.repeat(images, 2, axis=3))[..., :1]),
       "C-contiguous")
raises("wrong size", lambda: network.forward(np.zeros((1, 16, 16, 1), np.float32)), "images: expected shape (1,32,32,1)")
raises("wrong rank", lambda: network.forward(np.zeros((32, 32), np.float32)), "expected 4 dimensions (N,H,W,C)")
raises("unknown parameter", lambda: network.parameter("conv9.weight"), "conv9.weight")
raises("unknown node", lambda: network.read_output("conv9"), "no node 'conv9'")
raises("state has no gradient", lambda: network.parameter_gradient("down1.bn.running_mean"), "not trained")
raises("a bad configuration", lambda: pneumo.Network(size=30, depth=2), "")
in_place = pneumo.Network(size=SIZE, channels=4, blocks=1, depth=2, seed=7, in_place=True)
in_place.forward(images, training=True)
raises("in place outputs are refused", lambda: in_place.read_output("down1.bn"), "overwritten in place by down1.relu")
check("pneumo.Error is a RuntimeError", issubclass(pneumo.Error, RuntimeError))

# ---- one training step against the notebook's formulas ------------------------------------------
masks = (rng.random((N, SIZE, SIZE, 1)) > 0.7).astype(np.float32)
adam = pneumo.Adam()
before = {name: np.array(network.parameter(name)) for name in network.parameter_names()}
p = torch.tensor(network.forward(images, training=True), dtype=torch.float64)  # same batch statistics as the step
step = pneumo.train_step(network, adam, images, masks, 1e-3)
y = torch.tensor(masks, dtype=torch.float64)
eps = 1e-7
clipped = p.clamp(eps, 1 - eps)
bce = -(y * torch.log(clipped) + (1 - y) * torch.log(1 - clipped)).mean()
intersection = (y * p).sum()
iou_loss = 1 - (intersection + 1) / (y.sum() + p.sum() - intersection + 1)
loss = 0.5 * bce + 0.5 * iou_loss
check("the step's loss = the notebook's formula", abs(step["loss"] - loss.item()) < 1e-6,
      "%.9f vs %.9f" % (step["loss"], loss.item()))
name = "block1_1.conv1.weight"
g = np.array(network.parameter_gradient(name), np.float64)
# The moments' factors (1 - beta) as the engine computes them, from float32 betas (as Keras's).
m = (1 - float(np.float32(0.9))) * g
v = (1 - float(np.float32(0.999))) * g * g
lr_t = 1e-3 * math.sqrt(1 - 0.999) / (1 - 0.9)
expected = before[name] - lr_t * m / (np.sqrt(v) + 1e-7)
adam_error = np.abs(np.array(network.parameter(name)) - expected).max()
check("Adam's first update = its formula", adam_error < 1e-7 and adam.step_count == 1, "max error %.3g" % adam_error)
moment_error = max(np.abs(network.adam_m(name) - m).max() / np.abs(m).max(),
                   np.abs(network.adam_v(name) - v).max() / np.abs(v).max())
check("Adam moments by name", moment_error < 1e-6, "relative error %.3g" % moment_error)

# ---- checkpoints -------------------------------------------------------------------------------
path = os.path.join(work, "step.safetensors")
network.save(path, step=adam.step_count, epoch=0, metadata={"note": "test_module"})
info = pneumo.read_checkpoint_info(path)
check("checkpoint info", info["step"] == 1 and info["metadata"]["note"] == "test_module" and
      info["metadata"]["network.channels"] == "4")
loaded = pneumo.load_network(path)
check("load_network rebuilds and loads", all((loaded.parameter(n) == network.parameter(n)).all()
                                             for n in network.parameter_names()))
raises("a checkpoint of another network", lambda: pneumo.Network(size=SIZE, channels=8, blocks=1, depth=2).load(path),
       path)

# ---- DICOM, post-processing, metric --------------------------------------------------------------
try:
    import pydicom
    source = os.path.join(os.path.dirname(__file__), "..", "fixtures", "data", "dicom")
    dicom = os.path.join(source, "u8_explicit_le.dcm")
    pixels = pneumo.read_dicom(dicom)
    reference = pydicom.dcmread(dicom).pixel_array.astype(np.float64)
    bits = pydicom.dcmread(dicom).BitsStored
    error = np.abs(pixels - reference / (2 ** bits - 1)).max()
    check("read_dicom = pydicom / (2^bits - 1)", pixels.dtype == np.float32 and error < 1e-6,
          "max error %.3g" % error)
except ImportError:
    print("skipped: read_dicom against pydicom (no python3-pydicom)")
raises("read_dicom of a missing file", lambda: pneumo.read_dicom(os.path.join(work, "none.dcm")), "none.dcm")
square = np.zeros((8, 8), np.float32)
square[2:4, 4:8] = 0.8
boxes = pneumo.boxes_from_probability_map(square, 0.5, 8, 8)
check("a bright rectangle is one box", len(boxes) == 1 and boxes[0][1:] == (4, 2, 4, 2) and
      abs(boxes[0][0] - 0.8) < 1e-6, str(boxes))
# IoU 0.5 with the truth: a true positive at thresholds 0.40, 0.45, 0.50 (3 of 8), else FP + FN.
truth = [(0, 0, 10, 10)]
score = pneumo.score_image(truth, [(0.9, 0, 0, 10, 5)])
check("score_image at IoU 0.5", abs(score - (3 + 5 * 0) / 8) < 1e-12, repr(score))
check("an image with nothing is skipped", pneumo.score_image([], []) is None)
check("box_iou", abs(pneumo.box_iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-12)

print("\n%d check(s) failed: %s" % (len(failures), ", ".join(failures)) if failures else "\nall checks passed")
sys.exit(1 if failures else 0)
