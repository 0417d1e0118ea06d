#!/usr/bin/env bash
# The TensorBoard event files of tiny `pneumo train` runs, read back by tests/apps/check_event_files.py:
# an uninterrupted run (with --inspect-every, its last step recorded), a run stopped after 3 steps
# and resumed (two event files, the same scalars as the uninterrupted run), and --force over a
# run (its old event files go).
#   READER hand: the hand-rolled parser under Debian's /usr/bin/python3
#   READER tensorboard: TensorBoard's own reader from the peers' environment ($PNEUMO_PEERS_VENV,
#   default ~/.cache/pneumo-peers-venv; benchmarks/peers/setup-venv.sh); SKIPPED (exit 77) without it.
# In a build without protobuf (HAVE_TENSORBOARD OFF) it checks that `pneumo train` says once that
# no event files are written, writes none, and exits 77 (SKIPPED).
# Usage: test_tensorboard_files.sh PNEUMO_BINARY WORK_DIR READER HAVE_TENSORBOARD
set -u
pneumo=$1 work=$2 reader=$3 have=$4
here=$(dirname "${BASH_SOURCE[0]}")
rm -rf "$work" && mkdir -p "$work"
source "$here/../support/checks.sh"
case $reader in
  hand) python=/usr/bin/python3 ;;
  tensorboard) python=${PNEUMO_PEERS_VENV:-$HOME/.cache/pneumo-peers-venv}/bin/python ;;
  *) echo "usage: test_tensorboard_files.sh PNEUMO WORK hand|tensorboard ON|OFF"; exit 2 ;;
esac
if [ "$have" = ON ]; then
  if ! [ -x "$python" ] || ! "$python" -c 'import numpy' 2> /dev/null; then
    echo "SKIPPED test_tensorboard_files_$reader: no $python with numpy"
    exit 77
  fi
  if [ "$reader" = tensorboard ] && ! "$python" -c 'import tensorboard' 2> /dev/null; then
    echo "SKIPPED test_tensorboard_files_tensorboard: no tensorboard in $python (run benchmarks/peers/setup-venv.sh)"
    exit 77
  fi
fi

data=$work/data
"$pneumo" synth --out "$data" --train-images 40 --test-images 2 --image-size 128 --seed 5 > "$work/synth.log" 2>&1
# 32 training images in batches of 8: 4 steps per epoch, 8 in all; --inspect-every 4 records 1, 4, 8.
small="--data $data --size 32 --channels 4 --blocks 1 --depth 2 --batch 8 --epochs 2 --validation 8 --workers 2 --device cpu"
"$pneumo" train $small --inspect-every 4 --run-dir "$work/full" > "$work/full.log" 2>&1
check "uninterrupted run succeeds" "[ $? -eq 0 ] && [ -f $work/full/history.csv ]"
events() { ls "$1" | grep -c '^events\.out\.tfevents\.'; }

if [ "$have" != ON ]; then
  check "a build without protobuf says once that it writes no TensorBoard files" \
    "[ \$(grep -c 'TensorBoard: not available in this build' $work/full.log) -eq 1 ]"
  check "and writes none" "[ \$(events $work/full) -eq 0 ]"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  echo "SKIPPED test_tensorboard_files_$reader: this build has no TensorBoard event files (built without protobuf)"
  exit 77
fi

check "the run writes one event file and names it" "[ \$(events $work/full) -eq 1 ] && grep -q 'TensorBoard: .*events.out.tfevents' $work/full.log"
"$python" "$here/check_event_files.py" --reader "$reader" --recorded-step 8 "$work/full" 2>&1 | grep -v -i 'warn'
check "$reader reader: the uninterrupted run's events equal its history.csv and last.safetensors" "[ \${PIPESTATUS[0]} -eq 0 ]"

"$pneumo" train $small --inspect-every 4 --run-dir "$work/resumed" --stop-after 3 > "$work/stop.log" 2>&1
"$pneumo" train --resume "$work/resumed" --inspect-every 4 > "$work/resume.log" 2>&1
check "stopped and resumed run finishes with two event files" "[ $? -eq 0 ] && [ \$(events $work/resumed) -eq 2 ]"
"$python" "$here/check_event_files.py" --reader "$reader" --recorded-step 8 --same-as "$work/full" "$work/resumed" 2>&1 |
  grep -v -i 'warn'
check "$reader reader: the resumed run's events equal its history.csv and the uninterrupted run's" "[ \${PIPESTATUS[0]} -eq 0 ]"

"$pneumo" train $small --run-dir "$work/resumed" --force > "$work/force.log" 2>&1
check "--force over a run replaces its event files with the new run's one" "[ $? -eq 0 ] && [ \$(events $work/resumed) -eq 1 ]"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
