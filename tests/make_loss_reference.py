#!/usr/bin/python3
"""Writes tests/fixtures/loss_reference.txt: the notebook's iou_bce_loss, its gradient and the
accuracy / mean IoU metrics, computed by PyTorch (float64 autograd) on small float32 inputs.
An independent reference for tests/test_loss.cpp. Run: /usr/bin/python3 tests/make_loss_reference.py
"""
import os

import numpy as np
import torch

EPSILON = np.float32(1e-7)  # Keras K.epsilon(); the clip bounds are float32 as in Keras
LOW = float(EPSILON)
HIGH = float(np.float32(1) - EPSILON)


def reference(p32, y32):
    p = torch.tensor(p32, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(y32, dtype=torch.float64)
    clipped = torch.clamp(p, LOW, HIGH)  # gradient passes where LOW <= p <= HIGH, like tf
    bce = torch.mean(-(y * torch.log(clipped) + (1 - y) * torch.log(1 - clipped)))
    intersection = torch.sum(y * p)
    iou_loss = 1 - (intersection + 1) / (torch.sum(y) + torch.sum(p) - intersection + 1)
    loss = 0.5 * bce + 0.5 * iou_loss
    loss.backward()
    rounded = torch.round(p.detach())  # half to even, like tf.round: 0.5 -> 0
    accuracy = torch.mean((y == rounded).double())
    image_intersection = torch.sum(y * rounded, dim=(1, 2, 3))
    image_union = torch.sum(y, dim=(1, 2, 3)) + torch.sum(rounded, dim=(1, 2, 3))
    mean_iou = torch.mean((image_intersection + 1) / (image_union - image_intersection + 1))
    return dict(loss=loss.item(), bce=bce.item(), iou_loss=iou_loss.item(),
                gradient=p.grad.numpy().reshape(-1), accuracy=accuracy.item(),
                mean_iou=mean_iou.item())


def cases():
    generator = np.random.default_rng(20240607)
    shape = (2, 4, 5, 1)
    p = generator.uniform(0.0, 1.0, size=shape).astype(np.float32)
    flat = p.reshape(-1)
    # Clip edges and the rounding tie: exactly 0 and 1, below/at the lower bound, at the upper
    # bound, and 0.5.
    flat[:7] = [0.0, 1.0, 5e-8, EPSILON, np.float32(1) - EPSILON, 0.5, 0.5]
    y = (generator.uniform(size=shape) < 0.4).astype(np.float32)
    y.reshape(-1)[:7] = [1, 0, 1, 0, 1, 0, 1]
    yield "mixed", p, y
    shape = (3, 3, 4, 1)
    p = generator.uniform(0.0, 0.3, size=shape).astype(np.float32)
    y = np.zeros(shape, dtype=np.float32)  # most training images have no box
    y[1, 1:3, 1:3, 0] = 1
    yield "mostly_negative", p, y


def main():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "loss_reference.txt")
    lines = ["# Written by tests/make_loss_reference.py (PyTorch float64 autograd); do not edit."]
    for name, p, y in cases():
        values = reference(p, y)
        lines.append("case " + name)
        lines.append("shape " + " ".join(str(d) for d in p.shape))
        lines.append("predictions " + " ".join("%.9g" % v for v in p.reshape(-1)))
        lines.append("targets " + " ".join("%.9g" % v for v in y.reshape(-1)))
        for key in ("loss", "bce", "iou_loss", "accuracy", "mean_iou"):
            lines.append("%s %.17g" % (key, values[key]))
        lines.append("gradient " + " ".join("%.17g" % v for v in values["gradient"]))
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
