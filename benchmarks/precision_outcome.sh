#!/usr/bin/env bash
# bf16 against fp32 on outcomes (layers/precision.md, benchmarks/README.md "Mixed precision"):
# the `cpu` preset trained with --precision fp32 and --precision bf16 on the same synthetic
# dataset and split, SEEDS seeds each; then `pneumo predict` of the fp32 seed's best checkpoint on
# the test images in fp32 and in bf16. benchmarks/precision_outcome.py draws every learning curve
# (OUT/precision_curves.png), tabulates the validation mAPs and compares the two submissions' boxes
# (OUT/precision_outcome.md).
#   benchmarks/precision_outcome.sh [BUILD_DIR] [OUT_DIR]
# Environment: TRAIN_IMAGES (default 400), TEST_IMAGES (default 200), SEEDS (default "1 2 3").
# Needs Debian's python3-numpy and python3-matplotlib. About 6 trainings of 1-3 minutes on 2 cores.
set -euo pipefail
build="${1:-build}"
out="${2:-out/precision-outcome}"
train_images="${TRAIN_IMAGES:-400}"
test_images="${TEST_IMAGES:-200}"
seeds="${SEEDS:-1 2 3}"
mkdir -p "$out"
data="$out/data"
[ -d "$data/stage_2_train_images" ] ||
  "$build/pneumo" synth --out "$data" --train-images "$train_images" --test-images "$test_images" --seed 21
runs=()
for precision in fp32 bf16; do
  for seed in $seeds; do
    run="$out/$precision-seed$seed"
    rm -rf "$run"
    /usr/bin/time -f "$precision seed $seed: %e s" "$build/pneumo" train --data "$data" --preset cpu --seed "$seed" \
      --precision "$precision" --run-dir "$run" --workers 2 | grep -E "^epoch [0-9]+/[0-9]+:|^done"
    runs+=("$run")
  done
done
first_seed="${seeds%% *}"
checkpoint="$out/fp32-seed$first_seed/best.safetensors"
for precision in fp32 bf16; do
  "$build/pneumo" predict --checkpoint "$checkpoint" --images "$data/stage_2_test_images" --workers 2 \
    --precision "$precision" --out "$out/test-$precision.csv" | tail -n 2
done
/usr/bin/python3 benchmarks/precision_outcome.py --out "$out" --submissions "$out/test-fp32.csv" "$out/test-bf16.csv" \
  "${runs[@]}"
