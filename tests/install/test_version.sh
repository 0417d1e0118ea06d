#!/usr/bin/env bash
# Checks `pneumo --version` field by field against independent sources: the CMake project
# version and configured commit, the CUDA/cuDNN/cuBLAS headers the build used, the OpenBLAS
# library file the binary loads (ldd), the kernels OpenBLAS is told to use, nvidia-smi for the
# GPUs and /proc/cpuinfo for the CPU features.
# Usage: test_version.sh PNEUMO VERSION COMMIT CUDA_ARCHITECTURES|none [CUDA_INCLUDE_DIR CUDNN_INCLUDE_DIR]
set -u
pneumo=$1 version=$2 commit=$3 architectures=$4 cuda_include=${5:-} cudnn_include=${6:-}
cuda_include=${cuda_include%%;*}  # CMake may pass a list
pneumo=$(readlink -f "$pneumo")  # it runs from /
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"

report=$(cd / && env -u OPENBLAS_CORETYPE -u PNEUMO_OPENBLAS_SELECTED "$pneumo" --version)
rc=$?
echo "$report" | sed 's/^/  | /'
field() { printf '%s\n' "$report" | grep -m1 "^$1: " | cut -d' ' -f2-; }

check "--version exits 0 from another directory" "[ $rc -eq 0 ]"
check "first line is 'pneumo $version'" "[ \"\$(printf '%s\n' \"\$report\" | head -1)\" = 'pneumo $version' ]"
check "every other line is 'key: value'" "[ \$(printf '%s\n' \"\$report\" | tail -n +2 | grep -cv '^[a-z0-9 ]*: .') -eq 0 ]"
check "'pneumo version' prints the same block" "[ \"\$(cd / && env -u OPENBLAS_CORETYPE -u PNEUMO_OPENBLAS_SELECTED \"$pneumo\" version)\" = \"\$report\" ]"
check "'pneumo version --help' exits 0" "\"$pneumo\" version --help | grep -q 'bug report'"
check "commit is the configured one ($commit)" "[ \"\$(field commit | cut -d' ' -f1)\" = '$commit' ]"
check "commit looks like a commit or 'unknown'" "field commit | grep -Eq '^([0-9a-f]{12}|unknown) '"
check "compiler names the compiler and its version" "field compiler | grep -Eq '^(GNU|Clang|AppleClang|IntelLLVM) [0-9]+\.[0-9]+'"
for key in cuda cudnn cublas openblas mpi nccl 'data pipeline' gpus cpu 'cpu features'; do
  check "has a '$key' line" "[ -n \"\$(field '$key')\" ] || [ '$key' = cudnn -o '$key' = cublas ]"
done

header_define() { grep -m1 -E "^#define $2 " "$1" | awk '{print $3}'; }
if [ "$architectures" = none ]; then
  check "cuda: not built in" "field cuda | grep -q '^not built in'"
else
  check "cuda lists the architectures $architectures" "field cuda | grep -qF 'architectures $architectures;'"
  if [ -n "$cuda_include" ] && [ -f "$cuda_include/cuda_runtime_api.h" ]; then
    cudart=$(header_define "$cuda_include/cuda_runtime_api.h" CUDART_VERSION)
    expected="$((cudart / 1000)).$((cudart % 1000 / 10))"
    check "cuda runtime built with $expected (cuda_runtime_api.h)" "field cuda | grep -Eq 'runtime [0-9]+\.[0-9]+ \((built with $expected|built with the same)\)' && field cuda | grep -q 'runtime $expected\|built with $expected'"
  fi
  if [ -n "$cudnn_include" ] && [ -f "$cudnn_include/cudnn_version.h" ]; then
    h="$cudnn_include/cudnn_version.h"
    expected="$(header_define "$h" CUDNN_MAJOR).$(header_define "$h" CUDNN_MINOR).$(header_define "$h" CUDNN_PATCHLEVEL)"
    check "cudnn version and headers $expected (cudnn_version.h)" "field cudnn | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+ ' && field cudnn | grep -q '^$expected (built with the same)\|(built with $expected)'"
  fi
  if [ -n "$cuda_include" ] && [ -f "$cuda_include/cublas_api.h" ]; then
    h="$cuda_include/cublas_api.h"
    expected="$(header_define "$h" CUBLAS_VER_MAJOR).$(header_define "$h" CUBLAS_VER_MINOR).$(header_define "$h" CUBLAS_VER_PATCH)"
    check "cublas version and headers $expected (cublas_api.h)" "field cublas | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+ ' && field cublas | grep -q '^$expected (built with the same)\|(built with $expected)'"
  fi
fi

openblas_file=$(ldd "$pneumo" | awk '/libopenblas/ {print $3; exit}')
if [ -n "$openblas_file" ]; then
  # Debian names the real file libopenblasp-r0.3.21.so (or libopenblas-r0.3.21.so).
  loaded=$(readlink -f "$openblas_file" | sed -n 's/.*-r\([0-9][0-9.]*[0-9]\)\.so.*/\1/p')
  check "openblas names the version of the library loaded (${loaded:-?})" "[ -n '$loaded' ] && field openblas | grep -q '^OpenBLAS $loaded '"
  forced=$(cd / && OPENBLAS_CORETYPE=Haswell "$pneumo" --version | grep '^openblas: ')
  check "openblas reports the kernels selected at run time (OPENBLAS_CORETYPE=Haswell)" "printf '%s' \"\$forced\" | grep -q 'kernels Haswell (AVX2), from the environment'"
  if grep -qw avx512f /proc/cpuinfo; then
    check "openblas kernels on this AVX-512 machine are AVX-512 ones" "field openblas | grep -q '(AVX-512'"
  fi
else
  check "openblas: not built in" "field openblas | grep -q '^not built in'"
fi

check "mpi line says what is built in" "field mpi | grep -Eq '^(not built in|.*MPI [0-9])'"
check "nccl line says what is built in" "field nccl | grep -Eq '^(not built in|[0-9]+\.[0-9]+\.[0-9]+)'"

gpus=0
if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; then gpus=$(nvidia-smi -L | grep -c '^GPU '); fi
if [ "$gpus" -eq 0 ]; then
  check "gpus: 'no GPU: <reason>' without a GPU" "field gpus | grep -Eq '^no GPU: .{10,}'"
else
  check "gpus: $gpus, as nvidia-smi -L" "[ \"\$(field gpus)\" = '$gpus' ] && [ \$(printf '%s\n' \"\$report\" | grep -c '^gpu [0-9]*: ') -eq $gpus ]"
fi

features=" $(field 'cpu features') "
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
for feature in avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8; do
  in_cpuinfo=no in_report=no
  case "$cpu_flags" in *" $feature "*) in_cpuinfo=yes ;; esac
  case "$features" in *" $feature "*) in_report=yes ;; esac
  check "cpu feature $feature: reported $in_report, /proc/cpuinfo $in_cpuinfo" "[ $in_report = $in_cpuinfo ]"
done
check "cpu line counts the threads used" "field cpu | grep -Eq ', [0-9]+ hardware threads, [0-9]+ used$'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
