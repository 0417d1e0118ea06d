#!/usr/bin/python3
"""The table of benchmarks/conv_algo_parity.sh: each training run's best validation mAP per
convolution-algorithm setting, mean and sample standard deviation over the seeds, and whether
each setting reaches the reference setting's mAP within the run-to-run spread.

  /usr/bin/python3 benchmarks/conv_algo_parity.py --out DIR --epochs E
      --run SETTING SEED RUN_DIR [--run ...] [--reference SETTING] [--describe TEXT]

Each RUN_DIR is a finished `pneumo train` run directory: its history.csv (one row per epoch,
apps/learning_curves.h) gives the best validation mAP and the seconds per epoch, its
conv-algorithms.txt (apps/training_run.h) the algorithms `auto` chose. The reference is the first
--run's setting unless --reference names one. Criterion, for every other setting S:

    |mean(S) - mean(reference)| <= max(sd(reference), sd(S))      -> agree, else DIFFER

with sd the sample standard deviation over the seeds (n - 1). One seed has no spread: the
verdict is then "n/a". Writes DIR/parity.md (the table), DIR/parity.csv (one row per setting)
and DIR/parity_runs.csv (one row per run). Exit 0 when every setting agrees (or n/a), 1 when one
DIFFERs, 2 on bad input (one line naming the file, line and field).
Python 3 standard library only.
"""
import argparse
import csv
import math
import os
import statistics
import sys

HISTORY_FIELDS = ("epoch", "validation_map", "seconds")


class InputError(Exception):
    pass


def read_number(text, path, line, field):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{path}:{line}: field {field}: expected a number, got {text!r}")
    if not math.isfinite(value):
        raise InputError(f"{path}:{line}: field {field}: expected a finite number, got {text!r}")
    return value


def read_history(path, epochs):
    """[(epoch, validation_map, seconds)] of a history.csv with exactly `epochs` rows."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: missing (the run did not finish; see log.txt beside it)")
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = [f for f in HISTORY_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}:1: header lacks {', '.join(missing)} (expected the history.csv of pneumo train)")
        rows = []
        for row in reader:
            line = reader.line_num
            rows.append(tuple(read_number(row[f], path, line, f) for f in HISTORY_FIELDS))
    if len(rows) != epochs:
        raise InputError(f"{path}: {len(rows)} epochs, expected {epochs} (an unfinished or different run)")
    return rows


def read_auto_choices(path):
    """{algorithm: records} of a conv-algorithms.txt (empty when missing: no `auto` choice)."""
    choices = {}
    if not os.path.isfile(path):
        return choices
    with open(path) as file:
        for line_number, line in enumerate(file, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            # direction N H W C K kernel threads isa algorithm ms
            if len(words) != 11:
                raise InputError(f"{path}:{line_number}: expected 11 fields "
                                 f"(direction N H W C K kernel threads isa algorithm ms), got {len(words)}")
            choices[words[9]] = choices.get(words[9], 0) + 1
    return choices


def format_choices(choices):
    return ", ".join(f"{name} {count}" for name, count in sorted(choices.items(), key=lambda c: (-c[1], c[0])))


def summarize(runs, reference):
    """One dict per setting (in first-seen order): values per seed, mean, sd, verdict."""
    settings = []
    for run in runs:
        if run["setting"] not in settings:
            settings.append(run["setting"])
    if reference not in settings:
        raise InputError(f"--reference {reference}: no --run has that setting (settings: {', '.join(settings)})")
    rows = {}
    for setting in settings:
        mine = sorted((r for r in runs if r["setting"] == setting), key=lambda r: r["seed"])
        values = [r["best_map"] for r in mine]
        auto = {}
        for r in mine:
            for name, count in r["auto_choices"].items():
                auto[name] = auto.get(name, 0) + count
        rows[setting] = {
            "setting": setting,
            "seeds": [r["seed"] for r in mine],
            "values": values,
            "mean": statistics.mean(values),
            "sd": statistics.stdev(values) if len(values) >= 2 else None,
            "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in mine),
            "auto_choices": auto,
        }
    exact = rows[reference]
    for setting in settings:
        row = rows[setting]
        row["difference"] = row["mean"] - exact["mean"]
        if setting == reference:
            row["allowed"], row["verdict"] = None, "reference"
        elif row["sd"] is None or exact["sd"] is None:
            row["allowed"], row["verdict"] = None, "n/a (one seed: no spread)"
        else:
            row["allowed"] = max(exact["sd"], row["sd"])
            row["verdict"] = "agree" if abs(row["difference"]) <= row["allowed"] else "DIFFER"
    return [rows[s] for s in settings]


def number(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def table_lines(summary, reference, seeds):
    header = (["setting"] + [f"seed {s}" for s in seeds] +
              ["mean ± sd", f"mean - {reference}", "allowed: max(sd)", "s/epoch", "verdict"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary:
        by_seed = dict(zip(row["seeds"], row["values"]))
        cells = ([f"`{row['setting']}`"] + [number(by_seed.get(s)) for s in seeds] +
                 [f"{number(row['mean'])} ± {number(row['sd'])}",
                  "—" if row["setting"] == reference else f"{row['difference']:+.4f}",
                  number(row["allowed"]), f"{row['seconds_per_epoch']:.1f}", row["verdict"]])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for parity.md, parity.csv, parity_runs.csv")
    parser.add_argument("--epochs", type=int, required=True, help="epochs every run must have finished")
    parser.add_argument("--run", nargs=3, action="append", required=True, metavar=("SETTING", "SEED", "RUN_DIR"))
    parser.add_argument("--reference", help="the exact setting (default: the first --run's)")
    parser.add_argument("--describe", default="", help="one line saying what was trained")
    arguments = parser.parse_args()
    try:
        runs = []
        for setting, seed_text, run_dir in arguments.run:
            if not seed_text.isdigit():
                raise InputError(f"--run {setting} {seed_text} {run_dir}: SEED must be a non-negative integer")
            history = read_history(os.path.join(run_dir, "history.csv"), arguments.epochs)
            best = max(history, key=lambda row: row[1])  # the first epoch with the best mAP
            runs.append({
                "setting": setting, "seed": int(seed_text), "run_dir": run_dir,
                "best_map": best[1], "best_epoch": int(best[0]),
                "seconds_per_epoch": statistics.mean(row[2] for row in history),
                "auto_choices": read_auto_choices(os.path.join(run_dir, "conv-algorithms.txt")),
            })
        reference = arguments.reference or runs[0]["setting"]
        summary = summarize(runs, reference)
    except InputError as error:
        print(f"conv_algo_parity.py: error: {error}", file=sys.stderr)
        return 2

    seeds = sorted({r["seed"] for r in runs})
    table = table_lines(summary, reference, seeds)
    criterion = (f"Criterion: a setting agrees with `{reference}` when |mean - mean({reference})| <= "
                 "max(sd of the two) (sd: sample standard deviation over the seeds; best validation "
                 "mAP of each run).")
    choices = [f"- `{row['setting']}`: auto chose {format_choices(row['auto_choices'])} "
               "(records over all seeds: direction x shape)" for row in summary if row["auto_choices"]]
    text = ([arguments.describe, ""] if arguments.describe else []) + table + ["", criterion]
    if choices:
        text += [""] + choices
    print("\n".join(text))

    os.makedirs(arguments.out, exist_ok=True)
    with open(os.path.join(arguments.out, "parity.md"), "w") as file:
        file.write("\n".join(text) + "\n")
    with open(os.path.join(arguments.out, "parity.csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["setting", "seeds", "best_maps", "mean", "sd", "difference", "allowed",
                         "seconds_per_epoch", "verdict"])
        for row in summary:
            writer.writerow([row["setting"], " ".join(map(str, row["seeds"])),
                             " ".join(f"{v:.6f}" for v in row["values"]), f"{row['mean']:.6f}",
                             "" if row["sd"] is None else f"{row['sd']:.6f}", f"{row['difference']:.6f}",
                             "" if row["allowed"] is None else f"{row['allowed']:.6f}",
                             f"{row['seconds_per_epoch']:.3f}", row["verdict"]])
    with open(os.path.join(arguments.out, "parity_runs.csv"), "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["setting", "seed", "best_map", "best_epoch", "seconds_per_epoch", "auto_choices", "run_dir"])
        for run in runs:
            writer.writerow([run["setting"], run["seed"], f"{run['best_map']:.6f}", run["best_epoch"],
                             f"{run['seconds_per_epoch']:.3f}", format_choices(run["auto_choices"]), run["run_dir"]])
    return 1 if any(row["verdict"] == "DIFFER" for row in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
