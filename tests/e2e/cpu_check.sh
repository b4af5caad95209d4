#!/usr/bin/env bash
# launch/cpu_check.c: a build refuses, in one line and with exit 2, a CPU
# without an instruction set it was compiled for (simulated with
# JEPA_CPU_CHECK_MISSING, since this CPU has them all), before it writes
# anything: -march=native (JEPA_NATIVE=ON) or the build's own C flags
# (JEPA_CFLAGS, e.g. -march=x86-64-v3); a generic build checks nothing.
. "$(dirname "$0")/lib.sh"
: "${JEPA_NATIVE:?JEPA_NATIVE must say ON or OFF}" "${JEPA_CC:?JEPA_CC must name the C compiler}"
native=0
[ "$JEPA_NATIVE" = ON ] && native=1 # CMake passes ON or OFF
# the instruction sets the build's flags give the compiler (word-split on purpose)
march=(); [ $native = 1 ] && march=(-march=native)
# shellcheck disable=SC2086
feats=$("$JEPA_CC" ${JEPA_CFLAGS:-} "${march[@]}" -dM -E - </dev/null 2>/dev/null)
fix="-DJEPA_NATIVE=OFF"; [ $native = 1 ] || fix="flags this CPU supports"
progs=(jepa-train jepa-eval jepa-launch jepa-shard jepa-world jepa-plan bench-step)
for f in avx2 avx512f avx512vbmi gfni bmi2; do
  macro=__$(echo "$f" | tr a-z A-Z)__
  has=0
  printf '%s\n' "$feats" | grep -q "#define $macro 1" && has=1
  for prog in "${progs[@]}"; do
    run "$prog" env JEPA_CPU_CHECK_MISSING=$f "$B/$prog" --help
    if [ $has = 1 ]; then
      expect_error "$prog refuses a CPU without $f" 2 "this build uses $f" "this CPU has no $f" "$fix"
      [ -z "$OUT" ] && ok "$prog wrote nothing to stdout" || bad "$prog wrote to stdout: $OUT"
    else
      case "$ERR" in
        *"this CPU has no"*) bad "$prog refused $f, which this build does not use: $ERR" ;;
        *) [ "$RC" -eq 0 ] && [ -n "$OUT" ] && ok "$prog: $f unused by this build, not checked" ||
             bad "$prog --help with $f missing: rc $RC, stdout '$OUT': $ERR" ;;
      esac
    fi
  done
done
run train "$B/jepa-train" --help
[ "$RC" -eq 0 ] && [ -n "$OUT" ] && ok "jepa-train --help runs without the override" ||
  bad "jepa-train --help: exit $RC: $ERR"
finish
