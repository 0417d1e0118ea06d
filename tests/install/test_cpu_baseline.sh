#!/usr/bin/env bash
# `pneumo` starts on any x86-64 CPU: nothing compiled for AVX runs before apps/main.cpp has
# checked the CPU (kernels/cpu/cpu_isa.h, cpu_runs_compiled_arithmetic), and on a CPU without
# AVX2+FMA it reports instead of dying on an illegal instruction.
#   1. Static: in the binary's disassembly, main and every static initializer (_GLOBAL__sub_I_*,
#      which run before main) hold no VEX/EVEX instruction (v* mnemonics, ymm/zmm registers).
#   2. Dynamic, with QEMU's user-mode emulator and a CPU model without AVX (-cpu Nehalem; Debian:
#      qemu-user): `pneumo version` runs and says the CPU lacks what the arithmetic needs,
#      `pneumo synth` refuses with that message (exit 1, not SIGILL); with an AVX2 model
#      (-cpu Haswell) the same binary says it runs. Skipped, saying so, without qemu-x86_64.
# Usage: test_cpu_baseline.sh PNEUMO WORK_DIR
set -u
pneumo=$(readlink -f "$1") work=$2
source "$(dirname "${BASH_SOURCE[0]}")/../support/checks.sh"
case "$(uname -m)" in x86_64) ;; *) echo "SKIPPED test_cpu_baseline: not an x86-64 machine"; exit 77 ;; esac
command -v objdump > /dev/null || { echo "SKIPPED test_cpu_baseline: objdump not found (Debian: binutils)"; exit 77; }
rm -rf "$work" && mkdir -p "$work"

# 1. main and the static initializers: instructions with a VEX/EVEX form start with 'v' in
# objdump's AT&T listing (vmovdqu, vpxor, vzeroupper, vfmadd...).
objdump -d --no-show-raw-insn -C "$pneumo" | awk '
  /^[0-9a-f]+ <.*>:$/ { name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name);
                        early = (name == "main" || name ~ /^_GLOBAL__sub_I_/); next }
  early && NF >= 2 { split($0, field, "\t"); mnemonic = field[2]; sub(/ .*/, "", mnemonic);
                     if (mnemonic ~ /^v/ || $0 ~ /%[yz]mm/) print name ": " $0 }' > "$work/early-avx.txt"
initializers=$(objdump -t "$pneumo" | grep -c '_GLOBAL__sub_I_')
check "main and the $initializers static initializers hold no AVX instruction" "[ ! -s '$work/early-avx.txt' ]"
head -20 "$work/early-avx.txt"
avx_functions=$(objdump -d --no-show-raw-insn "$pneumo" | grep -c 'vfmadd')
check "the binary does hold AVX2+FMA code elsewhere ($avx_functions vfmadd instructions)" "[ $avx_functions -gt 0 ]"

# 2. On an emulated CPU without AVX.
qemu=$(command -v qemu-x86_64 || command -v qemu-x86_64-static)
if [ -z "$qemu" ]; then
  echo "$passed passed, $failed failed (the emulated run SKIPPED: qemu-x86_64 not found; Debian: qemu-user)"
  [ $failed -eq 0 ] || exit 1
  exit 77
fi
old_cpu=(env -u PNEUMO_CPU_ISA -u OPENBLAS_CORETYPE "$qemu" -cpu Nehalem)
report=$(cd "$work" && "${old_cpu[@]}" "$pneumo" version 2>&1)
rc=$?
echo "$report" | sed 's/^/  | /'
check "'pneumo version' runs on a CPU without AVX (exit $rc)" "[ $rc -eq 0 ]"
check "the report lists no AVX among the CPU features" "printf '%s\n' \"\$report\" | grep -q '^cpu features: none of'"
check "the report says the arithmetic needs what this CPU lacks" "printf '%s\n' \"\$report\" | grep '^cpu paths:' | grep -q 'LACKS'"
check "the report says the vector kernels run scalar" "printf '%s\n' \"\$report\" | grep -q '^cpu paths: vector kernels scalar'"
message=$(cd "$work" && "${old_cpu[@]}" "$pneumo" synth --out "$work/synth" --train-images 2 --test-images 1 --image-size 64 2>&1)
rc=$?
echo "$message" | sed 's/^/  | /'
check "'pneumo synth' refuses there with exit 1 (not an illegal instruction: $rc)" "[ $rc -eq 1 ]"
check "and says why" "printf '%s\n' \"\$message\" | grep -q 'lacks AVX2 or FMA'"
check "nothing was written" "[ ! -e '$work/synth' ]"
report=$(cd "$work" && env -u PNEUMO_CPU_ISA "$qemu" -cpu Haswell "$pneumo" version 2>&1)
check "with an emulated AVX2 CPU (-cpu Haswell) the report says the CPU runs it" \
  "printf '%s\n' \"\$report\" | grep -q '^cpu paths: vector kernels avx2; .*which this CPU runs$'"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
