#!/usr/bin/env bash
# The walkthrough as a notebook, executed headless: notebook_walkthrough.py -> .ipynb
# (to_notebook.py) -> `jupyter nbconvert --to notebook --execute` with the tiny settings.
# Exit 77 (CTest: SKIPPED) with the reason where Debian's jupyter-nbconvert or python3-ipykernel
# is missing. PYTHONPATH must reach the pneumo module (CTest sets it to the build's).
#   run_notebook.sh WORK_DIR
set -eu
work="$1"
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v jupyter-nbconvert > /dev/null; then
  echo "SKIPPED: jupyter-nbconvert is not installed (Debian: jupyter-nbconvert)"
  exit 77
fi
if ! /usr/bin/python3 -c "import ipykernel" 2> /dev/null; then
  echo "SKIPPED: /usr/bin/python3 cannot import ipykernel (Debian: python3-ipykernel)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work/jupyter"
/usr/bin/python3 "$here/to_notebook.py" "$here/notebook_walkthrough.py" "$work/notebook_walkthrough.ipynb"
export PNEUMO_WALKTHROUGH_TINY=1 PNEUMO_WALKTHROUGH_DIR="$work/run" JUPYTER_RUNTIME_DIR="$work/jupyter" \
  JUPYTER_DATA_DIR="$work/jupyter" JUPYTER_CONFIG_DIR="$work/jupyter" IPYTHONDIR="$work/jupyter"
jupyter-nbconvert --to notebook --execute --ExecutePreprocessor.timeout=240 \
  --output executed.ipynb --output-dir "$work" "$work/notebook_walkthrough.ipynb"
# Executed means every code cell ran (an exception stops nbconvert with an error) and the last
# printed the metric.
/usr/bin/python3 - "$work/executed.ipynb" << 'PYTHON'
import json, sys
cells = [c for c in json.load(open(sys.argv[1]))["cells"] if c["cell_type"] == "code"]
text = "".join("".join(o.get("text", "")) for c in cells for o in c["outputs"])
assert all(c["execution_count"] for c in cells), "a code cell did not run"
assert "validation mAP" in text, "the metric cell printed nothing"
print("notebook: %d code cells executed; %s" % (len(cells), [l for l in text.splitlines() if "mAP" in l][0]))
PYTHON
