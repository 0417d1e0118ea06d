#!/usr/bin/python3
"""layers/loss.md, runnable: the gradient of 0.5*BCE + 0.5*IoU loss, why one pixel's gradient
depends on every other pixel of the batch, and the IoU term's Hessian by class of pixel.

Run: /usr/bin/python3 layers/check_loss.py

Exercises
 1. Predict the sign of d iou_loss / d p_j for a background pixel (y_j = 0) and for a pneumonia
    pixel (y_j = 1). Check with `page` below.
 2. The coupling: set one far-away background pixel's p to 0.99 and watch the IoU gradient of a
    pneumonia pixel in ANOTHER image change (printed below). BCE alone has no such coupling.
"""
import importlib
import torch

torch.manual_seed(0)
EPS = 1e-7
p = torch.rand(2, 8, 8, 1, dtype=torch.float64).requires_grad_(True)
y = (torch.rand(2, 8, 8, 1, dtype=torch.float64) > 0.7).double()


def notebook_loss(p, y):
    # iou_bce_loss of the notebook: 0.5 * keras BCE + 0.5 * iou_loss over the whole batch
    pc = p.clamp(EPS, 1 - EPS)
    bce = -(y * torch.log(pc) + (1 - y) * torch.log(1 - pc)).mean()
    intersection = (y * p).sum()
    score = (intersection + 1) / (y.sum() + p.sum() - intersection + 1)
    return 0.5 * bce + 0.5 * (1 - score)


notebook_loss(p, y).backward()
pd = p.detach()
M = pd.numel()
I = (y * pd).sum()
D = y.sum() + pd.sum() - I + 1
page = 0.5 * (pd - y) / (pd * (1 - pd)) / M + 0.5 * ((I + 1) * (1 - y) - y * D) / D ** 2
error = (page - p.grad).abs().max().item()
print("iou_bce_loss: max |dp_page - dp_autograd| = %.3g" % error)
assert error < 1e-14, error

# Coupling: the IoU term's gradient at pixel j contains I and D, sums over ALL pixels.
j, k = (0, 0, 0, 0), (1, 7, 7, 0)  # a pixel of image 0, a pixel of image 1
y2 = y.clone()
y2[j], y2[k] = 1.0, 0.0


def iou_gradient_at_j(p_value_at_k):
    q = pd.clone()
    q[k] = p_value_at_k
    q.requires_grad_(True)
    (0.5 * (1 - ((y2 * q).sum() + 1) / (y2.sum() + q.sum() - (y2 * q).sum() + 1))).backward()
    return q.grad[j].item()


before, after = iou_gradient_at_j(0.01), iou_gradient_at_j(0.99)
print("d iou_loss / d p_j (image 0) with p_k (image 1) = 0.01: %.6g, = 0.99: %.6g" % (before, after))
assert before != after

# The IoU term's Hessian by class of pixel (torch.autograd.functional.hessian on a small batch):
# D does not contain any pneumonia pixel's p (dD/dp_j = 1 - y_j = 0), and the IoU is linear in
# I, so the pneumonia x pneumonia block is exactly 0; a pneumonia x background entry is 1/(2 D^2)
# and a background x background entry -(I + 1)/D^3 (the 0.5 of the loss included), every entry
# of a block the same. BCE adds its diagonal.
q = torch.rand(12, dtype=torch.float64)
yq = (torch.arange(12) % 3 == 0).double()  # 4 pneumonia pixels, 8 background


def iou_half(v):
    i = (yq * v).sum()
    return 0.5 * (1 - (i + 1) / (yq.sum() + v.sum() - i + 1))


H = torch.autograd.functional.hessian(iou_half, q)
Iq = (yq * q).sum()
Dq = yq.sum() + q.sum() - Iq + 1
pneumonia, background = yq.bool(), ~yq.bool()
blocks = {"pneumonia_pneumonia": H[pneumonia][:, pneumonia], "pneumonia_background": H[pneumonia][:, background],
          "background_background": H[background][:, background]}
derived = {"pneumonia_pneumonia": 0.0, "pneumonia_background": 0.5 / Dq ** 2,
           "background_background": -(Iq + 1) / Dq ** 3}
for name, block in blocks.items():
    print("iou_hessian_%s_max_abs = %.3g   # derived %.3g" % (name, block.abs().max().item(), abs(float(derived[name]))))
    assert (block - derived[name]).abs().max().item() < 1e-15, name
assert blocks["pneumonia_pneumonia"].abs().max().item() == 0.0

# The exercises' answers (the page's "Solutions").
# 1. The IoU term's gradient: 0.5 (I + 1) / D^2 > 0 on background, -0.5 / D < 0 on pneumonia,
# the same for every pixel of a class.
iou_page = 0.5 * ((I + 1) * (1 - y) - y * D) / D ** 2
print("iou_gradient_background = %.3g  # 0.5 (I + 1) / D^2, every background pixel" % (0.5 * (I + 1) / D ** 2).item())
print("iou_gradient_pneumonia = %.3g  # -0.5 / D, every pneumonia pixel" % (-0.5 / D).item())
assert (iou_page[y == 0] > 0).all() and (iou_page[y == 1] < 0).all()
# 2. The coupling, in numbers: the relative change of the pneumonia pixel's IoU gradient, and
# BCE's gradient at j, which reads only p_j and y_j (and the pixel count M).
print("iou_gradient_change_percent = %.2f" % (100 * abs(after - before) / abs(before)))


def bce_gradient_at_j(p_value_at_k):
    q = pd.clone()
    q[k] = p_value_at_k
    q.requires_grad_(True)
    qc = q.clamp(EPS, 1 - EPS)
    (-(y2 * torch.log(qc) + (1 - y2) * torch.log(1 - qc)).mean()).backward()
    return q.grad[j].item()


print("bce_gradient_change = %.1f" % abs(bce_gradient_at_j(0.99) - bce_gradient_at_j(0.01)))
assert bce_gradient_at_j(0.99) == bce_gradient_at_j(0.01)

# ---- The engine's own iou_bce_loss (layers/loss.h), through the Python module (apps/python/python.md) ----------
# The page's formulas above are the explanation; this runs the code the page explains on the same
# kind of inputs and holds it against autograd (skipped, with a line saying so, without the module).
engine = importlib.import_module("engine_layer_check")  # layers/engine_layer_check.py
pneumo = engine.load_pneumo()
if pneumo is not None:
    probabilities = p.detach().float().numpy()  # (N,H,W,1), the float32 values the engine sees
    leaf = torch.tensor(probabilities, dtype=torch.float64, requires_grad=True)
    expected = notebook_loss(leaf, y)
    expected.backward()
    values, gradient = pneumo.iou_bce_loss(probabilities, y.float().numpy())
    errors = {"loss": abs(values["loss"] - expected.item()) / expected.item(),
              "dp": engine.relative_error(torch.from_numpy(gradient).double(), leaf.grad)}
    print("engine iou_bce_loss through pneumo vs autograd, max relative error: %s"
          % ", ".join("%s %.2g" % item for item in errors.items()))
    assert max(errors.values()) < 1e-5, errors
