#!/usr/bin/env bash
# What status says of Slurm jobs that ended without writing their state, on
# a real one-node Slurm (slurm_fixture.sh; ~10 s):
#   1. a held job: `submitted` while squeue lists it; `pending (Slurm job
#      J queued)` when its state says running (as a requeued job's does: it
#      said running); after scancel `stale (Slurm job J is gone)` (it said
#      submitted for ever);
#   2. a running job cancelled (scancel): `stale (Slurm job J is gone)`
#      with where a resume starts (it said running), and the trainer's last
#      line, its checkpoint on SIGTERM, is in slurm-J.out and RUN/srun.err
#      (the tee that copied it died with the job);
#   3. a sweep whose --slurm array is still queued (held) is neither
#      submitted again as a second array nor run here: one line naming the
#      job (every point ran twice); each point names its array task, and
#      after scancel its status is stale.
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
. "$(dirname "$0")/slurm_fixture.sh"
pack_fmnist || { finish; exit 1; }
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.log_every=4 --set train.batch_per_rank=32
       --set parallel.threads_per_rank=1 --set parallel.ranks=1 --set eval.probe=false --set slurm.partition=debug
       --set slurm.time=00:05:00 "${DATA[@]}")
SPEC="$S/configs/fmnist-tiny.yaml"
# gone J: waits (up to 40 s) until squeue no longer lists job J
gone() {
  for _ in $(seq 160); do [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0; sleep 0.25; done
  return 1
}

# ---- 1. a held job, cancelled before it started
run held "$L" slurm "$SPEC" "${SMALL[@]}" --set train.steps=8 --set run.dir="$T/held" --set slurm.extra=--hold
J=$(cat "$T/held/slurm_job" 2>/dev/null)
run st "$L" status "$T/held"
[ "$RC" -eq 0 ] && [ "$OUT" = "held: submitted" ] && ok "a held job: submitted" || bad "status held: rc $RC: $OUT $ERR"
# what a requeued job leaves: its state says running, squeue PD (BeginTime;
# here JobHeldUser, the same PENDING to squeue)
echo "running job=$J attempt=0" >"$T/held/state"
run st "$L" status "$T/held"
[ "$RC" -eq 0 ] && [ "$OUT" = "held: pending (Slurm job $J queued)" ] && ok "running, but queued again: pending" \
  || bad "status held, running but queued: rc $RC: $OUT $ERR"
echo submitted >"$T/held/state"
scancel "$J"; gone "$J"
run st "$L" status "$T/held"
[ "$RC" -eq 0 ] && [ "$OUT" = "held: stale (Slurm job $J is gone), resume starts over (no checkpoint)" ] \
  && ok "after scancel of the held job: stale (Slurm job $J is gone)" || bad "status held after scancel: rc $RC: $OUT $ERR"

# ---- 2. a running job cancelled: its trainer checkpoints on SIGTERM
run live "$L" slurm "$SPEC" "${SMALL[@]}" --set train.steps=0 --set train.minutes=1 --set run.dir="$T/live"
J=$(cat "$T/live/slurm_job" 2>/dev/null)
for _ in $(seq 240); do [ -s "$T/live/metrics.jsonl" ] && break; sleep 0.25; done
run st "$L" status "$T/live"
case "$OUT" in "live: running job=$J attempt=0, step "*) ok "a running job: running" ;; *) bad "status live: $OUT $ERR" ;; esac
scancel "$J"; gone "$J" || bad "job $J still listed 40 s after scancel"
run st "$L" status "$T/live"
case "$OUT" in "live: stale (Slurm job $J is gone), step "*", resume from step "*) ok "after scancel: stale, where a resume starts" ;;
  *) bad "status live after scancel: rc $RC: $OUT $ERR" ;; esac
line='jepa-train: stopped by signal 15 after step'
grep -q "^$line" "$T/live/slurm-$J.out" && grep -q "^$line" "$T/live/srun.err" \
  && ok "the trainer's last line is in slurm-$J.out and srun.err" \
  || bad "no '$line' in slurm-$J.out ($(tail -2 "$T/live/slurm-$J.out" | tr '\n' ' ')) or srun.err"
# ---- 3. a sweep's array still queued: not submitted again, not run here
cat >"$T/sw.yaml" <<EOF2
base: $SPEC
dir: $T/sw
set: {model.width: 32, model.depth: 2, eval.pool_blocks: 1, model.heads: 2, model.pred_width: 16, model.pred_depth: 1,
      model.pred_heads: 2, train.steps: 8, train.batch_per_rank: 32, parallel.threads_per_rank: 1, parallel.ranks: 1,
      eval.probe: false, slurm.partition: debug, slurm.extra: --hold, data.train: $T/fm/train, data.test: $T/fm/test}
grid:
  optim.lr: [0.001, 0.0005]
EOF2
run sw1 "$L" sweep "$T/sw.yaml" --slurm
A=$(cat "$T/sw/slurm_job" 2>/dev/null)
[ "$RC" -eq 0 ] && [ "$(cat "$T/sw/point-001/slurm_job" 2>&1)" = "${A}_1" ] && ok "sweep --slurm: array $A, point-001 names task ${A}_1" \
  || bad "sweep --slurm: rc $RC, point-001/slurm_job $(cat "$T/sw/point-001/slurm_job" 2>&1): $OUT $ERR"
h0=$(cat "$T/sw/sweep.sbatch" "$T"/sw/point-00*/state "$T/sw/slurm_job" | sha256sum)
run sw2 "$L" sweep "$T/sw.yaml" --slurm
expect_error "a second sweep --slurm while the array is queued" 2 \
  "$T/sw: point-000 belongs to Slurm job ${A}_0, still PENDING (squeue): a sweep runs each point once; scancel $A,"
printf '#!/bin/sh\nexit 0\n' >"$T/okrun" && chmod +x "$T/okrun"
run sw3 env JEPA_MPIRUN="$T/okrun" "$L" sweep "$T/sw.yaml"
expect_error "the sweep run here while its array is queued" 2 "$T/sw: point-000 belongs to Slurm job ${A}_0, still PENDING"
[ "$(cat "$T/sw/sweep.sbatch" "$T"/sw/point-00*/state "$T/sw/slurm_job" | sha256sum)" = "$h0" ] \
  && ok "the refused sweeps wrote nothing" || bad "a refused sweep changed $T/sw"
[ "$(squeue -h -r | wc -l)" = 2 ] && ok "one array of 2 tasks queued, no second" || bad "queue: $(squeue -h -r | tr '\n' ' ')"
scancel "$A"; gone "$A"
run st "$L" status "$T/sw"
[ "$OUT" = "point-000: stale (Slurm job ${A}_0 is gone), resume starts over (no checkpoint)
point-001: stale (Slurm job ${A}_1 is gone), resume starts over (no checkpoint)
0 of 2 points finished" ] && ok "after scancel of the array: both points stale" || bad "status sw: rc $RC: $OUT $ERR"
finish
