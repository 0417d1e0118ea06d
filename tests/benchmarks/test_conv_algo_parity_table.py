#!/usr/bin/python3
"""benchmarks/conv_algo_parity.py on hand-written run directories: the best mAP per run, the mean
and sample standard deviation per setting, the verdict and the exit code against values worked
out by hand below; bad input is one line naming the file, line and field, exit 2.
Usage: test_conv_algo_parity_table.py [REPOSITORY_ROOT]
"""
import csv
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
HELPER = os.path.join(ROOT, "benchmarks", "conv_algo_parity.py")
HEADER = ("epoch,learning_rate,train_loss,train_accuracy,train_iou,validation_loss,validation_accuracy,"
          "validation_iou,validation_map,seconds")
passed = failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAILED: {name} {detail}")


def write_run(folder, maps, seconds=10.0, choices=()):
    """A run directory whose history.csv has one epoch per value of `maps`."""
    os.makedirs(folder)
    with open(os.path.join(folder, "history.csv"), "w") as file:
        file.write(HEADER + "\n")
        for epoch, value in enumerate(maps, 1):
            file.write(f"{epoch},0.003,0.5,0.9,0.3,0.6,0.9,0.3,{value},{seconds}\n")
    if choices:
        with open(os.path.join(folder, "conv-algorithms.txt"), "w") as file:
            file.write("# pneumo convolution tuning (pneumo tune): direction N H W C K kernel threads isa algorithm ms\n")
            for algorithm in choices:
                file.write(f"forward 16 32 32 32 32 3 2 avx512 {algorithm} 1.000\n")


def run_helper(out, runs, epochs=2):
    arguments = [sys.executable, HELPER, "--out", out, "--epochs", str(epochs)]
    for setting, seed, folder in runs:
        arguments += ["--run", setting, str(seed), folder]
    return subprocess.run(arguments, capture_output=True, text=True)


def read_summary(out):
    with open(os.path.join(out, "parity.csv"), newline="") as file:
        return {row["setting"]: row for row in csv.DictReader(file)}


with tempfile.TemporaryDirectory() as work:
    # Reference: best of each run 0.30, 0.34, 0.32 -> mean 0.32, sd sqrt((0.02^2 + 0.02^2 + 0) / 2) = 0.02.
    # "near": 0.33, 0.35, 0.31 -> mean 0.33, sd 0.02; |0.33 - 0.32| = 0.01 <= max(0.02, 0.02): agree.
    # "far": 0.25, 0.26, 0.27 -> mean 0.26, sd 0.01; |0.26 - 0.32| = 0.06 > max(0.02, 0.01): DIFFER.
    values = {"direct,gemm": [(0.10, 0.30), (0.34, 0.20), (0.32, 0.32)],
              "near": [(0.33, 0.01), (0.35, 0.35), (0.31, 0.05)],
              "far": [(0.25, 0.25), (0.26, 0.10), (0.27, 0.00)]}
    runs = []
    for setting, per_seed in values.items():
        for seed, maps in enumerate(per_seed, 1):
            folder = os.path.join(work, "runs", setting, f"seed{seed}")
            write_run(folder, maps, seconds=4.0 if setting == "far" else 10.0,
                      choices=("winograd4", "direct", "winograd4") if setting == "near" else ())
            runs.append((setting, seed, folder))

    result = run_helper(os.path.join(work, "out"), runs)
    check("a DIFFERing setting exits 1", result.returncode == 1, f"(rc {result.returncode}: {result.stderr})")
    summary = read_summary(os.path.join(work, "out"))
    reference, near, far = summary["direct,gemm"], summary["near"], summary["far"]
    check("best mAP per run is the maximum over epochs", reference["best_maps"] == "0.300000 0.340000 0.320000"
          and near["best_maps"] == "0.330000 0.350000 0.310000", str(reference))
    check("mean and sample sd of the reference: 0.32 +- 0.02",
          abs(float(reference["mean"]) - 0.32) < 1e-9 and abs(float(reference["sd"]) - 0.02) < 1e-9, str(reference))
    check("near: difference +0.01, allowed 0.02, agree",
          abs(float(near["difference"]) - 0.01) < 1e-9 and abs(float(near["allowed"]) - 0.02) < 1e-9
          and near["verdict"] == "agree", str(near))
    check("far: difference -0.06, allowed max(0.02, 0.01) = 0.02, DIFFER",
          abs(float(far["difference"]) + 0.06) < 1e-9 and abs(float(far["allowed"]) - 0.02) < 1e-9
          and far["verdict"] == "DIFFER", str(far))
    check("seconds per epoch is the mean of the history's seconds", far["seconds_per_epoch"] == "4.000", str(far))
    with open(os.path.join(work, "out", "parity_runs.csv"), newline="") as file:
        per_run = list(csv.DictReader(file))
    check("per-run table: 9 runs, best epoch of reference seed 1 is 2, auto's choices counted",
          len(per_run) == 9 and per_run[0]["best_epoch"] == "2" and per_run[3]["auto_choices"] == "winograd4 2, direct 1",
          str(per_run[:4]))
    with open(os.path.join(work, "out", "parity.md")) as file:
        table = file.read()
    check("markdown table has the reference row and the verdicts",
          "| `direct,gemm` | 0.3000 | 0.3400 | 0.3200 | 0.3200 ± 0.0200 |" in table and "| DIFFER |" in table, table)

    result = run_helper(os.path.join(work, "out-agree"), [r for r in runs if r[0] != "far"])
    check("every setting agreeing exits 0", result.returncode == 0, f"(rc {result.returncode}: {result.stderr})")

    result = run_helper(os.path.join(work, "out-one"), [runs[0], runs[3]])
    check("one seed: verdict n/a, exit 0", result.returncode == 0 and read_summary(os.path.join(work, "out-one"))
          ["near"]["verdict"].startswith("n/a"), result.stdout)

    bad = os.path.join(work, "bad")
    write_run(bad, [0.1, "abc"])
    result = run_helper(os.path.join(work, "out-bad"), [("direct,gemm", 1, bad)])
    check("a malformed mAP is one line naming file, line and field, exit 2",
          result.returncode == 2 and result.stderr.count("\n") == 1
          and f"{bad}/history.csv:3: field validation_map: expected a number" in result.stderr, result.stderr)
    result = run_helper(os.path.join(work, "out-short"), [("direct,gemm", 1, runs[0][2])], epochs=8)
    check("a run with fewer epochs than asked is an error, exit 2",
          result.returncode == 2 and "history.csv: 2 epochs, expected 8" in result.stderr, result.stderr)
    result = run_helper(os.path.join(work, "out-missing"), [("direct,gemm", 1, os.path.join(work, "nowhere"))])
    check("a missing history.csv is an error, exit 2",
          result.returncode == 2 and "nowhere/history.csv: missing" in result.stderr, result.stderr)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
