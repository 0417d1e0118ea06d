#!/usr/bin/python3
"""The notebook's network in PyTorch, timed like benchmarks/bench_network.cpp, and the ratio of
the engine's throughput to PyTorch's.

  /usr/bin/python3 benchmarks/pytorch_network.py [--device cpu|cuda] [--size 256] [--channels 32]
      [--blocks 2] [--depth 4] [--batch 8] [--repeats 3] [--threads 2] [--no-channels-last]
      [--bench build/bench_network | --bench-output FILE] [--layers] [--no-constant-weights] [--no-frozen]
      [--no-bf16] [--precision fp32|bf16]

Times (median of --repeats after one warm-up) an inference forward (eval mode, no_grad) and a
training step (training forward, the notebook loss 0.5*BCE + 0.5*IoU, backward, Adam with
Keras's epsilon 1e-7), prints images/s; then, with --bench, runs bench_network on the same
configuration, parses its "result:" line and prints both throughputs and ours/PyTorch. With
--bench-output FILE it reads that line from an earlier bench_network run instead (gpu-check.sh
times each configuration once).

Inference, like for like: bench_network infers with constant weights (its convolutions prepare
their filters once, as `pneumo predict` runs; --no-constant-weights passes that flag on), so on
the CPU PyTorch's own inference path with weights fixed ahead is timed too: the traced model
through torch.jit.optimize_for_inference (frozen: batch norms folded where they can be, filters
pre-packed for oneDNN). The ratio is taken against the faster of eager and frozen (--no-frozen:
eager only).

bfloat16: PyTorch's own mixed precision, torch.autocast(dtype=torch.bfloat16) (convolutions in
bf16, fp32 weights and optimizer), is timed too for training and inference (--no-bf16: not), and
the ratio is taken against PyTorch's fastest configuration of fp32 eager, fp32 frozen and bf16
autocast, per direction. --precision is bench_network's (pneumo's convolutions in fp32 or bf16,
layers/precision.md).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Network(nn.Module):
    """create_network(input_size, channels, n_blocks, depth) of the notebook, NCHW."""

    def __init__(self, channels, n_blocks, depth, slope=0.0):
        super().__init__()
        self.slope, self.depth = slope, depth

        def bn(c):
            return nn.BatchNorm2d(c, eps=1e-3, momentum=0.1)

        self.conv0 = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.stages = nn.ModuleList()
        for _ in range(depth):
            stage = nn.Module()
            stage.bn = bn(channels)
            stage.conv = nn.Conv2d(channels, channels * 2, 1, bias=False)
            channels *= 2
            stage.blocks = nn.ModuleList()
            for _ in range(n_blocks):
                block = nn.Module()
                block.bn1, block.conv1 = bn(channels), nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                block.bn2, block.conv2 = bn(channels), nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                stage.blocks.append(block)
            self.stages.append(stage)
        self.head_bn = bn(channels)
        self.head_conv = nn.Conv2d(channels, 1, 1, bias=True)

    def forward(self, x):
        act = lambda t: F.leaky_relu(t, self.slope)
        x = self.conv0(x)
        for stage in self.stages:
            x = F.max_pool2d(stage.conv(act(stage.bn(x))), 2)
            for block in stage.blocks:
                y = block.conv1(act(block.bn1(x)))
                x = block.conv2(act(block.bn2(y))) + x
        x = torch.sigmoid(self.head_conv(act(self.head_bn(x))))
        return F.interpolate(x, scale_factor=2 ** self.depth, mode="nearest")


def notebook_loss(p, y):
    clipped = p.clamp(1e-7, 1 - 1e-7)
    bce = -(y * torch.log(clipped) + (1 - y) * torch.log(1 - clipped)).mean()
    intersection = (y * p).sum()
    return 0.5 * bce + 0.5 * (1 - (intersection + 1) / (y.sum() + p.sum() - intersection + 1))


def median_seconds(function, repeats, device):
    def run():
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start
    run()  # warm-up (cuDNN algorithm choice, allocator)
    return statistics.median(run() for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--bench", help="path of bench_network to run on the same configuration")
    parser.add_argument("--bench-timeout", type=int, default=900)
    parser.add_argument("--bench-output", help="instead of running --bench, compare with the output of an "
                        "earlier bench_network run of the same configuration (its 'result:' line; batch and "
                        "device must match)")
    parser.add_argument("--layers", action="store_true", help="pass --layers to bench_network")
    parser.add_argument("--no-constant-weights", action="store_true",
                        help="pass --no-constant-weights to bench_network (filters prepared every forward)")
    parser.add_argument("--no-frozen", action="store_true",
                        help="CPU: do not also time torch.jit.optimize_for_inference")
    parser.add_argument("--no-bf16", action="store_true", help="do not time torch.autocast(dtype=torch.bfloat16)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="pneumo's precision (bench_network --precision)")
    parser.add_argument("--tf32", choices=["on", "off"], default="off",
                        help="CUDA: TF32 tensor cores in cuDNN and cuBLAS, on both sides (PyTorch's cuDNN "
                             "default is on; pneumo's is off). Compare like with like.")
    args = parser.parse_args()

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    elif not torch.cuda.is_available():
        sys.exit("pytorch_network.py: --device cuda but torch.cuda.is_available() is False")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
    torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
    memory_format = torch.contiguous_format if args.no_channels_last else torch.channels_last
    torch.manual_seed(0)
    model = Network(args.channels, args.blocks, args.depth).to(args.device, memory_format=memory_format)
    images = torch.rand(args.batch, 1, args.size, args.size, device=args.device).to(memory_format=memory_format)
    masks = (torch.rand(args.batch, 1, args.size, args.size, device=args.device) > 0.9).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def train_step():
        optimizer.zero_grad(set_to_none=False)
        loss = notebook_loss(model(images), masks)
        loss.backward()
        optimizer.step()

    def inference():
        with torch.no_grad():
            model(images)

    model.train()
    train_seconds = median_seconds(train_step, args.repeats, args.device)
    model.eval()
    inference_seconds = median_seconds(inference, args.repeats, args.device)
    inference_path = "eager"
    frozen_text = ""
    if args.device == "cpu" and not args.no_frozen:
        try:
            with torch.no_grad():
                frozen = torch.jit.optimize_for_inference(torch.jit.trace(model, images))

            def frozen_inference():
                with torch.no_grad():
                    frozen(images)

            frozen_seconds = median_seconds(frozen_inference, args.repeats, args.device)
            frozen_text = f"{frozen_seconds * 1e3:10.1f} ms  {args.batch / frozen_seconds:9.2f} images/s"
            if frozen_seconds < inference_seconds:
                inference_seconds, inference_path = frozen_seconds, "frozen"
        except Exception as error:  # reported, never fatal: eager stands
            frozen_text = f"unavailable ({str(error).splitlines()[0][:120]})"
    train_path = "fp32 eager"
    inference_path = {"eager": "fp32 eager", "frozen": "fp32 frozen"}[inference_path]
    bf16_text = ""
    if not args.no_bf16:
        try:
            def bf16_train_step():
                optimizer.zero_grad(set_to_none=False)
                with torch.autocast(args.device, dtype=torch.bfloat16):
                    probabilities = model(images)
                notebook_loss(probabilities.float(), masks).backward()
                optimizer.step()

            def bf16_inference():
                with torch.no_grad(), torch.autocast(args.device, dtype=torch.bfloat16):
                    model(images)

            model.train()
            bf16_train_seconds = median_seconds(bf16_train_step, args.repeats, args.device)
            model.eval()
            bf16_inference_seconds = median_seconds(bf16_inference, args.repeats, args.device)
            bf16_text = (f"  pytorch bf16 autocast training step {bf16_train_seconds * 1e3:10.1f} ms  "
                         f"{args.batch / bf16_train_seconds:9.2f} images/s\n"
                         f"  pytorch bf16 autocast inference     {bf16_inference_seconds * 1e3:10.1f} ms  "
                         f"{args.batch / bf16_inference_seconds:9.2f} images/s")
            if bf16_train_seconds < train_seconds:
                train_seconds, train_path = bf16_train_seconds, "bf16 autocast"
            if bf16_inference_seconds < inference_seconds:
                inference_seconds, inference_path = bf16_inference_seconds, "bf16 autocast"
        except Exception as error:  # reported, never fatal: fp32 stands
            bf16_text = f"  pytorch bf16 autocast unavailable ({str(error).splitlines()[0][:120]})"
    parameters = sum(p.numel() for p in model.parameters())
    where = (f"cpu, {torch.get_num_threads()} threads" if args.device == "cpu"
             else torch.cuda.get_device_name(0))
    print(f"PyTorch {torch.__version__} ({where}), {'channels_last' if not args.no_channels_last else 'NCHW'}, "
          f"size {args.size} channels {args.channels} blocks {args.blocks} depth {args.depth} "
          f"batch {args.batch}, {parameters} parameters, median of {args.repeats}, tf32 {args.tf32}")
    torch_train = args.batch / train_seconds
    torch_inference = args.batch / inference_seconds
    print(f"  pytorch training step   {train_seconds * 1e3:10.1f} ms  {torch_train:9.2f} images/s"
          f"   (fastest: {train_path})")
    print(f"  pytorch inference       {inference_seconds * 1e3:10.1f} ms  {torch_inference:9.2f} images/s"
          f"   (fastest: {inference_path})")
    if frozen_text:
        print(f"  pytorch frozen inference {frozen_text}   (torch.jit.optimize_for_inference)")
    if bf16_text:
        print(bf16_text)

    if args.bench_output:
        try:
            with open(args.bench_output) as file:
                output = file.read()
        except OSError as error:
            sys.exit(f"pytorch_network.py: --bench-output: {error}")
        compare(args, output, args.bench_output, torch_train, torch_inference)
        return
    if not args.bench:
        return
    command = [args.bench, "--device", args.device, "--size", str(args.size), "--channels",
               str(args.channels), "--blocks", str(args.blocks), "--depth", str(args.depth),
               "--batch", str(args.batch), "--repeats", str(args.repeats), "--tf32", args.tf32,
               "--precision", args.precision] + \
        (["--layers"] if args.layers else []) + (["--no-constant-weights"] if args.no_constant_weights else [])
    print("running: " + " ".join(command), flush=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.bench_timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        sys.exit(f"pytorch_network.py: could not run {args.bench}: {error}")
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        sys.exit(f"pytorch_network.py: {args.bench} exited with status {result.returncode}")
    compare(args, result.stdout, args.bench, torch_train, torch_inference)


def compare(args, output, source, torch_train, torch_inference):
    """Prints pneumo's images/s from bench_network's output beside PyTorch's, with the ratios."""
    match = re.search(r"^result: device=(\S+) .*batch=(\d+) .*inference_images_per_s=([0-9.eE+-]+) "
                      r".*train_images_per_s=([0-9.eE+-]+)", output, re.MULTILINE)
    if not match:
        sys.exit(f"pytorch_network.py: no 'result:' line in the output of {source}")
    if match.group(1) != args.device or int(match.group(2)) != args.batch:
        sys.exit(f"pytorch_network.py: {source} measured device {match.group(1)} batch {match.group(2)}, "
                 f"not device {args.device} batch {args.batch}")
    ours_inference, ours_train = float(match.group(3)), float(match.group(4))
    print(f"comparison ({args.device}, batch {args.batch}, tf32 {args.tf32} on both sides; pneumo {args.precision}, "
          f"PyTorch its fastest configuration per direction):")
    print(f"  training  images/s  pneumo {ours_train:9.2f}  pytorch {torch_train:9.2f}  "
          f"ratio pneumo/pytorch {ours_train / torch_train:6.2f}")
    print(f"  inference images/s  pneumo {ours_inference:9.2f}  pytorch {torch_inference:9.2f}  "
          f"ratio pneumo/pytorch {ours_inference / torch_inference:6.2f}")


if __name__ == "__main__":
    main()
