#!/usr/bin/python3
"""Every distinct convolution of the notebook's network timed in PyTorch (channels_last, the
layout oneDNN prefers), like benchmarks/bench_conv2d.cpp, and the ratio of the engine's time to
PyTorch's per layer.

  /usr/bin/python3 benchmarks/pytorch_conv2d.py [--batch 8] [--repeats 5] [--threads 2]
      [--bench build/bench_conv2d]

Forward: y = conv(x). Backward: x.grad (when bench_conv2d computes it) and weight.grad from one
output gradient. Medians after one warm-up, with GFLOP/s counted as bench_conv2d counts them
(direct-convolution FLOPs). With --bench, runs bench_conv2d --device cpu (every algorithm but
reference) and prints, per layer, pneumo's best algorithm per direction (what `auto` would pick)
beside PyTorch, and the pneumo/PyTorch throughput (above 1 means pneumo is faster).
"""
import argparse
import re
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

# name, size, in, out, kernel, bias, input gradient: the cases of bench_conv2d.cpp.
CASES = [
    ("stem 3x3 1->32 @256", 256, 1, 32, 3, False, False),
    ("down 1x1 32->64 @256", 256, 32, 64, 1, False, True),
    ("res 3x3 64->64 @128", 128, 64, 64, 3, False, True),
    ("down 1x1 64->128 @128", 128, 64, 128, 1, False, True),
    ("res 3x3 128->128 @64", 64, 128, 128, 3, False, True),
    ("down 1x1 128->256 @64", 64, 128, 256, 1, False, True),
    ("res 3x3 256->256 @32", 32, 256, 256, 3, False, True),
    ("down 1x1 256->512 @32", 32, 256, 512, 1, False, True),
    ("res 3x3 512->512 @16", 16, 512, 512, 3, False, True),
    ("head 1x1 512->1 @16", 16, 512, 1, 1, True, True),
]


def median_ms(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bench", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__} (cpu, {args.threads} threads), channels_last, batch {args.batch}, "
          f"median of {args.repeats}")
    ours = {}
    if args.bench:
        text = subprocess.run([args.bench, "--device", "cpu", "--batch", str(args.batch), "--repeats",
                               str(args.repeats), "--threads", str(args.threads), "--algorithms",
                               "gemm,direct,winograd2,winograd4", "--chart", ""],
                              check=True, capture_output=True, text=True).stdout
        best = {}  # (layer, direction) -> fastest ms
        for line in text.splitlines():
            match = re.match(r"^(.*@\d+)\s+(forward|input-gradient|weight-gradient)\s+(\w+)\s+([\d.]+)\s", line)
            if match:
                key = (match.group(1).strip(), match.group(2))
                best[key] = min(best.get(key, float("inf")), float(match.group(4)))
        for (name, direction), ms in best.items():
            forward, backward = ours.get(name, (0.0, 0.0))
            ours[name] = (forward + ms, backward) if direction == "forward" else (forward, backward + ms)
    print(f"{'layer':24s} {'torch fwd':>10s} {'torch bwd':>10s} {'fwd GF/s':>8s}" +
          (f" {'pneumo fwd':>10s} {'pneumo bwd':>10s} {'fwd ratio':>9s} {'bwd ratio':>9s}" if ours else ""))
    total = [0.0, 0.0, 0.0, 0.0]
    for name, size, c_in, c_out, k, bias, input_gradient in CASES:
        x = torch.randn(args.batch, c_in, size, size).to(memory_format=torch.channels_last)
        w = torch.randn(c_out, c_in, k, k).to(memory_format=torch.channels_last) * 0.05
        b = torch.zeros(c_out) if bias else None
        x.requires_grad_(input_gradient)
        w.requires_grad_(True)
        dy = torch.randn(args.batch, c_out, size, size).to(memory_format=torch.channels_last)
        with torch.no_grad():
            forward = median_ms(lambda: F.conv2d(x, w, b, padding=k // 2), args.repeats)
        y = F.conv2d(x, w, b, padding=k // 2)

        def backward():
            inputs = [x, w] if input_gradient else [w]
            torch.autograd.grad(y, inputs, dy, retain_graph=True)

        backward_ms = median_ms(backward, args.repeats)
        flops = 2.0 * args.batch * size * size * c_out * k * k * c_in
        line = f"{name:24s} {forward:10.2f} {backward_ms:10.2f} {flops / forward * 1e-6:8.1f}"
        if name in ours:
            f, bw = ours[name]
            line += f" {f:10.2f} {bw:10.2f} {forward / f:9.2f} {backward_ms / bw:9.2f}"
            total = [total[0] + forward, total[1] + backward_ms, total[2] + f, total[3] + bw]
        print(line)
    if ours:
        print(f"{'all layers (sum)':24s} {total[0]:10.2f} {total[1]:10.2f} {'':8s} {total[2]:10.2f} {total[3]:10.2f} "
              f"{total[0] / total[2]:9.2f} {total[1] / total[3]:9.2f}")


if __name__ == "__main__":
    main()
