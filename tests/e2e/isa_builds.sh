#!/usr/bin/env bash
# Every source compiles for CPUs other than this one: an AVX-512 CPU
# without AVX512_BF16 (Skylake-X; the bf16 kernels carry their own target
# attribute, and nothing without it may call a bf16 intrinsic inline), and
# AVX2 and plain x86-64. -O0: always_inline intrinsics fail there too, and
# every file takes well under a second.
. "$(dirname "$0")/lib.sh"
CC="${JEPA_CC:-cc}"
INC=()
for d in trainer comm common shard launch world; do INC+=(-I"$S/$d"); done
for arch in skylake-avx512 x86-64-v3 x86-64; do
  if ! echo 'int main(void){return 0;}' | "$CC" -march="$arch" -x c -c -o /dev/null - 2>/dev/null; then
    ok "skipped: $CC has no -march=$arch"
    continue
  fi
  n=0 failed=0
  for f in "$S"/trainer/*.c "$S"/shard/*.c "$S"/world/*.c; do # comm/: MPI, no vectors
    [ -f "$f" ] || continue
    n=$((n + 1))
    if ! "$CC" -std=c11 -O0 -march="$arch" -fopenmp -D_POSIX_C_SOURCE=200809L "${INC[@]}" \
      -c "$f" -o /dev/null 2>"$T/err"; then
      bad "-march=$arch: ${f#$S/}: $(grep -m1 error "$T/err")"
      failed=1
    fi
  done
  [ "$failed" -eq 0 ] && ok "-march=$arch: $n sources compile"
done
finish
