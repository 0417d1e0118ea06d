#!/usr/bin/env bash
# End-to-end checks of data-parallel `pneumo train` under mpirun on a small synthetic dataset
# (engine/distributed.md): 2 ranks print the single process's loss, metrics and mAP; an
# interrupted 2-rank run resumed under 2 ranks equals the uninterrupted one bit for bit; SIGTERM
# to the ranks stops every rank at the same step, saves `last` and exits 130; a killed rank ends
# the job within 60 s naming the lost rank, and the checkpoint on disk loads; a batch that does
# not divide over the ranks is a clear error.
# Usage: test_mpi_cli.sh PNEUMO_BINARY WORK_DIR MPIRUN
set -u
pneumo=$1
work=$2
mpirun="$3 --oversubscribe --bind-to none"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PNEUMO_COLLECTIVE_TIMEOUT=30
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

data=$work/data
"$pneumo" synth --out "$data" --train-images 40 --test-images 4 --image-size 256 --seed 3 > "$work/synth.log" 2>&1
small="--data $data --size 64 --channels 4 --blocks 1 --depth 3 --batch 6 --epochs 2 --validation 8 --workers 1 --device cpu"
"$pneumo" train $small --run-dir "$work/one" > "$work/one.log" 2>&1
check "single-process run" "[ $? -eq 0 ]"
$mpirun -np 2 "$pneumo" train $small --run-dir "$work/two" > "$work/two.log" 2>&1
check "2-rank run succeeds and says it is data parallel" "[ $? -eq 0 ] && grep -q 'data parallel: 2 ranks (MPI), 3 images of every batch of 6' $work/two.log"
# history.csv: epoch,lr,train loss,acc,iou,val loss,acc,iou,mAP,seconds. Loss and accuracy agree to
# 5e-3 (float summation order, amplified over 10 Adam steps through the ReLU(0) network's max-pool ties:
# tests/distributed/test_data_parallel.cpp); the mean IoU of thresholded masks (columns 5 and 8) to
# 5e-2: a few pixels crossing 0.5 move a small mask's IoU by that much (on an AVX2 machine, epoch 2's
# train IoU was 0.536 in one process and 0.569 over 2 ranks, while the losses differed by 2e-4);
# the mAP of the gathered boxes is equal.
close_histories() {
  paste -d, "$1" "$2" | awk -F, 'NR > 1 { for (i = 2; i <= 8; ++i) { d = $i - $(i + 10); if (d < 0) d = -d;
                                                                   if (d > ((i == 5 || i == 8) ? 5e-2 : 5e-3)) bad = 1 }
                                            if ($9 != $19) bad = 1; rows++ } END { exit (bad || rows != 2) }'
}
check "2 ranks: loss, accuracy, IoU (train and validation) and validation mAP equal the single process" "close_histories $work/one/history.csv $work/two/history.csv"
check "only rank 0 writes: one log line per epoch" "[ \$(grep -c '^epoch 2/2:' $work/two/log.txt) -eq 1 ]"

$mpirun -np 2 "$pneumo" train $small --run-dir "$work/resumed" --stop-after 3 > "$work/stop.log" 2>&1
rc=$?
check "2 ranks, --stop-after: exit 130 and a checkpoint" "[ $rc -eq 130 ] && grep -q 'interrupted: saved' $work/stop.log"
$mpirun -np 2 "$pneumo" train --resume "$work/resumed" > "$work/resume.log" 2>&1
check "2 ranks: --resume finishes" "[ $? -eq 0 ] && grep -q resuming $work/resume.log"
check "2 ranks: resumed checkpoint equals the uninterrupted 2-rank run bit for bit" "cmp -s $work/two/last.safetensors $work/resumed/last.safetensors"

# Waits (up to 60 s) for FILE to exist.
wait_for() { for _ in $(seq 300); do [ -f "$1" ] && return 0; sleep 0.2; done; return 1; }
# The pid of the rank RANK started by mpirun PID.
rank_pid() { for child in $(pgrep -P "$1"); do tr '\0' '\n' < /proc/$child/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo $child; done; }

$mpirun -np 2 "$pneumo" train $small --epochs 100 --run-dir "$work/term" > "$work/term.log" 2>&1 &
job=$!
wait_for "$work/term/last.safetensors"
sleep 0.5
kill -TERM $(pgrep -P $job)  # what srun/scancel and a terminal's Ctrl-C deliver: a signal to every rank
wait $job
rc=$?
check "SIGTERM to the ranks: every rank stops, rank 0 saves last, exit 130" "[ $rc -eq 130 ] && grep -q 'interrupted: saved' $work/term.log"
$mpirun -np 2 "$pneumo" train --resume "$work/term" --stop-after 1 > "$work/term-resume.log" 2>&1
check "the SIGTERM checkpoint resumes" "[ $? -eq 130 ] && grep -q resuming $work/term-resume.log"

$mpirun -np 2 "$pneumo" train $small --epochs 100 --run-dir "$work/killed" > "$work/killed.log" 2>&1 &
job=$!
wait_for "$work/killed/last.safetensors"
sleep 0.5
start=$(date +%s)
kill -KILL $(rank_pid $job 1)
wait $job
rc=$?
took=$(( $(date +%s) - start ))
check "a killed rank ends the job non-zero within 60 s ($took s) naming rank 1" "[ $rc -ne 0 ] && [ $took -le 60 ] && grep -q 'rank 1' $work/killed.log"
"$pneumo" predict --checkpoint "$work/killed/last.safetensors" --images "$data/stage_2_test_images" --out "$work/killed.csv" --device cpu > "$work/killed-predict.log" 2>&1
check "the checkpoint on disk after the lost rank loads" "[ $? -eq 0 ] && [ -s $work/killed.csv ]"

$mpirun -np 4 "$pneumo" train $small --run-dir "$work/uneven" > "$work/uneven.log" 2>&1
check "a batch that does not divide over the ranks is a clear error" "[ $? -ne 0 ] && grep -q 'the global batch of 6 images does not divide over 4 ranks' $work/uneven.log"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
