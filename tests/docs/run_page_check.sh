#!/usr/bin/env bash
# Runs one teaching page's check script (layers/, data/*/, engine/ check_*.py) with /usr/bin/python3.
# Exit 77 (CTest: SKIPPED, see SKIP_RETURN_CODE in CMakeLists.txt) with the reason when python3
# or a module the script imports (numpy, torch, skimage) is missing; otherwise the script's own
# status (0: the page agrees with autograd or the independent implementation).
set -u
script="$1"
python="${PNEUMO_PYTHON:-/usr/bin/python3}"  # override to try the skip path
if [ ! -x "$python" ]; then
  echo "SKIPPED $script: $python is not installed (Debian: python3)"
  exit 77
fi
# The script's top-level imports (numpy, torch, skimage, ...) must all be importable.
modules=$(sed -n 's/^import \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p; s/^from \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$script" | sort -u | tr '\n' ' ')
for module in $modules; do
  if ! "$python" -c "import $module" > /dev/null 2>&1; then
    echo "SKIPPED $script: $python cannot import $module (Debian: python3-numpy python3-torch python3-skimage)"
    exit 77
  fi
done
exec "$python" "$script"
