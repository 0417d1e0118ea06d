#!/usr/bin/python3
"""A `# %%` script -> a Jupyter notebook (nbformat 4), without jupytext.

  to_notebook.py SCRIPT.py NOTEBOOK.ipynb

Cells start at lines `# %%` (code) and `# %% [markdown]` (markdown: the leading "# " of each
line is removed). What comes before the first marker (the #! line) is dropped.
"""
import json
import sys


def cells_of(lines):
    cells, kind, body = [], None, []
    for line in lines + ["# %%"]:
        if line.startswith("# %%"):
            if kind is not None:
                while body and not body[-1].strip():
                    body.pop()
                cells.append((kind, body))
            kind, body = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            body.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind == "code":
            body.append(line)
    return cells


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as script:
        lines = script.read().split("\n")
    notebook = {"nbformat": 4, "nbformat_minor": 5, "cells": [],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                             "language_info": {"name": "python"}}}
    for number, (kind, body) in enumerate(cells_of(lines)):
        text = [line + "\n" for line in body[:-1]] + body[-1:]
        cell = {"cell_type": kind, "id": "cell-%d" % number, "metadata": {}, "source": text}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        notebook["cells"].append(cell)
    with open(target, "w", encoding="utf-8") as out:
        json.dump(notebook, out, indent=1)
        out.write("\n")
    print("%s: %d cells -> %s" % (source, len(notebook["cells"]), target))


if __name__ == "__main__":
    main()
