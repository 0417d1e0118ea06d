#!/usr/bin/env python3
"""CI: no folder includes a folder above it.

The layers, lowest first: engine < kernels < layers < data < apps. A file under one of them may
`#include "X/..."` only for X at its own layer or below; tests/ and benchmarks/ may include
anything. Sub-folders belong to their top folder (data/input/dicom.cpp is in data), and inside
data/ the concerns are ordered too: input < evaluation < presentation. Prints each upward include
as FILE:LINE: include "X/..." (layer -> X) and exits 1 if there is one.
  .ci/check-layers.py [ROOT]      (default: the repository holding this script)
"""
import pathlib
import re
import subprocess
import sys

ORDER = ["engine", "kernels", "layers", "data", "apps"]
RANK = {name: rank for rank, name in enumerate(ORDER)}
SUFFIXES = {".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh", ".inc", ".in"}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"/]+)/(?:([^"/]+)/)?')
DATA_ORDER = ["input", "evaluation", "presentation"]
DATA_RANK = {name: rank for rank, name in enumerate(DATA_ORDER)}


def tracked_files(root):
    try:
        listing = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard"],
                                 check=True, capture_output=True, text=True).stdout.split("\n")
        return [root / name for name in listing if name]
    except (OSError, subprocess.CalledProcessError):
        return [path for path in root.rglob("*") if path.is_file()]


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    violations, checked = [], 0
    for path in sorted(tracked_files(root)):
        relative = path.relative_to(root)
        layer = relative.parts[0] if len(relative.parts) > 1 else None
        if layer not in RANK or path.suffix not in SUFFIXES or "third_party" in relative.parts:
            continue
        checked += 1
        with open(path, encoding="utf-8", errors="replace") as source:
            for number, line in enumerate(source, 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                target = match.group(1)
                if layer == "data" and target == "data" and len(relative.parts) > 2:
                    own, other = relative.parts[1], match.group(2)
                    if own in DATA_RANK and other in DATA_RANK and DATA_RANK[other] > DATA_RANK[own]:
                        violations.append(f"{relative}:{number}: {line.strip()} (data/{own} -> data/{other})")
                    continue
                if target in RANK and RANK[target] > RANK[layer]:
                    violations.append(f"{relative}:{number}: {line.strip()} ({layer} -> {target})")
                elif target in ("tests", "benchmarks"):
                    violations.append(f"{relative}:{number}: {line.strip()} ({layer} -> {target})")
    if violations:
        print(f"check-layers: {len(violations)} include(s) go up the layers "
              f"({' < '.join(ORDER)}; tests and benchmarks are above all):", file=sys.stderr)
        for violation in violations:
            print("  " + violation, file=sys.stderr)
        return 1
    print(f"check-layers: {checked} files in {', '.join(ORDER)}: no include goes up ({' < '.join(ORDER)}; "
          f"data/{' < data/'.join(DATA_ORDER)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
