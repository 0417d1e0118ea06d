#!/usr/bin/env bash
# Runs one teaching page's check script (layers/check_*.py, data/check_*.py) with Debian's /usr/bin/python3.
# Exit 77 (CTest: SKIPPED, see SKIP_RETURN_CODE in CMakeLists.txt) with the reason when python3,
# numpy or torch is missing; otherwise the script's own status (0: the page agrees with autograd).
set -u
script="$1"
python="${PNEUMO_PYTHON:-/usr/bin/python3}"  # override to try the skip path
if [ ! -x "$python" ]; then
  echo "SKIPPED $script: $python is not installed (Debian: python3)"
  exit 77
fi
if grep -q '^import torch\|^from torch\|^import numpy' "$script" &&
   ! "$python" -c 'import numpy, torch' > /dev/null 2>&1; then
  echo "SKIPPED $script: $python cannot import numpy and torch (Debian: python3-numpy python3-torch)"
  exit 77
fi
exec "$python" "$script"
