#!/usr/bin/env bash
# benchmarks/conv_algo_parity.sh end to end on a tiny setting (60 images, 1 epoch, 1 seed, two
# settings): the dataset, the run directories, the tables; a second call reuses both; a strict
# setting that cannot run every layer fails with one line naming the run's output; bad arguments
# exit 2 with one line. (The statistics are checked in test_conv_algo_parity_table.py.)
# Usage: test_conv_algo_parity.sh PNEUMO WORK_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"
script="$(dirname "${BASH_SOURCE[0]}")/../../benchmarks/conv_algo_parity.sh"
pneumo=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
tiny=(--pneumo "$pneumo" --out "$work/out" --train-images 60 --epochs 1 --seeds 1)

bash "$script" "${tiny[@]}" --settings "direct,gemm winograd4,direct,gemm" > "$work/first.log" 2>&1
rc=$?
check "tiny comparison exits 0 (one seed: no verdict but n/a)" "[ $rc -eq 0 ] && grep -q 'n/a (one seed' $work/first.log"
check "dataset of 60 images written once" "[ \$(ls $work/out/data/stage_2_train_images | wc -l) -eq 60 ]"
check "each run has its history and the command it ran" \
  "[ -f $work/out/runs/direct+gemm/seed1/history.csv ] && grep -q -- '--conv-algo winograd4,direct,gemm' $work/out/runs/winograd4+direct+gemm/seed1/parity-command.txt"
check "tables written: 2 settings, 2 runs" \
  "[ \$(wc -l < $work/out/parity.csv) -eq 3 ] && [ \$(wc -l < $work/out/parity_runs.csv) -eq 3 ] && grep -q '| \`winograd4,direct,gemm\` |' $work/out/parity.md"

bash "$script" "${tiny[@]}" --settings "direct,gemm winograd4,direct,gemm" > "$work/second.log" 2>&1
rc=$?
check "a second call reuses the dataset and both runs" \
  "[ $rc -eq 0 ] && grep -q 'reused' $work/second.log && [ \$(grep -c 'finished before' $work/second.log) -eq 2 ]"

bash "$script" "${tiny[@]}" --settings "direct,gemm winograd4" > "$work/strict.log" 2> "$work/strict.err"
rc=$?
check "strict winograd4 (no 1x1) fails: exit 1, one line naming the run's output" \
  "[ $rc -eq 1 ] && [ \$(wc -l < $work/strict.err) -eq 1 ] && grep -q 'winograd4, seed 1: pneumo train failed: .*runs/winograd4/seed1/train-output.txt' $work/strict.err"

bash "$script" "${tiny[@]}" --train-images 50 > "$work/other.log" 2> "$work/other.err"
rc=$?
check "another dataset size in the same folder is refused" "[ $rc -eq 1 ] && grep -q 'holds another dataset' $work/other.err"

for bad in "--epochs 0" "--seeds two" "--frobnicate" "--settings bogus,direct"; do
  bash "$script" "${tiny[@]}" $bad > "$work/bad.log" 2> "$work/bad.err"
  rc=$?
  check "$bad: exit 2, one line" "[ $rc -eq 2 ] && [ \$(wc -l < $work/bad.err) -eq 1 ] && grep -q '^conv_algo_parity.sh: error: ' $work/bad.err"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
