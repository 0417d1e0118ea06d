#!/usr/bin/env bash
# find_package(pneumo): installs the build into a scratch prefix (cmake --install), configures and
# builds tests/install/consumer/ against it (-DCMAKE_PREFIX_PATH) and runs it: one training step of
# the notebook's network on random data, whose loss must be a finite number and whose parameter
# count is PyTorch's (12,718,305; tests/test_network.cpp). The installed CMake files must not point
# into the source or build tree.
# Usage: test_find_package.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -u
source_dir=$(readlink -f "$1") build=$(readlink -f "$2") work=$(readlink -m "$3")
rm -rf "$work" && mkdir -p "$work"
source "$source_dir/tests/support/checks.sh"
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1
check "cmake --install puts the libraries, headers and pneumoConfig.cmake in the prefix" \
  "[ $? -eq 0 ] && [ -f $prefix/lib/cmake/pneumo/pneumoConfig.cmake ] && [ -f $prefix/lib/cmake/pneumo/pneumoTargets.cmake ] && [ -f $prefix/include/pneumo/engine/tensor.h ] && [ -f $prefix/include/pneumo/layers/network.h ] && ls $prefix/lib/libpneumo_engine.a $prefix/lib/libpneumo_layers.a > /dev/null"
check "the installed CMake files do not point into the source or build tree" \
  "! grep -rqF -e '$source_dir' -e '$build' $prefix/lib/cmake/pneumo"

generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source_dir/tests/install/consumer" -B "$work/consumer" "${generator[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log" 2>&1
rc=$?
check "the consumer project configures with find_package(pneumo)" "[ $rc -eq 0 ]"
[ $rc -eq 0 ] || tail -30 "$work/configure.log"
cmake --build "$work/consumer" > "$work/build.log" 2>&1
rc=$?
check "the consumer project builds against the installed libraries" "[ $rc -eq 0 ]"
[ $rc -eq 0 ] || tail -30 "$work/build.log"
(cd "$work" && "$work/consumer/pneumo_consumer") > "$work/run.log" 2>&1
rc=$?
cat "$work/run.log"
check "the consumer runs one training step" "[ $rc -eq 0 ]"
check "it builds the notebook's network: 12718305 trainable parameters (PyTorch's count)" \
  "grep -qx 'parameters 12718305' $work/run.log"
check "it prints a finite loss" \
  "/usr/bin/env python3 -c 'import math, sys; v = float(sys.argv[1]); sys.exit(0 if math.isfinite(v) and v > 0 else 1)' \"\$(sed -n 's/^loss //p' $work/run.log)\""
if [ -f "$prefix/lib/libpneumo_presentation.a" ]; then  # built with the data pipeline
  check "pneumo::data links (a PNG from its presentation library)" "grep -q '^png bytes [1-9]' $work/run.log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
