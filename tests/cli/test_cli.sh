#!/usr/bin/env bash
# End-to-end checks of the `pneumo` CLI on a small synthetic dataset: train -> Ctrl-C ->
# --resume equals an uninterrupted run bit for bit; predict -> submission -> evaluate; a real
# SIGINT; a diverging run stops on its non-finite loss; bad input gives one-line errors.
# Usage: test_cli.sh PNEUMO_BINARY WORK_DIR
set -u
pneumo=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

data=$work/data
"$pneumo" synth --out "$data" --train-images 40 --test-images 8 --image-size 256 --seed 3 > "$work/synth.log" 2>&1
check "synth writes the RSNA layout" "[ -f $data/stage_2_train_labels.csv ] && [ \$(ls $data/stage_2_train_images | wc -l) -eq 40 ] && [ \$(ls $data/stage_2_test_images | wc -l) -eq 8 ]"

small="--data $data --size 64 --channels 4 --blocks 1 --depth 3 --batch 8 --epochs 2 --validation 8 --workers 2 --device cpu"
"$pneumo" train $small --run-dir "$work/full" > "$work/full.log" 2>&1
check "uninterrupted training run succeeds" "[ $? -eq 0 ] && [ -f $work/full/last.safetensors ] && [ -f $work/full/best.safetensors ]"

"$pneumo" train $small --run-dir "$work/resumed" --stop-after 3 > "$work/stop.log" 2>&1
rc=$?
check "--stop-after acts as Ctrl-C: exit 130 and a checkpoint" "[ $rc -eq 130 ] && grep -q 'interrupted: saved' $work/stop.log"
"$pneumo" train --resume "$work/resumed" --workers 3 > "$work/resume.log" 2>&1
check "--resume finishes the run" "[ $? -eq 0 ] && grep -q 'resuming' $work/resume.log"
check "resumed checkpoint equals the uninterrupted one bit for bit" "cmp -s $work/full/last.safetensors $work/resumed/last.safetensors"
strip_seconds() { cut -d, -f1-9 "$1"; }
check "resumed history equals the uninterrupted one" "[ \"\$(strip_seconds $work/full/history.csv)\" = \"\$(strip_seconds $work/resumed/history.csv)\" ] && [ \$(wc -l < $work/full/history.csv) -eq 3 ]"
check "run directory has curves, grid, config, validation labels, log" "[ -s $work/full/curves.png ] && [ -s $work/full/validation_grid.png ] && [ -s $work/full/config.txt ] && [ -s $work/full/validation_labels.csv ] && [ -s $work/full/log.txt ]"

# A real Ctrl-C: SIGINT once the first epoch is under way.
"$pneumo" train $small --epochs 50 --run-dir "$work/sigint" > "$work/sigint.log" 2>&1 &
pid=$!
for _ in $(seq 1 1200); do grep -q "epoch 1/50" "$work/sigint.log" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
check "SIGINT saves a checkpoint and exits 130" "[ $rc -eq 130 ] && [ -f $work/sigint/last.safetensors ] && grep -q 'pneumo train --resume' $work/sigint.log"

"$pneumo" train $small --lr 1e30 --run-dir "$work/diverge" > "$work/diverge.log" 2>&1
rc=$?
check "a diverging run stops on the non-finite loss with exit 1" "[ $rc -eq 1 ] && grep -q 'non-finite loss' $work/diverge.log"

"$pneumo" predict --checkpoint "$work/full/best.safetensors" --images "$data/stage_2_test_images" --out "$work/submission.csv" --device cpu --overlays "$work/overlays" --labels "$data/synthetic_test_labels.csv" > "$work/predict.log" 2>&1
check "predict writes a submission with every test image" "[ $? -eq 0 ] && head -1 $work/submission.csv | grep -qx 'patientId,PredictionString' && [ \$(tail -n +2 $work/submission.csv | wc -l) -eq 8 ] && [ \$(ls $work/overlays | wc -l) -eq 8 ]"
"$pneumo" evaluate --labels "$data/synthetic_test_labels.csv" --submission "$work/submission.csv" > "$work/evaluate.log" 2>&1
check "evaluate prints the metric table" "[ $? -eq 0 ] && grep -q '^mAP' $work/evaluate.log && grep -q 'IoU >= 0.75' $work/evaluate.log"

# Bad input: one line on stderr, naming the problem, exit 1 (2 for usage).
one_line_error() {  # description, expected text, command...
  local description=$1 expected=$2
  shift 2
  local output
  output=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ] && printf '%s' "$output" | grep -q -- "$expected"; then
    pass "$description"
  else
    fail "$description (rc $rc: $output)"
  fi
}
head -3 "$work/submission.csv" > "$work/bad.csv"
echo "$(tail -1 "$data/synthetic_test_labels.csv" | cut -d, -f1),0.9 10 20 abc 40" >> "$work/bad.csv"
one_line_error "malformed submission names the file and line" "bad.csv:4" "$pneumo" evaluate --labels "$data/synthetic_test_labels.csv" --submission "$work/bad.csv"
head -3 "$work/submission.csv" > "$work/missing.csv"
one_line_error "submission missing images is an error" "missing" "$pneumo" evaluate --labels "$data/synthetic_test_labels.csv" --submission "$work/missing.csv"
one_line_error "unknown option" "unknown option --frobnicate" "$pneumo" train --frobnicate
one_line_error "missing dataset" "nowhere: dataset folder not found" "$pneumo" train --data "$work/nowhere"
one_line_error "bad number" "--epochs expects an integer" "$pneumo" train --data "$data" --epochs many
one_line_error "damaged checkpoint" "last.safetensors" bash -c "head -c 100 $work/full/last.safetensors > $work/last.safetensors; \"$pneumo\" predict --checkpoint $work/last.safetensors --images $data/stage_2_test_images"
one_line_error "not a DICOM" "not.dcm" bash -c "echo hello > $work/not.dcm; \"$pneumo\" show --dicom $work/not.dcm --out $work/x.png"
if [ -z "$(command -v nvidia-smi)" ] || ! nvidia-smi > /dev/null 2>&1; then
  one_line_error "--device cuda without a GPU never falls back (predict)" "--device cuda requested" "$pneumo" predict --checkpoint "$work/full/best.safetensors" --images "$data/stage_2_test_images" --device cuda --out "$work/never.csv"
fi
"$pneumo" summary > "$work/summary.log" 2>&1
check "summary of the notebook network counts 12,718,305 parameters" "grep -q '12718305\|12,718,305' $work/summary.log"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
