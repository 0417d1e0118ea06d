#!/usr/bin/env bash
# Outcome parity: the `cpu` preset trained by pneumo and by the notebook's Keras code on the same
# synthetic dataset and the same train/validation split, SEEDS seeds each; one chart with every
# learning curve and a table of validation mAPs (benchmarks/peers/keras_outcome.py).
#   benchmarks/peers/outcome_parity.sh [BUILD_DIR] [OUT_DIR]
# Environment: TRAIN_IMAGES (default 1000, the demo's size), SEEDS (default "1 2 3"), EPOCHS (default:
# the preset's 8). Needs benchmarks/peers/setup-venv.sh and Debian's python3-skimage (the notebook's
# post-processing for the Keras predictions).
set -euo pipefail
build="${1:-build}"
out="${2:-out/peers-outcome}"
python="${PNEUMO_PEERS_VENV:-$HOME/.cache/pneumo-peers-venv}/bin/python"
train_images="${TRAIN_IMAGES:-1000}"
seeds="${SEEDS:-1 2 3}"
epochs_option=()
[ -n "${EPOCHS:-}" ] && epochs_option=(--epochs "$EPOCHS")
mkdir -p "$out"
data="$out/data"
[ -d "$data/stage_2_train_images" ] || "$build/pneumo" synth --out "$data" --train-images "$train_images" --test-images 0 --seed 21
"$build/pneumo" dump-batches --data "$data" --all --size 128 --batch 16 --out "$out/all128.safetensors"
runs=()
for seed in $seeds; do
  run="$out/pneumo-seed$seed"
  rm -rf "$run"
  /usr/bin/time -f "pneumo seed $seed: %e s" "$build/pneumo" train --data "$data" --preset cpu --seed "$seed" \
    --run-dir "$run" --workers 2 "${epochs_option[@]}" | grep -E "^epoch [0-9]+/[0-9]+:|^done"
  runs+=("$run")
done
"$python" benchmarks/peers/keras_outcome.py --images "$out/all128.safetensors" --pneumo "$build/pneumo" \
  --out "$out" "${runs[@]}"
