#!/usr/bin/env bash
# benchmarks/gpu-check.sh survives its own time limit: stopped by SIGTERM in the middle of a
# stage (here the CPU-test stage, on a machine without a GPU), it still leaves report.txt with
# every stage that ran, says where it stopped, and packs its logs.
# Usage: test_gpu_check.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -u
source_dir=$1
build_dir=$2
work=$3
if [ "${PNEUMO_GPU_CHECK_RUNNING:-0}" = 1 ]; then
  echo "SKIPPED test_gpu_check.sh: already inside benchmarks/gpu-check.sh (it would run the check again)"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work"
source "$source_dir/tests/support/checks.sh"

out=$work/out
# SKIP_BUILD: the tree this CTest runs in; CTEST_REGEX: one slow-enough test per stage.
BUILD_DIR=$build_dir SKIP_BUILD=1 CTEST_REGEX='^test_conv2d' DEVICE=cuda \
  bash "$source_dir/benchmarks/gpu-check.sh" --allow-no-gpu --out "$out" > "$work/check.log" 2>&1 &
check_pid=$!
for _ in $(seq 1 600); do grep -q -- '---- stage cpu-tests' "$out/report.txt" 2> /dev/null && break; sleep 0.1; done
kill -TERM $check_pid
wait $check_pid
rc=$?
report=$out/report.txt
check "the check exits non-zero when stopped" "[ $rc -ne 0 ]"
check "report.txt names every stage that ran" "grep -q -- '---- stage environment' $report && grep -q -- '---- stage gpu-tests' $report && grep -q -- '---- stage benchmark' $report && grep -q -- '---- stage cpu-tests' $report"
check "it reports the GPU entries expected and how many passed" "grep -qE 'GPU test entries: [0-9]+ expected, [0-9]+ passed' $report"
if ! nvidia-smi -L > /dev/null 2>&1; then
  check "without a GPU, no GPU entry passed: a failure of the check" "grep -q 'FAILED: none of the' $report"
fi
check "it says where SIGTERM stopped it" "grep -q 'FAILED: stopped by SIGTERM during stage cpu-tests' $report && grep -q 'last stage: cpu-tests' $report"
check "the logs are packed" "tar -tzf $out/logs.tar.gz | grep -q 'logs/ctest-gpu.log'"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
