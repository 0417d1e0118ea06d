"""The engine's own layers, through the Python module `pneumo` (apps/python/python.md), against
torch autograd: the part of the teaching pages' check scripts (layers/check_*.py) that runs the
code the page explains, beside the page's plain reimplementation.

When the module is not importable (not built, or PYTHONPATH does not reach it: CTest points it at
build/python), each check prints `skipped: pneumo module not built` and the script goes on.
"""
import numpy as np
import torch


def load_pneumo():
    try:
        import pneumo
    except ImportError as error:
        print("skipped: pneumo module not built (%s; build the pneumo_python target, then "
              "PYTHONPATH=build/python)" % error)
        return None
    return pneumo


def to_engine(tensor, nchw):
    """A torch tensor (N,C,H,W when nchw, else already N,H,W,C) -> float32 NHWC numpy array."""
    tensor = tensor.detach()
    if nchw:
        tensor = tensor.permute(0, 2, 3, 1)
    return np.ascontiguousarray(tensor.numpy(), dtype=np.float32)


def from_engine(array, nchw):
    """A float32 NHWC numpy array -> float64 torch tensor in torch's layout."""
    tensor = torch.from_numpy(np.array(array, dtype=np.float64))
    return tensor.permute(0, 3, 1, 2).contiguous() if nchw else tensor


def relative_error(mine, theirs):
    return (mine - theirs).abs().max().item() / max(theirs.abs().max().item(), 1e-30)


def check_layer(title, make_layer, torch_forward, inputs, nchw=True, parameters=(), training=False,
                tolerance=1e-5):
    """Runs make_layer(pneumo)'s forward and backward on `inputs` (torch float64, torch's layout,
    rounded to float32 for both sides) and torch_forward under autograd; asserts output, input
    gradients and parameter gradients agree to `tolerance` relative to the largest autograd value.
    parameters: (engine name, torch leaf, engine_from_torch) triples; the leaf's value is written
    into the engine layer first, and its gradient compared."""
    pneumo = load_pneumo()
    if pneumo is None:
        return
    layer = make_layer(pneumo)
    leaves = [torch.tensor(to_engine(x, nchw), dtype=torch.float64) for x in inputs]
    leaves = [(x.permute(0, 3, 1, 2) if nchw else x).contiguous().requires_grad_(True) for x in leaves]
    for name, leaf, engine_from_torch in parameters:
        layer.parameter(name)[...] = engine_from_torch(leaf.detach()).numpy()
        leaf.grad = None
    y = torch_forward(*leaves)
    generator = torch.Generator().manual_seed(1)
    dy = torch.randn(y.shape, dtype=torch.float64, generator=generator)
    dy = from_engine(to_engine(dy, nchw), nchw)  # the float32 values the engine sees
    y.backward(dy)
    engine_y = layer.forward(*[to_engine(x, nchw) for x in leaves], training=training)
    engine_dx = layer.backward(to_engine(dy, nchw))
    if not isinstance(engine_dx, tuple):
        engine_dx = (engine_dx,)
    errors = {"y": relative_error(from_engine(engine_y, nchw), y.detach())}
    for i, (leaf, dx) in enumerate(zip(leaves, engine_dx)):
        errors["dx" if len(leaves) == 1 else "dx%d" % (i + 1)] = relative_error(from_engine(dx, nchw), leaf.grad)
    for name, leaf, engine_from_torch in parameters:
        mine = torch.from_numpy(np.array(layer.parameter_gradient(name), dtype=np.float64))
        errors["d" + name] = relative_error(mine, engine_from_torch(leaf.grad))
    print("engine %s through pneumo vs autograd, max relative error: %s" % (
        title, ", ".join("%s %.2g" % (name, error) for name, error in errors.items())))
    for name, error in errors.items():
        assert error < tolerance, (title, name, error)
