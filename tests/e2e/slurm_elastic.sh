#!/usr/bin/env bash
# A Slurm requeue that comes back with another task count (issue 17 §2), on
# a real one-node Slurm (the fixture of tests/e2e/slurm.sh: slurm-wlm and
# munge installed if missing, daemons started here and stopped by pid):
#   - a batch job of 2 tasks trains a tiny model (global batch 24 = 2 x 12)
#     and stops after step 20 with its checkpoint (exit 75);
#   - the job is requeued held, updated to 1 task (and to start now: Slurm
#     delays a requeued job's start) and released: the same job
#     (SLURM_RESTART_COUNT 1) starts srun with the task count of its new
#     allocation (SLURM_TASKS_PER_NODE; SLURM_NTASKS still says the submitted
#     2) and resume=auto, trains 24 records per step on 1 rank to step 40;
#   - the same records as a straight 2-rank run at every step, its final
#     state within the summation-order tolerance of tests/e2e/elastic.sh.
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"

. "$(dirname "$0")/slurm_fixture.sh"

pack_fmnist || { finish; exit 1; }
PARAM_TOL=1e-5 # as tests/e2e/elastic.sh
records() { cat "$1"/rank-*.trace | grep -v loss | sort -u -k1,1n -k2,2n; }
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.log_every=1 --set train.steps=40
       --set train.batch_per_rank=12 --set parallel.threads_per_rank=1 --set eval.probe=false "${DATA[@]}")
SPEC="$S/configs/fmnist-tiny.yaml"

# the straight 2-rank run, under Slurm too (srun -n 2 inside an allocation)
mkdir -p "$T/trs" "$T/trq"
job() { # NAME: the batch script; the first attempt stops after step 20
  cat >"$T/$1.sh" <<JOB
#!/bin/bash
#SBATCH --job-name=$1
#SBATCH --ntasks=2
#SBATCH --requeue
#SBATCH --output=$T/$1-%j.out
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# the allocation's tasks: SLURM_TASKS_PER_NODE is "2" or "2(x3),1" (per node)
n=0
IFS=, read -ra per <<<"\$SLURM_TASKS_PER_NODE"
for p in "\${per[@]}"; do
  if [[ \$p =~ ^([0-9]+)\(x([0-9]+)\)\$ ]]; then n=\$((n + BASH_REMATCH[1] * BASH_REMATCH[2])); else n=\$((n + p)); fi
done
r=\${SLURM_RESTART_COUNT:-0}
echo "restart \$r ntasks \$n" >>"$T/$1.attempts"
resume=()
if [ "$1" = requeued ] && [ "\$r" -eq 0 ]; then export JEPA_DEBUG_STOP_STEP=20; fi
[ "\$r" -gt 0 ] && resume=(--set resume=auto)
srun --mpi=pmix -n "\$n" "$B/jepa-train" "$SPEC" $(printf '%q ' "${SMALL[@]}") \\
  --set run.dir="$T/$1" "\${resume[@]}"
JOB
}
# wait_ended JOB [FILE N]: until the job's state is final (and FILE holds N
# lines), or 300 s; scontrol keeps an ended job for MinJobAge (300 s)
wait_ended() {
  local t0=$(date +%s) st
  while :; do
    st=$(scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
    case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)
      [ -z "${2:-}" ] || [ "$(grep -c '' "$2" 2>/dev/null)" -ge "$3" ] && return 0 ;; esac
    [ $(( $(date +%s) - t0 )) -gt 300 ] && return 1
    sleep 1
  done
}
job straight
SJ=$(JEPA_DEBUG_DATA_TRACE="$T/trs" sbatch --parsable "$T/straight.sh")
job requeued
QJ=$(JEPA_DEBUG_DATA_TRACE="$T/trq" sbatch --parsable "$T/requeued.sh")
[ -n "$SJ" ] && [ -n "$QJ" ] && ok "submitted jobs $SJ (straight) and $QJ (stops after step 20)" || bad "sbatch failed"
wait_ended "$QJ" "$T/requeued.attempts" 1 && [ -e "$T/requeued/checkpoints/step-00000020.ckpt" ] && [ ! -e "$T/requeued/summary.json" ] \
  && ok "job $QJ stopped after step 20 with its checkpoint (2 tasks)" \
  || bad "job $QJ: $(cat "$T"/requeued-*.out 2>&1 | tail -n 3)"
scontrol requeuehold "$QJ" && scontrol update JobId="$QJ" NumTasks=1 NumCPUs=1 StartTime=now \
  && scontrol release "$QJ" \
  && ok "job $QJ requeued held, updated to 1 task, released" || bad "scontrol requeue/update/release of $QJ failed"
sleep 2
wait_ended "$QJ" "$T/requeued.attempts" 2; wait_ended "$SJ"
[ "$(cat "$T/requeued.attempts" 2>/dev/null | tr '\n' ' ')" = "restart 0 ntasks 2 restart 1 ntasks 1 " ] \
  && ok "the same job ran again as restart 1 with 1 task" || bad "attempts: $(cat "$T/requeued.attempts" 2>&1)"
grep -q '"ranks": 1' "$T/requeued/summary.json" 2>/dev/null && grep -q '"resumed_from": 20' "$T/requeued/summary.json" \
  && ok "requeued job: 1 rank resumed from step 20 and finished" \
  || bad "requeued summary: $(cat "$T/requeued/summary.json" 2>&1) $(tail -n 3 "$T"/requeued-*.out)"
grep -q "global batch 24: 1 ranks of 24 (the checkpoint's 2 ranks of 12)" "$T"/requeued-*.out \
  && ok "it trained 24 records a step on 1 rank" || bad "no global batch line: $(tail -n 3 "$T"/requeued-*.out)"
grep -q '"ranks": 2' "$T/straight/summary.json" 2>/dev/null && ok "straight job: 2 ranks, 40 steps" \
  || bad "straight job: $(cat "$T"/straight-*.out | tail -n 3)"
if [ "$(records "$T/trs" | grep -c '')" -eq $((40 * 24)) ] && cmp -s <(records "$T/trs") <(records "$T/trq"); then
  ok "2 tasks to step 20 + 1 task to 40: the straight run's records at all 40 steps"
else bad "records differ: $(diff <(records "$T/trs") <(records "$T/trq") | head -n 3 | tr '\n' ' ')"; fi
out=$("$B/ckpt-diff" "$T/straight/checkpoint.bin" "$T/requeued/checkpoint.bin" 2>&1)
echo "$out" | awk -v t=$PARAM_TOL '$5 + 0 > t + 0 || $5 != $5 + 0 {b = 1} END {exit b || NR != 4}' \
  && ok "final state within $PARAM_TOL of the straight run ($(echo "$out" | awk '{printf "%s %s; ", $1, $5}'))" \
  || bad "final state: $out"
finish
