#!/usr/bin/env bash
# The AVX2 + FMA kernels' gradient checks on any x86 host that runs them:
# a -march=x86-64-v3 build of the numeric suites (JEPA_NATIVE=OFF), run
# with ctest. On an AVX-512 machine the default build compiles those paths
# out (ops_infer.c's 6 x 16 tiles, ops_dw.c's cblas dW, ops_attn.c's AVX2
# blocks, vec.h's 8 lanes), so without this they are checked only where CI
# happens to land on an AVX2 CPU. Label long (a second build, ~4 minutes
# on 2 cores). Exit 77 (skipped) on a CPU without AVX2 and FMA.
. "$(dirname "$0")/lib.sh"
if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
  echo "avx2_paths: this CPU has no AVX2 + FMA: skipped"; exit 77
fi
SUITES="test_ops test_model test_lejepa test_world_model test_sigreg test_probe test_infer"
run cfg cmake -S "$S" -B "$T/b" -DCMAKE_BUILD_TYPE=Release -DJEPA_NATIVE=OFF -DCMAKE_C_FLAGS=-march=x86-64-v3
[ "$RC" -eq 0 ] && ok "configured an x86-64-v3 build" || bad "cmake: rc $RC: $ERR"
run bld cmake --build "$T/b" -j2 --target $SUITES
[ "$RC" -eq 0 ] && ok "built $SUITES" || bad "build: rc $RC: $(printf '%s' "$ERR" | tail -3)"
# the build really runs AVX2 code and no AVX-512 (our kernels are linked
# in statically; OpenBLAS, a shared library, is not in the binary)
z=$(objdump -d "$T/b/tests/test_ops" 2>/dev/null | grep -c '%zmm'); y=$(objdump -d "$T/b/tests/test_ops" 2>/dev/null | grep -c '%ymm')
[ "$z" = 0 ] && [ "${y:-0}" -gt 100 ] && ok "test_ops: $y instructions on ymm registers, none on zmm" \
  || bad "test_ops is not an AVX2 build: $z zmm and '$y' ymm instructions"
re="^($(printf '%s' "$SUITES" | tr ' ' '|'))\$"
run tst ctest --test-dir "$T/b" -R "$re" --output-on-failure
n=$(printf '%s\n' "$OUT" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\)/\1 \2/p')
[ "$RC" -eq 0 ] && [ "$n" = "0 7" ] && ok "the 7 numeric suites pass on the AVX2 paths" \
  || bad "AVX2 suites: rc $RC, failed/total '$n': $(printf '%s\n' "$OUT" | grep -E 'Failed|FAIL' | head -5)"
finish
