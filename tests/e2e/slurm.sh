#!/usr/bin/env bash
# Real Slurm on localhost: installs slurm-wlm and munge if missing, writes a
# one-node slurm.conf in a temp directory (CPUs from nproc), starts munged,
# slurmctld and slurmd itself, submits a tiny 2-rank run through
# `jepa-launch slurm` (hostile job name and run directory; a run.dir that
# begins with '-' and holds '%'), a 2-point sweep as a job array through
# `jepa-launch sweep --slurm` (its dir holds '%a'), a run stopped under
# Slurm and sent back with `jepa-launch resume`, waits for them
# (squeue + the runs' state files; no accounting database), checks results,
# and stops the daemons it started, by pid, even on failure.
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"

. "$(dirname "$0")/slurm_fixture.sh"

pack_fmnist || { finish; exit 1; }
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=12 --set train.log_every=4
       --set train.batch_per_rank=32 --set parallel.threads_per_rank=1 --set eval.probe=false "${DATA[@]}")
SENT="$T/pwned"
HOSTILE="j \"q\" 'x' \$(touch $SENT); \`touch $SENT\`"
RUN="$T/run \"one\" 'q' \$(touch $SENT); x"

# wait_runs DIR...: until every DIR/state is done, failed or stopped, or 240 s
wait_runs() {
  local t0=$(date +%s) d s all
  while :; do
    all=1
    for d in "$@"; do
      s=$(cat "$d/state" 2>/dev/null)
      case "$s" in done|failed*|stopped*) ;; *) all=0 ;; esac
    done
    [ "$all" = 1 ] && return 0
    [ $(( $(date +%s) - t0 )) -gt 240 ] && return 1
    sleep 1
  done
}

run submit "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set parallel.ranks=2 \
  --set run.dir="$RUN" --set slurm.job_name="$HOSTILE" --set slurm.partition=debug --set slurm.time=00:10:00
JOB=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
[ "$RC" -eq 0 ] && [ -n "$JOB" ] && ok "jepa-launch slurm submitted job $JOB" || bad "submit rc $RC: $OUT $ERR"
# -t all: a job that already ended is still listed (slurmctld keeps it MinJobAge, 300 s)
NAME=$(squeue -h -t all -j "$JOB" -o %j 2>&1)
[ "$NAME" = "$HOSTILE" ] && ok "job name reached Slurm verbatim" || bad "job name: got [$NAME], want [$HOSTILE]"
wait_runs "$RUN" && ok "the run finished ($(cat "$RUN/state"))" || bad "run state: $(cat "$RUN/state" 2>&1)"
[ "$(cat "$RUN/state")" = done ] && ok "state done" || { bad "state $(cat "$RUN/state")"; cat "$RUN"/slurm-*.out; }
grep -q '"ranks": 2' "$RUN/summary.json" 2>/dev/null && ok "srun --mpi=pmix started 2 ranks" || bad "summary: $(cat "$RUN/summary.json" 2>&1)"
cmp -s "$RUN/spec.yaml" "$S/configs/fmnist-tiny.yaml" && ok "run dir keeps the exact spec" || bad "spec.yaml differs"
ls "$RUN"/slurm-"$JOB".out >/dev/null 2>&1 && ok "job output in the run directory" || bad "no slurm-$JOB.out"
[ -e "$SENT" ] && bad "a hostile value was executed" || ok "hostile values never ran"

# issue 16: a relative run.dir that begins with '-' and holds '%' (Slurm
# expands %a, %x, %j, ... in --output: the launcher writes a literal % as %%)
cd "$T" || exit 1
PD="-run 50%acc %x"
run submit2 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$PD" --set slurm.partition=debug \
  --set slurm.time=00:10:00
JOB2=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
[ "$RC" -eq 0 ] && [ -n "$JOB2" ] && ok "submitted job $JOB2 with run.dir '$PD'" || bad "submit2 rc $RC: $OUT $ERR"
wait_runs "$T/$PD" && [ "$(cat "$T/$PD/state")" = done ] && ok "it finished" || bad "state: $(cat "$T/$PD/state" 2>&1)"
[ -s "$T/$PD/slurm-$JOB2.out" ] && ok "its output is $PD/slurm-$JOB2.out" \
  || bad "no $PD/slurm-$JOB2.out: $(find "$T" -name "slurm-$JOB2.out" 2>&1)"

# slurm.time must be a Slurm time and longer than slurm.signal's lead:
# refused in one line before anything is made (--dry-run too)
run st1 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$T/st1" --set slurm.time=00:01:00
expect_error "slurm.time 00:01:00 under the default USR1@90: refused" 2 "slurm.time=00:01:00" "60 s" \
  "slurm.signal USR1@90" "90 s"
run st2 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$T/st1" --set slurm.time=3 \
  --set slurm.signal=USR1@200 --dry-run
expect_error "slurm.time 3 under USR1@200, --dry-run: refused" 2 "slurm.time=3" "180 s" "USR1@200"
run st3 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$T/st1" --set slurm.time=abc
expect_error "slurm.time abc: refused before sbatch" 2 "slurm.time=abc" "not a Slurm time"
[ -e "$T/st1" ] && bad "a refused slurm.time made $T/st1" || ok "nothing made for a refused slurm.time"
forms=0
for t in 2 1:31 01:30:00 2-0 1-2:30 1-02:30:00 INFINITE; do
  "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$T/st2" --set slurm.time="$t" --dry-run \
    >/dev/null 2>"$T/st.err" && grep -q "^#SBATCH --time=\"$t\"\$" "$T/st2/job.sbatch" && forms=$((forms + 1)) \
    || bad "slurm.time $t: $(cat "$T/st.err")"
done
[ "$forms" = 7 ] && ok "slurm.time in each of Slurm's forms is taken"

# sbatch that runs and fails (no such partition) may have queued the job:
# run.dir is kept, so the exit is 1, not "nothing made" (2); sweep --slurm too
run np "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$T/np" --set slurm.partition=nosuch
expect_error "sbatch failed (no such partition): exit 1" 1 "sbatch failed" "$T/np kept" "check squeue"
[ -e "$T/np/job.sbatch" ] && [ "$(cat "$T/np/state")" = "failed: sbatch (the job may be queued: check squeue)" ] \
  && ok "its run.dir is kept, state says so" || bad "np: $(ls "$T/np" 2>&1) $(cat "$T/np/state" 2>&1)"
printf 'base: %s\ndir: %s\nset: {slurm.partition: nosuch}\ngrid:\n  seed: [1, 2]\n' "$S/configs/fmnist-tiny.yaml" \
  "$T/npsw" >"$T/npsw.yaml"
run npsw "$L" sweep "$T/npsw.yaml" --slurm "${SMALL[@]}"
expect_error "sweep --slurm, sbatch failed: exit 1" 1 "sbatch failed" "$T/npsw kept"

# a trainer that rejects its command line or spec (exit 2), meets a
# non-finite loss (3), refuses its inputs (4) or runs out of memory (5) is
# not restarted by the job script: a restart would repeat it (max_restarts
# 3, one attempt each); state and launch.log say so as for a local run
declare -A WHY=([2]="command line or spec rejected" [3]="non-finite loss" [4]="inputs refused at setup"
                [5]="out of memory")
for code in 2 3 4 5; do
  printf '#!/bin/bash\necho x >>"%s/attempts-%s"\nexit %s\n' "$T" "$code" "$code" >"$T/fake-exit$code"
  chmod +x "$T/fake-exit$code"
  run "submit-exit$code" env JEPA_TRAIN_BIN="$T/fake-exit$code" "$L" slurm "$S/configs/fmnist-tiny.yaml" \
    "${SMALL[@]}" --set run.dir="$T/exit$code" --set slurm.partition=debug --set slurm.time=00:10:00 \
    --set max_restarts=3
  wait_runs "$T/exit$code" && [ "$(cat "$T/exit$code/state")" = "failed status=$code (${WHY[$code]}; not restarted)" ] \
    && grep -q "attempt 0: .*(status $code); a restart would repeat it" "$T/exit$code/launch.log" \
    && [ "$(wc -l <"$T/attempts-$code")" = 1 ] && ok "exit $code under Slurm: failed, not restarted" \
    || bad "exit $code under Slurm: rc $RC, state '$(cat "$T/exit$code/state" 2>&1)', attempts $(wc -l <"$T/attempts-$code" 2>&1)"
done
run status3 "$L" status "$T/exit3"
[ "$RC" -eq 0 ] && case "$OUT" in "exit3: failed status=3 (non-finite loss; not restarted)"*) true ;; *) false ;; esac \
  && ok "status: exit 3 under Slurm reads failed, as a local run's" || bad "status of exit3: rc $RC [$OUT] $ERR"

# a run `slurm` submitted and Slurm stopped (scancel, a time limit: here
# the trainer's own stop after step 6, exit 75, as on slurm.signal) goes
# back to Slurm with `resume`: a new job, slurm_job and state updated, the
# job continuing from the checkpoint; refused while the job is queued
RS="$T/rs"
run rs-submit env JEPA_DEBUG_STOP_STEP=6 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$RS" \
  --set slurm.partition=debug --set slurm.time=00:10:00 --set checkpoint.every_steps=100
RJ=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
wait_runs "$RS" && [ "$(cat "$RS/state")" = "stopped status=75" ] && ok "job $RJ stopped after step 6 (status 75)" \
  || bad "rs: rc $RC, state '$(cat "$RS/state" 2>&1)'"
run rs-dry "$L" resume "$RS" --dry-run
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^#SBATCH --partition="debug"$' && [ "$(cat "$RS/slurm_job")" = "$RJ" ] \
  && [ "$(cat "$RS/state")" = "stopped status=75" ] && ok "resume --dry-run of a Slurm run: its script, nothing written" \
  || bad "resume --dry-run: rc $RC, $ERR, job $(cat "$RS/slurm_job"), state $(cat "$RS/state")"
run rs-local "$L" resume "$RS" --local --np 3 --dry-run
expect_error "resume --local --np 3 of it: the world size refused as for a local resume" 2 "3 ranks"
run rs-resume "$L" resume "$RS"
RJ2=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
[ "$RC" -eq 0 ] && [ -n "$RJ2" ] && [ "$RJ2" != "$RJ" ] && [ "$(cat "$RS/slurm_job")" = "$RJ2" ] \
  && grep -q "resume: submitted job $RJ2" "$RS/launch.log" && ok "resume $RS: submitted again as job $RJ2" \
  || bad "resume of a Slurm run: rc $RC, out '$OUT', err '$ERR', slurm_job $(cat "$RS/slurm_job" 2>&1)"
run rs-busy "$L" resume "$RS"
case "$(squeue -h -j "$RJ2" -o %T 2>/dev/null)" in
  PENDING|RUNNING|CONFIGURING) expect_error "resume while job $RJ2 is queued: refused" 2 "belongs to Slurm job $RJ2" ;;
  *) ok "(job $RJ2 ended before the busy check)" ;;
esac
wait_runs "$RS" && [ "$(cat "$RS/state")" = done ] && grep -q '"resumed_from": 6' "$RS/summary.json" \
  && [ -s "$RS/slurm-$RJ2.out" ] && ok "job $RJ2 resumed from step 6 and finished" \
  || bad "resumed job: state $(cat "$RS/state" 2>&1), $(cat "$RS/summary.json" 2>&1)"
# a multi-node run is never resumed here (as `run` refuses it)
"$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$T/n2" --set parallel.nodes=2 \
  --set parallel.ranks=2 --dry-run >/dev/null && rm "$T/n2/job.sbatch" # made by jepa-train on 2 nodes, say
run n2 "$L" resume "$T/n2" --dry-run
expect_error "local resume of a 2-node run: refused" 2 "parallel.nodes is 2" "resume --slurm"

# a requeued job (slurm.requeue: the trainer requeues it after its
# checkpoint, here its own stop after step 6) keeps its first attempt in
# slurm-ID.out: the trainer's "stopped by signal ... checkpoint written"
# line, said before the requeue ends the job, and then the second's
RQ="$T/rq"
run rq env JEPA_DEBUG_STOP_STEP=6 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$RQ" \
  --set slurm.partition=debug --set slurm.time=00:10:00 --set slurm.requeue=true
QJ=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
for _ in $(seq 120); do scontrol show job "$QJ" 2>/dev/null | grep -q 'Restarts=1' && break; sleep 1; done
scontrol update JobId="$QJ" StartTime=now >/dev/null 2>&1 # Slurm delays a requeued job's start
for _ in $(seq 240); do case "$(cat "$RQ/state" 2>/dev/null)" in done|failed*) break ;; esac; sleep 1; done
[ "$(cat "$RQ/state")" = done ] && grep -q 'stopped by signal .* after step 6 of 12: checkpoint .* written' \
  "$RQ/slurm-$QJ.out" && grep -q '^final_loss ' "$RQ/slurm-$QJ.out" \
  && ok "requeued job $QJ: slurm-$QJ.out holds both attempts, the stop line too" \
  || bad "requeued job $QJ: state $(cat "$RQ/state" 2>&1); $(head -c 600 "$RQ/slurm-$QJ.out" 2>&1)"

# slurm.signal B:USR1@N: Slurm signals the batch shell alone (here at once,
# with scancel --batch, as Slurm does N s before the limit); the script
# traps it and passes it to the job's step: the trainer checkpoints, exits
# 75, state stopped status=75 (the shell died of it: FAILED, state running)
BS="$T/bs"
run bs env JEPA_DEBUG_SLOW_START=120:300 "$L" slurm "$S/configs/fmnist-tiny.yaml" "${SMALL[@]}" --set run.dir="$BS" \
  --set slurm.partition=debug --set slurm.time=00:10:00 --set slurm.signal=B:USR1@60 --set train.steps=300 \
  --set checkpoint.every_steps=1000
BJ=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
for _ in $(seq 120); do [ -s "$BS/metrics.jsonl" ] && break; sleep 1; done
scancel --batch --signal=USR1 "$BJ"
for _ in $(seq 90); do case "$(cat "$BS/state" 2>/dev/null)" in done|failed*|stopped*) break ;; esac; sleep 1; done
[ "$(cat "$BS/state")" = "stopped status=75" ] && ls "$BS"/checkpoints/step-*.ckpt >/dev/null 2>&1 \
  && grep -q 'stopped by signal 10 after step' "$BS/slurm-$BJ.out" \
  && ok "B:USR1 to job $BJ's batch shell: passed to the trainer, checkpoint written, stopped status=75" \
  || bad "B:USR1: state '$(cat "$BS/state" 2>&1)', $(ls "$BS/checkpoints" 2>&1), $(tail -n 3 "$BS/slurm-$BJ.out" 2>&1)"

cat >"$T/sweep.yaml" <<EOF
base: $S/configs/fmnist-tiny.yaml
dir: "$T/sweep 5%a"
parallel: 2
set: {model.width: 32, model.depth: 2, eval.pool_blocks: 1, model.heads: 2, model.pred_width: 16, model.pred_depth: 1,
      model.pred_heads: 2, train.steps: 8, train.log_every: 4, train.batch_per_rank: 32,
      parallel.threads_per_rank: 1, eval.probe: false, data.train: $T/fm/train, data.test: $T/fm/test}
grid:
  optim.lr: [0.001, 0.0005]
EOF
run sweep "$L" sweep "$T/sweep.yaml" --slurm
AJOB=$(printf '%s\n' "$OUT" | sed -n 's/^submitted job \([0-9][0-9]*\)$/\1/p')
[ "$RC" -eq 0 ] && [ -n "$AJOB" ] && ok "sweep submitted as job array $AJOB" || bad "sweep rc $RC: $OUT $ERR"
SW="$T/sweep 5%a"
grep -q '^#SBATCH --array=0-1%2$' "$SW/sweep.sbatch" && ok "array of 2, 2 at a time" || bad "no --array line"
wait_runs "$SW/point-000" "$SW/point-001" && ok "both array tasks finished" || bad "sweep did not finish"
[ -s "$SW/slurm-${AJOB}_0.out" ] && [ -s "$SW/slurm-${AJOB}_1.out" ] && ok "array output in '$SW' (a literal %a there)" \
  || bad "array output: $(ls "$SW" 2>&1 | tr '\n' ' ')"
# each task's launch.log names its array job and task, and its output file
for i in 0 1; do
  grep -qF "attempt 0: srun in job ${AJOB}_$i (output: $SW/slurm-${AJOB}_$i.out)" "$SW/point-00$i/launch.log" \
    && ok "point-00$i/launch.log names job ${AJOB}_$i and its output" \
    || bad "point-00$i/launch.log: $(cat "$SW/point-00$i/launch.log" 2>&1)"
done
grep -qF "attempt 0: srun in job $JOB (output: $RUN/slurm-$JOB.out)" "$RUN/launch.log" \
  && ok "a run's launch.log names job $JOB and its output" || bad "$RUN/launch.log: $(cat "$RUN/launch.log" 2>&1)"
run results "$L" results "$SW"
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c ' done$')" = 2 ] && ok "results: 2 points done" \
  || bad "results rc $RC: $OUT $ERR"
[ "$(grep -c ',done$' "$SW/results.csv" 2>/dev/null)" = 2 ] && ok "results.csv" || bad "results.csv"
finish
