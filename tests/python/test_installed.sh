#!/usr/bin/env bash
# From an installed prefix, in a fresh environment: `cmake --install BUILD --prefix PREFIX`, then
# `env -i` with only PATH and PYTHONPATH=PREFIX/<site dir> runs first_step.py against the installed
# `pneumo` binary and module (the first step's loss equals `pneumo train`'s exactly).
#   test_installed.sh BUILD_DIR WORK_DIR SITE_DIR_RELATIVE_TO_PREFIX
set -eu
build="$1" work="$2" site="$3"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
module=$(ls "$prefix/$site"/pneumo*.so 2> /dev/null | head -1)
if [ -z "$module" ]; then
  echo "FAIL: cmake --install put no pneumo module in $prefix/$site"
  exit 1
fi
echo "installed: $module"
env -i PATH=/usr/bin:/bin HOME="$work" PYTHONPATH="$prefix/$site" /usr/bin/python3 -c \
  'import pneumo; print("import pneumo:", pneumo.__file__, pneumo.__version__)'
exec env -i PATH=/usr/bin:/bin HOME="$work" PYTHONPATH="$prefix/$site" /usr/bin/python3 \
  "$(dirname "$0")/first_step.py" "$prefix/bin/pneumo" "$work/first-step" --installed "$prefix"
