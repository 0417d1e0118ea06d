#!/usr/bin/python3
"""Fails when a number a teaching page quotes from its check script is not what the script prints.

A page marks such a number with an HTML comment right after it (invisible when rendered):

    F(2,3)'s β_w = 6<!-- from check_conv2d.py: beta_w_F23 -->

and the script prints a line `beta_w_F23 = 6` (`name = value`, the value a plain number, optionally
followed by a `# comment`). This
test runs every script the pages name, once each, with /usr/bin/python3 (or $PNEUMO_PYTHON), and
checks that each quoted number is the printed value rounded to the quoted number's last digit
(`121` matches 121.25, `0.32` matches 0.3152, `4.1e-8` matches 4.14e-08); a missing name, a
script that fails, or a page that names a script that does not exist is an error.
Pages: README.md and every *.md under engine/ kernels/ layers/ data/ apps/ benchmarks/. A script
name is looked up in the page's folder, then from the repository root.
Usage: check_quoted_numbers.py [REPOSITORY_ROOT]. Exit 0 when every quoted number matches, 1 when
one does not (each printed as `page:line: ...`), 77 (CTest: SKIPPED) when python3 or a module a
named script imports (numpy, torch, ...) is missing.
"""
import decimal
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_docs import ROOT, pages  # noqa: E402  the same root (argv[1]) and the same pages
PYTHON = os.environ.get("PNEUMO_PYTHON", "/usr/bin/python3")
NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
# a number, optional spaces, then the marker
QUOTE = re.compile(r"(" + NUMBER + r")\s*<!--\s*from\s+([\w./-]+\.py)\s*:\s*(\w+)\s*-->")
MARKER = re.compile(r"<!--\s*from\s+[\w./-]+\.py\s*:")
PRINTED = re.compile(r"^\s*(\w+)\s*=\s*(" + NUMBER + r")\s*(?:#.*)?$")  # an optional # comment


def to_decimal(text):
    return decimal.Decimal(text.replace(",", ""))


def matches(quoted, printed):
    """True when `quoted` is `printed` rounded to the quoted number's last digit."""
    q, p = to_decimal(quoted), to_decimal(printed)
    half_unit = decimal.Decimal(5).scaleb(q.as_tuple().exponent - 1)  # 0.5 in the last quoted digit
    return abs(q - p) <= half_unit * (1 + decimal.Decimal("1e-9"))


def missing_module(script):
    """The first top-level import of `script` that this python cannot import, or None."""
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 1)"
    for line in open(script):
        found = re.match(r"^(?:import|from)\s+([A-Za-z_]\w*)", line)
        if found and subprocess.call([PYTHON, "-c", probe, found.group(1)]) != 0:
            return found.group(1)
    return None


def main():
    if not os.access(PYTHON, os.X_OK):
        print("SKIPPED: %s is not installed (Debian: python3)" % PYTHON)
        return 77
    quotes, errors = [], []
    for page in pages():
        relative = os.path.relpath(page, ROOT)
        for number, line in enumerate(open(page, encoding="utf-8"), 1):
            found = QUOTE.findall(line)
            if len(found) != len(MARKER.findall(line)):
                errors.append("%s:%d: a `<!-- from SCRIPT: name -->` marker without a number right before it"
                              % (relative, number))
            for quoted, script, name in found:
                candidates = [os.path.join(os.path.dirname(page), script), os.path.join(ROOT, script)]
                path = next((c for c in candidates if os.path.isfile(c)), None)
                if path is None:
                    errors.append("%s:%d: %s: no such script" % (relative, number, script))
                else:
                    quotes.append((relative, number, quoted, path, name))
    if not quotes and not errors:
        print("FAILED: no page quotes a number from its check script (the marker format changed?)")
        return 1
    outputs = {}
    for path in sorted({q[3] for q in quotes}):
        module = missing_module(path)
        if module:
            print("SKIPPED: %s cannot import %s, needed by %s (Debian: python3-numpy python3-torch)"
                  % (PYTHON, module, os.path.relpath(path, ROOT)))
            return 77
        run = subprocess.run([PYTHON, path], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True)
        if run.returncode != 0:
            errors.append("%s: exits with %d:\n%s" % (os.path.relpath(path, ROOT), run.returncode, run.stdout[-2000:]))
        printed = {}
        for out_line in run.stdout.splitlines():
            found = PRINTED.match(out_line)
            if found:
                printed[found.group(1)] = found.group(2)
        outputs[path] = printed
    for page, number, quoted, path, name in quotes:
        printed = outputs[path]
        script = os.path.relpath(path, ROOT)
        if name not in printed:
            errors.append("%s:%d: %s prints no line `%s = <number>`" % (page, number, script, name))
        elif not matches(quoted, printed[name]):
            errors.append("%s:%d: quotes %s for %s, but %s prints %s = %s"
                          % (page, number, quoted, name, script, name, printed[name]))
    for error in errors:
        print(error)
    print("%d quoted numbers from %d scripts checked, %d errors" % (len(quotes), len(outputs), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
