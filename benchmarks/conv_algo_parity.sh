#!/usr/bin/env bash
# conv_algo_parity.sh: does the choice of CPU convolution algorithm change what training reaches?
# Trains the `cpu` preset on one synthetic dataset for every (setting, seed) of the global
# --conv-algo option and compares each setting's best validation mAP with the exact setting's,
# within the run-to-run spread over the seeds (benchmarks/README.md, "Training outcome per
# convolution algorithm"). Builds nothing: it runs an existing pneumo binary.
#
#   benchmarks/conv_algo_parity.sh [--pneumo PATH] [--out DIR] [--train-images N]
#       [--image-size PIXELS] [--epochs E] [--seeds N] [--settings "A B ..."] [-- TRAIN_OPTIONS]
#
# --pneumo PATH        the binary (default: build/pneumo of this repository; a bare name: PATH)
# --out DIR            dataset, runs and tables (default: ${TMPDIR:-/tmp}/pneumo-conv-algo-parity)
# --train-images N     synthetic training images (default: 1000; the preset validates on 15%)
# --image-size PIXELS  synthetic image size (default: 256; the cpu preset trains at 128)
# --epochs E           epochs of every run (default: 8, the cpu preset's)
# --seeds N            seeds 1..N of `pneumo train --seed` (init, split, shuffles, flips; default 3)
# --settings "A B ..." --conv-algo values, space-separated; the FIRST is the exact reference
#                      (default: "direct,gemm auto winograd4,direct,gemm")
# -- TRAIN_OPTIONS     passed to every `pneumo train` (e.g. -- --max-images 300)
# Environment (flags win): PNEUMO, PARITY_OUT, PARITY_TRAIN_IMAGES, PARITY_IMAGE_SIZE,
# PARITY_EPOCHS, PARITY_SEEDS, PARITY_SETTINGS. `auto` times its candidates in every run
# (PNEUMO_CONV_TUNING points at a file that does not exist) unless PNEUMO_CONV_TUNING is set.
#
# The dataset is written once (OUT/data) and reused; a run that finished with the same command
# and the same binary is not trained again, so an interrupted comparison continues where it
# stopped. Writes
# OUT/parity.md, OUT/parity.csv, OUT/parity_runs.csv (benchmarks/conv_algo_parity.py).
# Exit 0: every setting agrees; 1: one DIFFERs or a run failed; 2: bad arguments.
set -u
set -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
NAME=conv_algo_parity.sh
pneumo=${PNEUMO:-$ROOT/build/pneumo}
out=${PARITY_OUT:-${TMPDIR:-/tmp}/pneumo-conv-algo-parity}
train_images=${PARITY_TRAIN_IMAGES:-1000}
image_size=${PARITY_IMAGE_SIZE:-256}
epochs=${PARITY_EPOCHS:-8}
seeds=${PARITY_SEEDS:-3}
settings=${PARITY_SETTINGS:-"direct,gemm auto winograd4,direct,gemm"}
train_options=()

usage_error() { echo "$NAME: error: $1 (see --help)" >&2; exit 2; }
fail() { echo "$NAME: error: $1" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --pneumo | --out | --train-images | --image-size | --epochs | --seeds | --settings)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case "$1" in
        --pneumo) pneumo=$2 ;;
        --out) out=$2 ;;
        --train-images) train_images=$2 ;;
        --image-size) image_size=$2 ;;
        --epochs) epochs=$2 ;;
        --seeds) seeds=$2 ;;
        --settings) settings=$2 ;;
      esac
      shift 2 ;;
    --) shift; train_options=("$@"); break ;;
    *) usage_error "unknown option $1" ;;
  esac
done

for field in "train-images:$train_images" "image-size:$image_size" "epochs:$epochs" "seeds:$seeds"; do
  value=${field#*:}
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || usage_error "--${field%%:*} expects a positive integer, got '$value'"
done
read -r -a setting_list <<< "$settings"
[ ${#setting_list[@]} -ge 1 ] || usage_error "--settings is empty"
[[ "$pneumo" == */* ]] || { name=$pneumo; pneumo=$(command -v "$name") || fail "$name: not on PATH (pass --pneumo PATH)"; }
[ -x "$pneumo" ] || fail "$pneumo: no pneumo binary there (build it: cmake --build build --target pneumo, or pass --pneumo PATH)"
command -v python3 > /dev/null || fail "python3 not found (it writes the table: benchmarks/conv_algo_parity.py)"
for setting in "${setting_list[@]}"; do
  message=$("$pneumo" version --conv-algo "$setting" 2>&1 > /dev/null) ||
    usage_error "--settings: '$setting' is not a --conv-algo value: $message"
done

mkdir -p "$out" || fail "$out: cannot create the output folder"
out=$(cd "$out" && pwd)
export PNEUMO_CONV_TUNING=${PNEUMO_CONV_TUNING:-$out/no-tuning-file.txt}
[ -e "$PNEUMO_CONV_TUNING" ] && [ "$PNEUMO_CONV_TUNING" = "$out/no-tuning-file.txt" ] &&
  fail "$PNEUMO_CONV_TUNING exists; it must not (auto is meant to time its candidates in every run)"

# ---- the dataset, once -----------------------------------------------------------------------
data=$out/data
synth_settings="train-images=$train_images test-images=0 image-size=$image_size seed=1"
if [ -d "$data" ]; then
  [ "$(cat "$data/parity-synth.txt" 2>/dev/null)" = "$synth_settings" ] ||
    fail "$data holds another dataset (parity-synth.txt is not '$synth_settings'): pass another --out or remove it"
  echo "dataset: $data (reused: $synth_settings)"
else
  echo "dataset: writing $train_images synthetic images (${image_size}x$image_size) to $data"
  rm -rf "$data.partial"
  "$pneumo" synth --out "$data.partial" --train-images "$train_images" --test-images 0 \
    --image-size "$image_size" --seed 1 > "$out/synth-output.txt" 2>&1 ||
    fail "pneumo synth failed: $(tail -1 "$out/synth-output.txt") (output: $out/synth-output.txt)"
  echo "$synth_settings" > "$data.partial/parity-synth.txt"
  mv "$data.partial" "$data"
fi

# ---- every (setting, seed) -------------------------------------------------------------------
# A run is done when its parity-command.txt holds the same command and the same binary (checksum).
binary_sum=$(sha256sum "$pneumo" | cut -d' ' -f1) || fail "$pneumo: cannot read it for its checksum"
total=$((${#setting_list[@]} * seeds))
done_runs=0
table_arguments=()
for setting in "${setting_list[@]}"; do
  for seed in $(seq 1 "$seeds"); do
    done_runs=$((done_runs + 1))
    run_dir=$out/runs/${setting//,/+}/seed$seed
    command=("$pneumo" train --conv-algo "$setting" --preset cpu --device cpu --data "$data"
             --run-dir "$run_dir" --force --seed "$seed" --epochs "$epochs" "${train_options[@]}")
    table_arguments+=(--run "$setting" "$seed" "$run_dir")
    if [ "$(cat "$run_dir/parity-command.txt" 2>/dev/null)" = "${command[*]} # sha256 $binary_sum" ]; then
      echo "[$done_runs/$total] $setting, seed $seed: finished before ($run_dir)"
      continue
    fi
    mkdir -p "$run_dir" || fail "$run_dir: cannot create the run folder"
    rm -f "$run_dir/parity-command.txt"
    start=$(date +%s)
    "${command[@]}" > "$run_dir/train-output.txt" 2>&1 ||
      fail "$setting, seed $seed: pneumo train failed: $(tail -1 "$run_dir/train-output.txt") (output: $run_dir/train-output.txt)"
    echo "${command[*]} # sha256 $binary_sum" > "$run_dir/parity-command.txt"
    best=$(grep -o 'best validation mAP [0-9.]*' "$run_dir/train-output.txt" | tail -1)
    echo "[$done_runs/$total] $setting, seed $seed: ${best:-done}, $(($(date +%s) - start)) s"
  done
done

# ---- the table -------------------------------------------------------------------------------
version=$("$pneumo" --version 2>/dev/null | sed -n '1p;2s/ (at configure time)//p' | paste -sd ',' - | sed 's/,/, /')
echo
python3 "$HERE/conv_algo_parity.py" --out "$out" --epochs "$epochs" "${table_arguments[@]}" \
  --describe "pneumo train --preset cpu${train_options[*]:+ ${train_options[*]}}: $epochs epoch(s), $train_images synthetic images (${image_size}px), seeds 1-$seeds; $version"
rc=$?
echo
echo "tables: $out/parity.md, $out/parity.csv, $out/parity_runs.csv"
[ $rc -eq 2 ] && exit 1
exit $rc
