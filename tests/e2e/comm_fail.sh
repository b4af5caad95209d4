#!/bin/bash
# comm_fail.sh - a fatal error on one rank ends the whole MPI job promptly:
# rank 1 calls comm_fatal while rank 0 waits in MPI_Allreduce; the job must
# exit non-zero within seconds (no hang) and name the rank and the message.
. "$(dirname "$0")/lib.sh"
MPIEXEC="${JEPA_MPIEXEC:-mpirun}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# control: no failure, exit 0, all steps done
run ok timeout 30 "$MPIEXEC" -np 2 "$B/comm-fail" ok
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q '^step 4 sum 9$'; then ok "control run"
else bad "control run: exit $RC, stdout: $OUT, stderr: $ERR"; fi

for btl in "" "--mca btl self,tcp"; do
  t0=$(date +%s%N)
  # shellcheck disable=SC2086
  run fatal timeout 30 "$MPIEXEC" -np 2 $btl "$B/comm-fail" fatal
  ms=$(( ($(date +%s%N) - t0) / 1000000 )) # bash integers: no bc on a fresh Debian (scripts/setup.sh)
  dt=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
  desc="fatal on rank 1${btl:+ ($btl)}"
  if [ "$RC" -eq 0 ] || [ "$RC" -eq 124 ]; then bad "$desc: exit $RC (0 = not stopped, 124 = hung)"
  elif ! printf '%s\n' "$ERR" | grep -qx 'jepa: rank 1: bad data path /x'; then
    bad "$desc: stderr lacks the line 'jepa: rank 1: bad data path /x': $ERR"
  elif printf '%s' "$OUT" | grep -q '^step 3'; then bad "$desc: rank 0 went on past the failure: $OUT"
  elif [ "$ms" -gt 10000 ]; then bad "$desc: took ${dt}s"
  else ok "$desc: exit $RC in ${dt}s"; fi
done

run any timeout 30 "$MPIEXEC" -np 2 "$B/comm-fail" any-error
if [ "$RC" -eq 1 ] && printf '%s' "$ERR" | grep -q 'rank 1 failed during setup' \
   && [ -z "$OUT" ]; then ok "any-error agreed on rank 1"
else bad "any-error: exit $RC, stdout: $OUT, stderr: $ERR"; fi
finish
