#!/usr/bin/env bash
# The figures of layers/training_step.md are generated from the network the code builds: this
# regenerates them with the built `pneumo summary --svg/--block-svg` and fails when the committed
# files differ (a change to the network or to the drawing must come with the new figures).
# Usage: test_network_figures.sh PNEUMO SOURCE_DIR WORK_DIR
set -eu
pneumo="$1" source_dir="$2" work="$3"
rm -rf "$work" && mkdir -p "$work"
"$pneumo" summary --svg "$work/network.svg" --block-svg "$work/residual_block.svg" --block block1_1 > "$work/summary.txt"
status=0
for figure in network.svg residual_block.svg; do
  if ! cmp -s "$work/$figure" "$source_dir/layers/figures/$figure"; then
    echo "FAILED: layers/figures/$figure differs from what the code draws ($work/$figure); regenerate with:"
    echo "  build/pneumo summary --svg layers/figures/network.svg --block-svg layers/figures/residual_block.svg"
    diff "$source_dir/layers/figures/$figure" "$work/$figure" | head -20 || true
    status=1
  else
    echo "layers/figures/$figure: the same bytes as pneumo draws"
  fi
done
exit $status
