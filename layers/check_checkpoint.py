#!/usr/bin/python3
"""layers/checkpoint.md, runnable: a pneumo checkpoint loaded into a plain PyTorch nn.Module.

Run: /usr/bin/python3 layers/check_checkpoint.py [RUN/best.safetensors]
Without an argument it uses tests/fixtures/golden_network.safetensors (the trained weights
"final.*" of the PyTorch golden test, under the engine's names) and checks the module's output
against the fixture's inference output. With a checkpoint written by `pneumo train` it reads the
network configuration from the checkpoint's metadata and runs the module on a random image.

Exercises
 1. Print model.state_dict().keys() beside the checkpoint's names: which pneumo names map to
    PyTorch's `weight`/`bias` of BatchNorm2d, and which layout change do conv weights need?
 2. Feed the module a batch with train() instead of eval(): why does the output change, and
    which two buffers does that forward modify?
"""
import json
import os
import sys

import numpy as np
import torch


def read_safetensors(path):
    """The numpy-only reader of layers/checkpoint.md: {name: array}, metadata."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {name: np.frombuffer(data[b:e], {"F32": "<f4", "I64": "<i8"}[t["dtype"]]).reshape(t["shape"])
               for name, t in header.items() for b, e in [t["data_offsets"]]}
    return tensors, meta


def page_snippet():
    """The nn.Module snippet of layers/checkpoint.md (the fenced block after the 'tested by' mark),
    executed as the page shows it: the page is what this check tests."""
    page = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint.md")).read()
    block = page.split("<!-- tested by layers/check_checkpoint.py -->", 1)[1]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(code, namespace)
    return namespace


if __name__ == "__main__":
    snippet = page_snippet()
    PneumoNet, load_pneumo = snippet["PneumoNet"], snippet["load_pneumo"]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if len(sys.argv) > 1:
        tensors, meta = read_safetensors(sys.argv[1])
        model = PneumoNet(int(meta["network.channels"]), int(meta["network.n_blocks"]),
                          int(meta["network.depth"]), float(meta["network.leaky_slope"]))
        load_pneumo(model, tensors)
        size = int(meta["network.input_size"])
        with torch.no_grad():
            out = model.eval()(torch.rand(1, 1, size, size))
        print("%s: %d tensors loaded, output %s in [%.3g, %.3g]"
              % (sys.argv[1], len(model.state_dict()), tuple(out.shape), out.min(), out.max()))
        sys.exit(0)
    fixture, meta = read_safetensors(os.path.join(root, "tests", "fixtures", "golden_network.safetensors"))
    config = dict(item.split("=") for item in meta["config"].split())
    model = PneumoNet(int(config["channels"]), int(config["n_blocks"]), int(config["depth"]),
                      float(config["leaky_slope"])).double()
    load_pneumo(model, {name[len("final."):]: value for name, value in fixture.items()
                        if name.startswith("final.") and name != "final.inference_output"})
    images = torch.from_numpy(np.array(fixture["images"], dtype=np.float64)).permute(0, 3, 1, 2)
    with torch.no_grad():
        probabilities = model.double().eval()(images).permute(0, 2, 3, 1)  # back to NHWC
    expected = torch.from_numpy(np.array(fixture["final.inference_output"], dtype=np.float64))
    error = (probabilities - expected).abs().max().item()
    print("golden checkpoint in nn.Module: max |p_module - p_fixture| = %.3g" % error)
    assert error < 1e-5, error

    # The exercises' answers (the page's "Solutions").
    # 1. Which names map where: gamma/beta become BatchNorm2d's weight/bias, 4-D conv weights
    # need (K,R,S,C) -> (K,C,R,S).
    names = [name[len("final."):] for name in fixture
             if name.startswith("final.") and name != "final.inference_output" and "/" not in name]
    renamed = [name for name in names if name.endswith((".gamma", ".beta"))]
    permuted = [name for name in names if np.asarray(fixture["final." + name]).ndim == 4]
    print("checkpoint_tensors = %d" % len(names))
    print("renamed_gamma_beta_tensors = %d" % len(renamed))
    print("layout_changed_conv_weights = %d" % len(permuted))
    assert all(name.endswith(".weight") for name in permuted)
    # 2. train(): batch norm normalizes with the batch's statistics and updates its buffers.
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.no_grad():
        trained = model.train()(images).permute(0, 2, 3, 1)
    changed = sorted({key.rsplit(".", 1)[1] for key, value in model.state_dict().items()
                      if not torch.equal(value, before[key])})
    print("train_mode_output_change = %.2g  # max |p_train - p_eval|" % (trained - probabilities).abs().max().item())
    print("buffers changed by a train() forward:", ", ".join(changed))
    assert changed == ["num_batches_tracked", "running_mean", "running_var"], changed
