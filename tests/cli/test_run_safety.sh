#!/usr/bin/env bash
# A user's files are never lost or misread (the hardening issue): a kill at every rename of a
# training run resumes to the uninterrupted run's checkpoints, history and curves; a run directory
# is locked; empty paths are usage errors; a new run refuses the root and folders holding other
# files; outputs never replace inputs; config.txt values read back exactly; resume refuses a
# checkpoint, configuration or dataset that disagree, and reuses the run's convolution setting.
# Usage: test_run_safety.sh PNEUMO_BINARY WORK_DIR
set -u
pneumo=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"
compare="/usr/bin/env python3 $(dirname "${BASH_SOURCE[0]}")/compare_runs.py"

one_line_error() {  # description, expected exit code, expected text, command...
  local description=$1 code=$2 expected=$3
  shift 3
  local output
  output=$("$@" 2>&1 >/dev/null)
  local rc=$?
  if [ $rc -eq "$code" ] && [ "$(printf '%s\n' "$output" | wc -l)" -eq 1 ] && printf '%s' "$output" | grep -qF -- "$expected"; then
    pass "$description"
  else
    fail "$description (rc $rc, expected $code: $output)"
  fi
}

data=$work/data
"$pneumo" synth --out "$data" --train-images 24 --test-images 4 --image-size 128 --seed 3 > "$work/synth.log" 2>&1
small=(--data "$data" --size 32 --channels 4 --blocks 1 --depth 2 --batch 8 --epochs 2 --validation 8 --workers 2 --device cpu)
"$pneumo" train "${small[@]}" --run-dir "$work/reference" > "$work/reference.log" 2>&1
check "the reference run trains" "[ $? -eq 0 ] && [ -f $work/reference/last.safetensors ]"

# ---- a kill at every rename: --resume yields the uninterrupted run --------------------------------
if command -v strace > /dev/null && strace -o /dev/null true 2> /dev/null; then
  strace -f -o "$work/renames.strace" -e trace=rename "$pneumo" train "${small[@]}" --run-dir "$work/counted" > /dev/null 2>&1
  renames=$(grep -c 'rename(' "$work/renames.strace")
  check "a run renames files into place ($renames renames)" "[ $renames -ge 10 ]"
  bad=""
  for k in $(seq 1 "$renames"); do
    run=$work/killed-$k
    (strace -f -o /dev/null -e trace=rename -e inject=rename:signal=KILL:when=$k \
      "$pneumo" train "${small[@]}" --run-dir "$run" > "$run.log" 2>&1; exit $?) 2> /dev/null  # no "Killed" line
    rc=$?
    if [ $rc -ne 137 ]; then bad="$bad $k(not killed: rc $rc)"; continue; fi
    # What a user does next: --resume a run that has its config.txt, else the same command again.
    if [ -f "$run/config.txt" ]; then
      "$pneumo" train --resume "$run" >> "$run.log" 2>&1
    else
      "$pneumo" train "${small[@]}" --run-dir "$run" >> "$run.log" 2>&1
    fi
    rc=$?
    leftovers=$(ls -A "$run" | grep -c '\.tmp')
    if [ $rc -ne 0 ] || ! $compare "$work/reference" "$run" > "$run.compare" || [ "$leftovers" -ne 0 ] ||
       [ "$(tail -n +2 "$run/history.csv" | wc -l)" -ne 2 ]; then
      bad="$bad $k(rc $rc, $(tr '\n' ' ' < "$run.compare")leftovers $leftovers)"
    fi
    rm -rf "$run"
  done
  check "killed at each of the $renames renames, --resume gives the uninterrupted run's checkpoints, history and curves, no temporaries${bad:+ (failed at:$bad)}" "[ -z \"$bad\" ]"
else
  echo "SKIPPED: the kill-at-every-rename checks need strace with ptrace permission"
fi

# Temporaries of a killed writer are gone after the next run.
"$pneumo" train "${small[@]}" --run-dir "$work/stale" --stop-after 1 > /dev/null 2>&1
touch "$work/stale/best.safetensors.tmp-999999999-1" "$work/stale/curves.png.tmp.999999999.0" "$work/stale/config.txt.tmp"
"$pneumo" train --resume "$work/stale" > /dev/null 2>&1
check "temporaries of dead writers are removed when the run goes on" "[ \$(ls -A $work/stale | grep -c tmp) -eq 0 ]"

# ---- one process per run directory ---------------------------------------------------------------
"$pneumo" train "${small[@]}" --epochs 500 --run-dir "$work/busy" > "$work/busy.log" 2>&1 &
busy=$!
for _ in $(seq 1 100); do grep -q '^epoch 1/' "$work/busy.log" 2> /dev/null && break; sleep 0.1; done
one_line_error "a second process on a training run is refused, naming the holder" 1 "in use by 'pneumo train (pid $busy on" \
  "$pneumo" train --resume "$work/busy"
one_line_error "a new run into a folder another process trains in is refused" 1 "in use by 'pneumo train (pid $busy on" \
  "$pneumo" train "${small[@]}" --run-dir "$work/busy" --force
kill -KILL $busy 2> /dev/null
wait $busy 2> /dev/null
"$pneumo" train --resume "$work/busy" --stop-after 1 > /dev/null 2>&1
check "the lock dies with its process: the run resumes after a kill -9" "[ $? -eq 130 ]"

# ---- empty paths, the root folder, folders that are not a run's ------------------------------------
one_line_error "train --run-dir '' is a usage error" 2 "--run-dir expects a path" "$pneumo" train "${small[@]}" --run-dir ""
one_line_error "explore --out '' is a usage error" 2 "--out expects a path" "$pneumo" explore --data "$data" --out ""
one_line_error "predict --out '' is a usage error" 2 "--out expects a path" \
  "$pneumo" predict --checkpoint "$work/reference/best.safetensors" --images "$data/stage_2_test_images" --out ""
one_line_error "inspect --out '' is a usage error" 2 "--out expects a path" "$pneumo" inspect --preset cpu --out ""
one_line_error "train --resume '' is a usage error" 2 "--resume expects a path" "$pneumo" train --resume ""
one_line_error "--run-dir / is refused" 1 "is the root folder" "$pneumo" train "${small[@]}" --run-dir /
mkdir -p "$work/photos" && echo keep > "$work/photos/holiday.jpg"
one_line_error "a folder holding other files is refused" 1 "holds files that are not a training run's ('holiday.jpg')" \
  "$pneumo" train "${small[@]}" --run-dir "$work/photos"
check "... and its files are untouched" "[ \"\$(ls -A $work/photos)\" = holiday.jpg ] && grep -qx keep $work/photos/holiday.jpg"
"$pneumo" train "${small[@]}" --epochs 1 --run-dir "$work/photos" --force > /dev/null 2>&1
check "--force writes the run beside them" "[ -f $work/photos/last.safetensors ] && grep -qx keep $work/photos/holiday.jpg"
one_line_error "a new run over an existing run is refused" 1 "already holds a training run" \
  "$pneumo" train "${small[@]}" --run-dir "$work/reference"

# ---- outputs never replace inputs ----------------------------------------------------------------
cp "$work/reference/best.safetensors" "$work/model.safetensors"
sum_before=$(md5sum < "$work/model.safetensors")
one_line_error "predict --out equal to --checkpoint is refused" 1 "is the same file as the input --checkpoint" \
  "$pneumo" predict --checkpoint "$work/model.safetensors" --images "$data/stage_2_test_images" --out "$work/model.safetensors"
ln -sf model.safetensors "$work/link.safetensors"
one_line_error "... also through a symbolic link" 1 "is the same file as the input --checkpoint" \
  "$pneumo" predict --checkpoint "$work/link.safetensors" --images "$data/stage_2_test_images" --out "$work/model.safetensors"
cp "$data/synthetic_test_labels.csv" "$work/labels.csv"
one_line_error "predict --out equal to --labels is refused" 1 "is the same file as the input --labels" \
  "$pneumo" predict --checkpoint "$work/model.safetensors" --images "$data/stage_2_test_images" --labels "$work/labels.csv" --out "$work/labels.csv"
first_dcm=$(ls "$data/stage_2_test_images" | head -1)
one_line_error "predict --out onto one of its DICOMs is refused" 1 "is a DICOM name in the image folder" \
  "$pneumo" predict --checkpoint "$work/model.safetensors" --images "$data/stage_2_test_images" --out "$data/stage_2_test_images/$first_dcm"
cp "$data/stage_2_test_images/$first_dcm" "$work/x.dcm"
one_line_error "show --out equal to --dicom is refused" 1 "is the same file as the input --dicom" \
  "$pneumo" show --dicom "$work/x.dcm" --out "$work/x.dcm"
if "$pneumo" --help | grep -q '^  export'; then
  one_line_error "export --onnx equal to --checkpoint is refused" 1 "is the same file as the input --checkpoint" \
    "$pneumo" export --checkpoint "$work/model.safetensors" --onnx "$work/model.safetensors"
  one_line_error "export --reference-out equal to --onnx is refused" 1 "is the same file as --onnx" \
    "$pneumo" export --checkpoint "$work/model.safetensors" --onnx "$work/m.onnx" --reference-images "$data/stage_2_test_images" --reference-out "$work/m.onnx"
fi
check "the inputs are intact" "[ \"\$(md5sum < $work/model.safetensors)\" = \"$sum_before\" ] && cmp -s $work/labels.csv $data/synthetic_test_labels.csv && cmp -s $work/x.dcm $data/stage_2_test_images/$first_dcm && [ ! -e $work/m.onnx ]"

# ---- config.txt values read back exactly ---------------------------------------------------------
cp -r "$data" "$work/dsT "
"$pneumo" train "${small[@]}" --data "$work/dsT " --run-dir "$work/space" --stop-after 1 > /dev/null 2>&1
mv "$work/dsT " "$work/dsT-moved" && mkdir -p "$work/dsT"  # a folder without the space: the wrong one
"$pneumo" train --resume "$work/space" > "$work/space.log" 2>&1
check "a data folder with a trailing space is not trimmed on resume" "[ $? -ne 0 ] && grep -qF \"$work/dsT \" $work/space.log"
mv "$work/dsT-moved" "$work/dsT " && rmdir "$work/dsT"
"$pneumo" train --resume "$work/space" > /dev/null 2>&1
check "... and the run resumes on its own folder" "[ $? -eq 0 ] && [ \$(tail -n +2 $work/space/history.csv | wc -l) -eq 2 ]"
newline_dir="$work/new
line"
"$pneumo" train "${small[@]}" --run-dir "$newline_dir" --stop-after 1 > /dev/null 2>&1
"$pneumo" train --resume "$newline_dir" > /dev/null 2>&1
check "a run folder whose name holds a newline resumes" "[ $? -eq 0 ] && [ -f \"$newline_dir/best.safetensors\" ]"
mkdir -p "$newline_dir/config.txt.d" && cp -r "$newline_dir" "$work/nl-copy" && rm -f "$newline_dir/config.txt" && mkdir "$newline_dir/config.txt"
one_line_error "an error naming a path with a newline stays one line" 1 'new\x0aline/config.txt: is a folder' \
  "$pneumo" train --resume "$newline_dir"
cp -r "$work/reference" "$work/badconfig" && sed -i 's/^workers = .*/workers = 100000/' "$work/badconfig/config.txt"
one_line_error "a bad value in config.txt is reported under its field, not the CLI flag" 1 "config.txt: field 'workers' expects 1..256" \
  "$pneumo" train --resume "$work/badconfig"
mkdir -p "$work/folderconfig" && mkdir "$work/folderconfig/config.txt"
one_line_error "a config.txt that is a folder is named" 1 "config.txt: is a folder" "$pneumo" train --resume "$work/folderconfig"
one_line_error "--checkpoint naming a folder is named" 1 "$work/folderconfig: is a folder" \
  "$pneumo" predict --checkpoint "$work/folderconfig" --images "$data/stage_2_test_images" --out "$work/never.csv"

# ---- resume refuses a run that disagrees with itself ----------------------------------------------
"$pneumo" train "${small[@]}" --size 64 --run-dir "$work/other64" --stop-after 1 > /dev/null 2>&1
"$pneumo" train "${small[@]}" --run-dir "$work/mixed" --stop-after 1 > /dev/null 2>&1
cp "$work/other64/last.safetensors" "$work/mixed/last.safetensors"
one_line_error "a checkpoint of another network is refused, naming the field" 1 "field 'network.input_size' is '64' in the checkpoint but '32'" \
  "$pneumo" train --resume "$work/mixed"
"$pneumo" train "${small[@]}" --run-dir "$work/edited" --stop-after 1 > /dev/null 2>&1
sed -i 's/^network.leaky_slope = .*/network.leaky_slope = 0.2/' "$work/edited/config.txt"
one_line_error "config.txt edited to another slope is refused" 1 "field 'network.leaky_slope'" "$pneumo" train --resume "$work/edited"
"$pneumo" train "${small[@]}" --run-dir "$work/edited2" --stop-after 1 > /dev/null 2>&1
sed -i 's/^network.dropout = .*/network.dropout = 0.5/' "$work/edited2/config.txt"
one_line_error "config.txt edited to another dropout is refused" 1 "field 'network.dropout'" "$pneumo" train --resume "$work/edited2"
cp -r "$data" "$work/data2"
"$pneumo" train "${small[@]}" --data "$work/data2" --run-dir "$work/datachanged" --stop-after 1 > /dev/null 2>&1
sed -i '$ d' "$work/data2/stage_2_train_labels.csv"
one_line_error "a dataset whose labels changed is refused" 1 "field 'run.data_fingerprint'" "$pneumo" train --resume "$work/datachanged"

# ---- the convolution setting is part of the run ----------------------------------------------------
"$pneumo" train "${small[@]}" --channels 8 --run-dir "$work/wino-full" --conv-algo winograd4,direct,gemm > /dev/null 2>&1
"$pneumo" train "${small[@]}" --channels 8 --run-dir "$work/wino" --conv-algo winograd4,direct,gemm --stop-after 3 > /dev/null 2>&1
check "config.txt records the convolution setting" "grep -qx 'conv_algorithms = winograd4,direct,gemm' $work/wino/config.txt"
"$pneumo" train --resume "$work/wino" > "$work/wino.log" 2>&1
check "resume without the flag computes with the run's setting, bit for bit the uninterrupted run" \
  "[ $? -eq 0 ] && $compare $work/wino-full $work/wino > /dev/null && grep -q 'conv_algorithms of' $work/wino.log"
"$pneumo" train "${small[@]}" --channels 8 --run-dir "$work/wino2" --conv-algo winograd4,direct,gemm --stop-after 3 > /dev/null 2>&1
one_line_error "resume with another --conv-algo is refused" 1 "cannot be changed when resuming" \
  "$pneumo" train --resume "$work/wino2" --conv-algo direct,gemm

# ---- the GPU's numerics settings are part of the run too ----------------------------------------
check "config.txt records TF32 and the cuDNN search" "grep -qx 'tf32 = off' $work/wino/config.txt && grep -qx 'cudnn = heuristic' $work/wino/config.txt"
one_line_error "--cudnn takes heuristic, find or deterministic" 2 "--cudnn expects one of heuristic, find, deterministic" \
  "$pneumo" train "${small[@]}" --run-dir "$work/cudnn" --cudnn fastest
one_line_error "resume with another --cudnn is refused" 1 "--cudnn cannot be changed when resuming" \
  "$pneumo" train --resume "$work/wino2" --cudnn deterministic

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
