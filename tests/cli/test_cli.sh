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
check "synth shows progress (a line per step when not on a terminal)" "[ \$(grep -c '^synth \[' $work/synth.log) -ge 2 ] && grep -q '^synth \[#*\] 48/48 100%' $work/synth.log"

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

# synth never mixes two datasets: a non-empty --out is refused and left alone; a killed synth
# leaves no --out (its <out>.partial-<pid> is removed by the next synth).
labels_before=$(cksum < "$data/stage_2_train_labels.csv")
one_line_error "synth refuses a non-empty --out" "data': exists and is not empty" "$pneumo" synth --out "$data" --train-images 4 --test-images 0 --image-size 64
check "the refused --out is unchanged" "[ \"\$(cksum < $data/stage_2_train_labels.csv)\" = \"$labels_before\" ] && [ \$(ls $data/stage_2_train_images | wc -l) -eq 40 ]"
"$pneumo" synth --out "$work/killed" --train-images 3000 --test-images 0 --image-size 512 > "$work/killed.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ "$(ls "$work/killed.partial-$pid/stage_2_train_images" 2>/dev/null | wc -l)" -ge 5 ] && break; sleep 0.1; done
kill -TERM $pid
wait $pid
check "a synth killed midway leaves no --out folder, only its partial one" "[ ! -e $work/killed ] && [ -d $work/killed.partial-$pid ]"
"$pneumo" synth --out "$work/killed" --train-images 3 --test-images 1 --image-size 64 > "$work/killed2.log" 2>&1
check "the next synth writes the dataset and removes the dead run's partial folder" "[ \$? -eq 0 ] && [ \$(ls $work/killed/stage_2_train_images | wc -l) -eq 3 ] && [ ! -e $work/killed.partial-$pid ]"

# --workers is bounded (100000 threads used to abort with std::terminate).
one_line_error "dump-batches --workers 100000 is a one-line error" "--workers: expected 1..256, got 100000" "$pneumo" dump-batches --data "$data" --workers 100000 --out "$work/never.safetensors"
one_line_error "predict --workers 100000 is a one-line error" "--workers: expected 1..256, got 100000" "$pneumo" predict --checkpoint "$work/full/best.safetensors" --images "$data/stage_2_test_images" --workers 100000 --out "$work/never.csv" --device cpu
one_line_error "train --workers 100000 is a one-line error" "--workers: expected 1..256, got 100000" "$pneumo" train $small --workers 100000 --run-dir "$work/workers"
"$pneumo" dump-batches --data "$data" --batches 8 --out "$work/batches.safetensors" > "$work/dump.log" 2>&1
check "dump-batches shows progress" "[ \$? -eq 0 ] && grep -q '^dump-batches \[#*\] 32/32 100%' $work/dump.log"
check "predict shows the overlays' progress" "grep -q '^overlays \[#*\] 8/8 100%' $work/predict.log"

# predict checks the file names (the submission's patientIds) before any work.
mkdir -p "$work/odd/images"
cp "$(ls "$data"/stage_2_test_images/*.dcm | head -1)" "$work/odd/images/a,b.dcm"
one_line_error "predict refuses a file name with a comma, naming it" "images/a,b.dcm': the file name is the patientId" "$pneumo" predict --checkpoint "$work/full/best.safetensors" --images "$work/odd/images" --out "$work/odd/submission.csv" --device cpu
check "... before any work (no image cache was built)" "[ -z \"\$(ls $work/odd | grep pneumocache)\" ] && [ ! -e $work/odd/submission.csv ]"

# --cache-dir naming a folder that does not exist yet: it is made.
"$pneumo" predict --checkpoint "$work/full/best.safetensors" --images "$data/stage_2_test_images" --out "$work/cached.csv" --device cpu --cache-dir "$work/new/cache" > "$work/cache-dir.log" 2>&1
check "predict --cache-dir in a missing folder creates it" "[ \$? -eq 0 ] && ls $work/new/cache/*.pneumocache > /dev/null && cmp -s $work/cached.csv $work/submission.csv"
"$pneumo" train $small --epochs 1 --run-dir "$work/cache-dir-run" --cache-dir "$work/new/train-cache" > "$work/cache-dir-train.log" 2>&1
check "train --cache-dir in a missing folder creates it" "[ \$? -eq 0 ] && ls $work/new/train-cache/*.pneumocache > /dev/null"

"$pneumo" summary > "$work/summary.log" 2>&1
check "summary of the notebook network counts 12,718,305 parameters" "grep -q '12718305\|12,718,305' $work/summary.log"

# summary --conv-algos: one row per Conv2d x direction of a training step, with the algorithm
# the layer would run and why (layers/conv2d.md, "Algorithms").
conv_rows() { awk '/^layer +direction/ { table = 1; next } table' "$1"; }  # the --conv-algos table
"$pneumo" summary --conv-algos --conv-algo direct,gemm --batch 2 > "$work/conv-algos.log" 2>&1
check "summary --conv-algos runs" "[ $? -eq 0 ]"
# The notebook network's convolutions, counted from its architecture: conv0, then per depth
# (4) one 1x1 down conv and 2 blocks x 2 convs, then the head: 1 + 4 * 5 + 1 = 22.
check "the model table lists 22 Conv2d layers" "[ \$(awk '\$2 == \"Conv2d\"' $work/conv-algos.log | wc -l) -eq 22 ]"
directions_per_layer() {  # "name: directions" for every Conv2d of the model table, from both tables
  local first
  first=$(awk '$2 == "Conv2d" { print $1; exit }' "$1")
  awk '$2 == "Conv2d" { print $1 }' "$1" | while read -r name; do
    if [ "$name" = "$first" ]; then expected="forward weight-gradient"; else expected="forward input-gradient weight-gradient"; fi
    got=$(conv_rows "$1" | awk -v name="$name" '$1 == name { printf "%s%s", sep, $2; sep = " " }')
    [ "$got" = "$expected" ] || echo "$name: expected '$expected', got '$got'"
  done
}
check "every Conv2d has forward, input- and weight-gradient rows, the first conv (on the images) no input gradient" "[ -z \"\$(directions_per_layer $work/conv-algos.log)\" ] && [ \$(conv_rows $work/conv-algos.log | wc -l) -eq 65 ]"
# direct runs a 1x1 forward when K is a multiple of 32, its gradients when C is, on AVX2+FMA or
# AVX-512; gemm runs everything else (the rule of layers/conv2d.md, from /proc/cpuinfo here).
simd=0
if grep -qw avx512f /proc/cpuinfo || { grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; }; then simd=1; fi
wrong_1x1() {  # rows of 1x1 convs whose algorithm breaks the rule; $2: whether SIMD kernels run
  conv_rows "$1" | awk -v simd="$2" '$6 == "1x1" {
    split($3, input, "x"); channels_in = input[4]; channels_out = $5 + 0
    multiple = ($2 == "forward") ? channels_out % 32 == 0 : channels_in % 32 == 0
    expected = (simd && multiple) ? "direct" : "gemm"
    if ($7 != expected) print $1, $2, $7, "expected", expected }'
}
check "1x1 convs run direct or gemm by the channel rule" "[ -z \"\$(wrong_1x1 $work/conv-algos.log $simd)\" ] && [ \$(conv_rows $work/conv-algos.log | awk '\$6 == \"1x1\"' | wc -l) -eq 15 ]"
check "head.conv's forward (1 output channel) names why direct was skipped" "conv_rows $work/conv-algos.log | grep '^head.conv *forward' | grep -q 'gemm *first runnable of --conv-algo direct,gemm (direct forward needs a multiple of 32 output channels'"
PNEUMO_CPU_ISA=scalar "$pneumo" summary --conv-algos --batch 2 > "$work/conv-algos-scalar.log" 2>&1
check "without SIMD kernels (PNEUMO_CPU_ISA=scalar) the default fast rule runs gemm everywhere" "[ $? -eq 0 ] && [ \$(conv_rows $work/conv-algos-scalar.log | awk '\$7 == \"gemm\"' | wc -l) -eq 65 ] && [ -z \"\$(wrong_1x1 $work/conv-algos-scalar.log 0)\" ] && [ \$(conv_rows $work/conv-algos-scalar.log | grep -c 'fast rule (the default fast): no SIMD kernels on this CPU: gemm') -eq 65 ]"
PNEUMO_CPU_ISA=scalar "$pneumo" summary --conv-algos --conv-algo direct,gemm --batch 2 > "$work/conv-algos-scalar-exact.log" 2>&1
check "without SIMD kernels direct,gemm runs gemm everywhere, saying why" "[ $? -eq 0 ] && [ \$(conv_rows $work/conv-algos-scalar-exact.log | awk '\$7 == \"gemm\"' | wc -l) -eq 65 ] && conv_rows $work/conv-algos-scalar-exact.log | grep -q 'first runnable of --conv-algo direct,gemm (direct needs AVX2+FMA or AVX-512'"
# The default, fast: a fixed rule per shape and instruction set (layers/conv_fast_rule.cpp).
"$pneumo" summary --conv-algos --batch 2 > "$work/conv-algos-fast.log" 2>&1
rc=$?
if [ $simd -eq 1 ]; then
  check "the default fast rule: Winograd F(4x4) on every 3x3 but the stem (gemm for the 512-channel weight gradients), each row saying the rule's why" "[ $rc -eq 0 ] && [ \$(conv_rows $work/conv-algos-fast.log | wc -l) -eq 65 ] && [ \$(conv_rows $work/conv-algos-fast.log | grep -c 'fast rule (the default fast): ') -eq 65 ] && [ \$(conv_rows $work/conv-algos-fast.log | awk '\$6 == \"3x3\" && \$1 != \"conv0\" && \$7 != \"winograd4\" && !(\$2 == \"weight-gradient\" && \$5 == \"512,\")' | wc -l) -eq 0 ] && conv_rows $work/conv-algos-fast.log | grep -q '^conv0 *forward .* direct '"
else
  echo "skipped: the default fast rule's SIMD choices (this CPU has no AVX2+FMA)"
fi
one_line_error "a strict --conv-algo winograd4 fails on the first 1x1 conv, by name" "down1.conv: .*1x1.*winograd4 runs 3x3 convolutions only" "$pneumo" summary --conv-algos --conv-algo winograd4
"$pneumo" summary --conv-algos --conv-algo winograd4,direct,gemm --batch 2 > "$work/conv-algos-w4.log" 2>&1
check "winograd4,direct,gemm: Winograd on every 3x3, the 1x1 convs say why not" "[ $? -eq 0 ] && [ \$(conv_rows $work/conv-algos-w4.log | awk '\$6 == \"3x3\" && \$7 != \"winograd4\"' | wc -l) -eq 0 ] && [ \$(conv_rows $work/conv-algos-w4.log | grep -c '1x1 .*(winograd4 runs 3x3 convolutions only, this one is 1x1') -eq 15 ]"

# auto, resolved as at run time: timed on a fresh tuning file, or read from `pneumo tune`'s.
tiny="--size 32 --channels 4 --blocks 1 --depth 2 --batch 8 --threads 1"
PNEUMO_CONV_TUNING=$work/no-tuning.txt "$pneumo" summary --conv-algos --conv-algo auto $tiny > "$work/conv-auto.log" 2>&1
# 8 convolutions (1 + 2 depths x (1 + 2) + 1), 3 directions each but conv0's input gradient.
check "auto without a tuning file times every shape" "[ $? -eq 0 ] && grep -q '^auto: timing every shape not in' $work/conv-auto.log && [ \$(conv_rows $work/conv-auto.log | wc -l) -eq 23 ] && [ \$(conv_rows $work/conv-auto.log | grep -c 'auto: timed ') -eq 23 ] && conv_rows $work/conv-auto.log | grep -q 'auto: timed now: gemm '"
slower_winner() {  # timed rows whose algorithm's time (2 decimals) is above the least they list
  conv_rows "$1" | awk '/auto: timed now: / {
    winner = $7; times = $0; sub(/.*auto: timed now: /, "", times)
    n = split(times, candidates, ", "); least = -1; own = -1
    for (i = 1; i <= n; ++i) {
      split(candidates[i], part, " ")
      if (least < 0 || part[2] + 0 < least) least = part[2] + 0
      if (part[1] == winner) own = part[2] + 0
    }
    if (own < 0 || own > least) print }'
}
check "auto picks the fastest of the times it lists" "[ -z \"\$(slower_winner $work/conv-auto.log)\" ]"
"$pneumo" tune $tiny --output "$work/tuning.txt" > "$work/tune.log" 2>&1
PNEUMO_CONV_TUNING=$work/tuning.txt "$pneumo" summary --conv-algos --conv-algo auto $tiny > "$work/conv-tuned.log" 2>&1
not_from_file() {  # rows whose algorithm is not the tuning file's for their direction and shape
  conv_rows "$1" | awk -v file="$2" 'BEGIN { while ((getline line < file) > 0) if (line !~ /^#/) {
      split(line, f, " "); choice[f[1] " " f[2] "x" f[3] "x" f[4] "x" f[5] " " f[6] " " f[7] "x" f[7]] = f[10] } }
    { key = $2 " " $3 " " ($5 + 0) " " $6; if (choice[key] != $7 || index($0, "auto: tuning file " file " (") == 0) print }'
}
check "auto reads pneumo tune's file: its choice, and says so" "[ -s $work/tuning.txt ] && [ \$(conv_rows $work/conv-tuned.log | wc -l) -eq 23 ] && [ -z \"\$(not_from_file $work/conv-tuned.log $work/tuning.txt)\" ]"
PNEUMO_CONV_TUNING=$work/tuning.txt "$pneumo" summary --conv-algos --conv-algo auto ${tiny/--batch 8/--batch 3} > "$work/conv-batch.log" 2>&1
check "another batch size takes the same layer's choice from the file" "[ \$(conv_rows $work/conv-batch.log | grep -c \"auto: tuning file $work/tuning.txt, as chosen at batch 8 (\") -eq 23 ]"
PNEUMO_CONV_TUNING=$work/tuning.txt "$pneumo" summary --conv-algos --conv-algo auto ${tiny/--threads 1/--threads 2} > "$work/conv-threads.log" 2>&1
check "another --threads is another key: timed, not read" "[ \$(conv_rows $work/conv-threads.log | grep -c 'auto: timed ') -eq 23 ] && grep -q ', 2 threads,' $work/conv-threads.log"

# The tuning file's folder is made without a shell (once `mkdir -p '<folder>'` through sh): a
# quote, ';' or space in the path is part of a name, never a command.
tiny1="--size 32 --channels 4 --blocks 1 --depth 2 --batch 1 --threads 1"
mkdir -p "$work/quotes"
quote_folder="$work/quotes/runs/a';touch PWNED;'b"
"$pneumo" tune $tiny1 --output "$quote_folder/t.txt" > "$work/tune-quote.log" 2>&1
rc=$?
tuned_into() {  # FILE: written under exactly that name, with a forward line, and nothing ran PWNED
  [ -s "$1" ] && grep -q '^forward ' "$1" && [ -z "$(find "$work" -name PWNED)" ] && [ ! -e PWNED ]
}
check "tune --output into a folder named a';touch PWNED;'b makes that folder and writes the file, running nothing" '[ $rc -eq 0 ] && [ -d "$quote_folder" ] && tuned_into "$quote_folder/t.txt"'
ann_file="$work/quotes/Ann's runs/t.txt"
PNEUMO_CONV_TUNING=$ann_file "$pneumo" tune $tiny1 > "$work/tune-ann.log" 2>&1
rc=$?
check "PNEUMO_CONV_TUNING in a folder named Ann's runs: written there" '[ $rc -eq 0 ] && [ -d "$work/quotes/Ann'"'"'s runs" ] && tuned_into "$ann_file" && grep -qF "wrote $ann_file" "$work/tune-ann.log"'
PNEUMO_CONV_TUNING=$ann_file "$pneumo" summary --conv-algos --conv-algo auto $tiny1 > "$work/conv-ann.log" 2>&1
check "... and read back from there" '[ $(conv_rows "$work/conv-ann.log" | grep -cF "auto: tuning file $ann_file (") -eq 23 ]'
# A run saves its choices in conv-algorithms.txt of its run directory: the same name rules.
PNEUMO_CONV_TUNING=$work/no-tuning.txt "$pneumo" train --data "$data" --size 32 --channels 4 --blocks 1 --depth 2 --batch 8 --epochs 1 --validation 8 --workers 1 --device cpu --conv-algo auto --run-dir "$work/quotes/runs/c';touch PWNED;'d" > "$work/train-quote.log" 2>&1
rc=$?
check "train --run-dir \".../runs/c';touch PWNED;'d\": conv-algorithms.txt written there, nothing run" '[ $rc -eq 0 ] && tuned_into "$work/quotes/runs/c'"'"';touch PWNED;'"'"'d/conv-algorithms.txt"'

# A tuning file that is not a small text file is a one-line error naming it (once a folder or
# /dev/zero was silently no tuning and a FIFO waited forever); a missing one is no tuning.
mkfifo "$work/fifo.txt"
one_line_error "a FIFO as PNEUMO_CONV_TUNING is refused at once, not waited on" "tuning file '$work/fifo.txt': is not a regular file" env PNEUMO_CONV_TUNING="$work/fifo.txt" timeout 60 "$pneumo" summary --conv-algos --conv-algo auto $tiny1
one_line_error "a folder as PNEUMO_CONV_TUNING is an error naming it" "tuning file '$work/quotes': is a folder" env PNEUMO_CONV_TUNING="$work/quotes" "$pneumo" summary --conv-algos --conv-algo auto $tiny1
# (Read only: a pneumo that failed this and then wrote its tuning file would replace /dev/zero.)
one_line_error "/dev/zero as PNEUMO_CONV_TUNING is an error naming it" "tuning file '/dev/zero': is not a regular file" env PNEUMO_CONV_TUNING=/dev/zero "$pneumo" summary --conv-algos --conv-algo auto $tiny1
printf 'forward 1 32 32 1 4 3 1 avx2 \033]0;owned\007 0.5\n' > "$work/escape.txt"
one_line_error "escape bytes in the tuning file are escaped in the error" "tuning file '$work/escape.txt' line 1: unknown algorithm '\\\\x1b\]0;owned\\\\x07'" env PNEUMO_CONV_TUNING="$work/escape.txt" "$pneumo" summary --conv-algos --conv-algo auto $tiny1

# The policy names its tuning file or there is none: --conv-tuning reads one, a file in the home
# folder (where `pneumo tune` writes by default) is never read unless named, and a run records
# the file it read and refuses another on --resume.
"$pneumo" summary --conv-algos --conv-algo auto --conv-tuning "$work/tuning.txt" $tiny > "$work/conv-option.log" 2>&1
check "--conv-tuning FILE: auto reads it, and the summary's policy line says so" "[ \$? -eq 0 ] && [ -z \"\$(not_from_file $work/conv-option.log $work/tuning.txt)\" ] && grep -qF \"auto reads tuning file '$work/tuning.txt', named by --conv-tuning\" $work/conv-option.log"
mkdir -p "$work/home"
env -u PNEUMO_CONV_TUNING -u XDG_CACHE_HOME HOME="$work/home" "$pneumo" tune $tiny1 > "$work/tune-home.log" 2>&1
env -u PNEUMO_CONV_TUNING -u XDG_CACHE_HOME HOME="$work/home" "$pneumo" summary --conv-algos --conv-algo auto $tiny1 > "$work/conv-home.log" 2>&1
check "a tuning file in the home folder is written by tune but not read unless named: every shape timed" "[ -s $work/home/.cache/pneumo/conv-tuning.txt ] && [ \$(conv_rows $work/conv-home.log | grep -c 'auto: timed ') -eq 23 ] && grep -q 'no tuning file: auto times each new shape' $work/conv-home.log"
"$pneumo" summary --conv-algos --conv-tuning "" $tiny1 > /dev/null 2> "$work/conv-empty.err"
check "an empty --conv-tuning is a usage error" "[ \$? -eq 2 ] && grep -q 'conv-tuning: expected a FILE, got an empty path' $work/conv-empty.err"
quote_run="$work/quotes/runs/c';touch PWNED;'d"
check "a run records the tuning file its policy named (config.txt conv_tuning)" 'grep -qF "conv_tuning = " "$quote_run/config.txt" && grep -qF "no-tuning.txt" "$quote_run/config.txt"'
one_line_error "--resume with another --conv-tuning is refused, naming the recorded one" "--conv-tuning cannot be changed when resuming: the run reads '$work/no-tuning.txt'" "$pneumo" train --resume "$quote_run" --conv-tuning "$work/tuning.txt"

# --show-conv-algos: every layer's choice once (layer, direction; not again at another batch),
# whatever made it: forced, a list, auto's tuning file or auto's timing (once only the timed).
reported() { grep '^conv: ' "$1"; }
once_each() {  # FILE COUNT WHY: COUNT report lines, each (layer, direction) once, each saying WHY
  [ "$(reported "$1" | wc -l)" -eq "$2" ] && [ -z "$(reported "$1" | awk '{ print $2, $3 }' | sort | uniq -d)" ] &&
    [ "$(reported "$1" | grep -cF -- "$3")" -eq "$2" ]
}
PNEUMO_CONV_TUNING=$work/no-tuning.txt "$pneumo" train --data "$data" --size 32 --channels 4 --blocks 1 --depth 2 --batch 8 --epochs 1 --validation 5 --workers 1 --device cpu --conv-algo gemm --show-conv-algos --run-dir "$work/show-forced" > /dev/null 2> "$work/show-forced.err"
rc=$?
check "train --conv-algo gemm --show-conv-algos: each of the 23 choices once, forced" '[ $rc -eq 0 ] && once_each "$work/show-forced.err" 23 " gemm       forced (--conv-algo gemm)" && grep -q "^conv: block1_1.conv1 *input-gradient *8x16x16x8 -> 8, 3x3 *gemm *forced" "$work/show-forced.err"'
PNEUMO_CONV_ALGO=winograd4,direct,gemm PNEUMO_CONV_TUNING=$work/no-tuning.txt "$pneumo" summary --conv-algos --show-conv-algos $tiny1 > /dev/null 2> "$work/show-list.err"
check "a PNEUMO_CONV_ALGO list: each choice once, from the list" 'once_each "$work/show-list.err" 23 "first runnable of PNEUMO_CONV_ALGO=winograd4,direct,gemm" && [ $(reported "$work/show-list.err" | grep -c " 3x3 *winograd4 ") -eq 14 ]'
PNEUMO_CONV_TUNING=$ann_file "$pneumo" summary --conv-algos --conv-algo auto --show-conv-algos $tiny1 > /dev/null 2> "$work/show-file.err"
check "auto from a tuning file: each choice once, naming the file" 'once_each "$work/show-file.err" 23 "auto: tuning file $ann_file ("'
"$pneumo" tune $tiny1 --show-conv-algos --output "$work/show-tuned.txt" > /dev/null 2> "$work/show-timed.err"
check "auto timing (pneumo tune): each choice once, with the times" 'once_each "$work/show-timed.err" 23 "auto: timed " && [ $(reported "$work/show-timed.err" | grep -c "auto: timed now: gemm ") -ge 1 ]'

# --precision bf16 (layers/precision.md): recorded in config.txt, reused and not changeable on
# --resume; the resumed run equals an uninterrupted bf16 run bit for bit, and differs from fp32.
"$pneumo" train $small --precision bf16 --run-dir "$work/bf16-full" > "$work/bf16-full.log" 2>&1
check "a bf16 run trains, says so in its log and records precision = bf16" "[ \$? -eq 0 ] && grep -q '^precision = bf16' $work/bf16-full/config.txt && grep -q 'precision: bf16' $work/bf16-full/log.txt"
check "fp32 runs record precision = fp32" "grep -q '^precision = fp32' $work/full/config.txt"
"$pneumo" train $small --precision bf16 --run-dir "$work/bf16-resumed" --stop-after 3 > /dev/null 2>&1
"$pneumo" train --resume "$work/bf16-resumed" > /dev/null 2>&1
check "a resumed bf16 run equals the uninterrupted one bit for bit, and not the fp32 run" "cmp -s $work/bf16-full/last.safetensors $work/bf16-resumed/last.safetensors && ! cmp -s $work/full/last.safetensors $work/bf16-full/last.safetensors"
one_line_error "--precision cannot be changed when resuming" "--precision cannot be changed when resuming" "$pneumo" train --resume "$work/bf16-resumed" --precision fp32
one_line_error "an unknown --precision names the choices" "--precision expects one of fp32, bf16" "$pneumo" train $small --precision fp16 --run-dir "$work/fp16"
"$pneumo" predict --checkpoint "$work/full/best.safetensors" --images "$data/stage_2_test_images" --precision bf16 --out "$work/submission-bf16.csv" --workers 2 > /dev/null 2>&1
check "predict --precision bf16 writes a submission of every test image" "[ \$? -eq 0 ] && [ \$(wc -l < $work/submission-bf16.csv) -eq 9 ]"
"$pneumo" summary --precision bf16 --batch 4 $tiny > "$work/summary-bf16.log" 2>&1
check "summary --precision bf16 budgets the rounded operands" "grep -q 'bf16 convolutions' $work/summary-bf16.log && grep -q 'conv bf16 operand copies' $work/summary-bf16.log"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
