#!/usr/bin/env bash
# Builds the Debian package with cpack (into WORK_DIR, not the build tree), checks its fields and
# that its Depends cover every Debian package owning a library the built binaries load, unpacks
# it with `dpkg -x` into a scratch root and runs the unpacked pneumo from an unrelated directory:
# --version, then a tiny pipeline (synth, train, predict, evaluate, summary) and a benchmark.
# Usage: test_package.sh BUILD_DIR WORK_DIR VERSION. Exit 77 (SKIPPED) without the dpkg tools.
set -u
build=$(readlink -f "$1") work=$(readlink -m "$2") version=$3
for tool in cpack dpkg-deb dpkg-shlibdeps dpkg-query; do
  if ! command -v "$tool" > /dev/null 2>&1; then
    echo "SKIPPED test_package: $tool not found (a Debian machine with dpkg-dev is needed to build the .deb)"
    exit 77
  fi
done
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

start=$(date +%s)
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/cpack") > "$work/cpack.log" 2>&1
rc=$?
deb=$(ls "$work"/cpack/*.deb 2> /dev/null | head -1)
check "cpack -G DEB builds a package ($(($(date +%s) - start)) s)" "[ $rc -eq 0 ] && [ -n '$deb' ]"
if [ -z "$deb" ]; then
  tail -20 "$work/cpack.log"
  echo "$passed passed, $failed failed"
  exit 1
fi
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb -f "$deb" Package Version Architecture Depends | sed 's/^/  | /'
check "package is pneumo $version" "[ \"\$(dpkg-deb -f '$deb' Package)\" = pneumo ] && [ \"\$(dpkg-deb -f '$deb' Version)\" = '$version' ]"

# The independent source for Depends: which installed Debian package owns each library the built
# binaries link directly (NEEDED; libraries outside any package, such as the CUDA toolkit's, are
# skipped). Depends must name that package, or a package that itself depends on it (Debian's
# libopenblas0 stands for libopenblas0-pthread | -openmp | -serial).
depends=" $(dpkg-deb -f "$deb" Depends | sed 's/([^)]*)//g; s/[,|]/ /g') "
libraries=$(for binary in "$build/pneumo" "$build"/bench_*; do
  [ -x "$binary" ] || continue
  for needed in $(objdump -p "$binary" | awk '$1 == "NEEDED" {print $2}'); do
    ldd "$binary" | awk -v name="$needed" '$1 == name && $3 ~ /^\// {print $3; exit}'
  done
done | sort -u)
# One dpkg-query for all of them (it reads the whole database each time); a path through a
# symlink (Debian's alternatives) is looked up as the real file too.
owners=$(dpkg-query -S $libraries $(for library in $libraries; do readlink -f "$library"; done) 2> /dev/null |
  cut -d: -f1 | sort -u)
covered() {  # owner package -> 0 when Depends names it or a package depending on it
  case "$depends" in *" $1 "*) return 0 ;; esac
  local dependency
  for dependency in $depends; do
    dpkg-query -W -f '${Depends}' "$dependency" 2> /dev/null | sed 's/([^)]*)//g; s/[,|]/ /g' |
      tr ' ' '\n' | grep -qxF "$1" && return 0
  done
  return 1
}
for owner in $owners; do
  check "Depends covers $owner (owns a library the binaries link)" "covered '$owner'"
done
for wanted in libdcmtk libjpeg62-turbo libopenblas; do
  if ldd "$build/pneumo" | grep -q "${wanted#lib}"; then
    check "Depends has a $wanted package" "printf '%s' \"\$depends\" | grep -q '$wanted'"
  fi
done
if ldd "$build/pneumo" | grep -q libcudart; then
  check "description says the CUDA libraries come from the CUDA toolkit" "dpkg-deb -f '$deb' Description | grep -q 'CUDA toolkit'"
fi

root=$work/root
dpkg -x "$deb" "$root"
check "dpkg -x unpacks usr/bin/pneumo" "[ -x $root/usr/bin/pneumo ]"
check "README and teaching pages in usr/share/doc/pneumo" "[ -f $root/usr/share/doc/pneumo/README.md ] && [ -f $root/usr/share/doc/pneumo/layers/conv2d.md ] && [ -f $root/usr/share/doc/pneumo/data/evaluation/metric.md ]"
check "comparison scripts in usr/share/pneumo/benchmarks" "[ -x $root/usr/share/pneumo/benchmarks/pytorch_network.py ] && [ -f $root/usr/share/pneumo/benchmarks/data/notebook_postprocess.py ]"
check "benchmarks in usr/libexec/pneumo with usr/bin/pneumo-bench-* links" "[ -x $root/usr/libexec/pneumo/bench_network ] && [ -x $root/usr/bin/pneumo-bench-network ]"

# Run from an empty directory with a minimal environment: nothing may come from the build or
# source tree.
run=$work/run
mkdir -p "$run"
installed() { (cd "$run" && env -i PATH=/usr/bin:/bin HOME="$run" "$@"); }
pneumo=$root/usr/bin/pneumo
installed "$pneumo" --version > "$work/version.log" 2>&1
check "unpacked pneumo --version" "[ $? -eq 0 ] && [ \"\$(head -1 $work/version.log)\" = 'pneumo $version' ]"
installed "$pneumo" synth --out data --train-images 16 --test-images 4 --image-size 256 --seed 5 > "$work/synth.log" 2>&1
check "unpacked pneumo synth" "[ $? -eq 0 ] && [ \$(ls $run/data/stage_2_train_images | wc -l) -eq 16 ]"
installed "$pneumo" train --data data --size 32 --channels 2 --blocks 1 --depth 2 --batch 4 --epochs 1 \
  --validation 4 --workers 1 --device cpu --run-dir run > "$work/train.log" 2>&1
check "unpacked pneumo train (tiny)" "[ $? -eq 0 ] && [ -f $run/run/best.safetensors ] && [ -s $run/run/curves.png ]"
installed "$pneumo" predict --checkpoint run/best.safetensors --images data/stage_2_test_images --out submission.csv \
  --device cpu > "$work/predict.log" 2>&1
check "unpacked pneumo predict" "[ $? -eq 0 ] && [ \$(tail -n +2 $run/submission.csv | wc -l) -eq 4 ]"
installed "$pneumo" evaluate --labels data/synthetic_test_labels.csv --submission submission.csv > "$work/evaluate.log" 2>&1
check "unpacked pneumo evaluate" "[ $? -eq 0 ] && grep -q '^mAP' $work/evaluate.log"
installed "$pneumo" summary > "$work/summary.log" 2>&1
check "unpacked pneumo summary" "[ $? -eq 0 ] && grep -q '12718305\|12,718,305' $work/summary.log"
installed "$root/usr/bin/pneumo-bench-network" --help > "$work/bench.log" 2>&1
check "unpacked pneumo-bench-network --help (through its link)" "[ $? -eq 0 ] && grep -q '^usage: bench_network' $work/bench.log"

for log in train predict; do
  [ -f "$work/$log.log" ] && tail -3 "$work/$log.log" | sed "s/^/  $log | /"
done
echo "$passed passed, $failed failed ($(($(date +%s) - start)) s)"
[ "$failed" -eq 0 ]
