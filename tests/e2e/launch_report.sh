#!/bin/bash
# launch_report.sh - what results, status and plot say of sweeps whose
# points are not alike, and of runs trained without the launcher (no
# training: a fake mpirun writes each point's metrics.jsonl and
# summary.json in the trainer's form; about 2 s with gnuplot):
#   1. plot of a text-valued key (loss.type): one x position per value,
#      the points of one value at it (it drew one tick per point);
#   2. results of a sweep ranked by final loss across loss.type values:
#      one warning line that the losses are not comparable (eval.probe:
#      true ranks them), the order unchanged; none when the points differ
#      only in seed, or when they rank by probe_acc;
#   3. status of a run trained by jepa-train alone (no state file): killed
#      at step 80 with checkpoints, or failed in its first step (an empty
#      metrics.jsonl), is unfinished (it said pending);
#   4. status of a run stopped, failed or left stale at step 80 says where
#      a resume starts (the checkpoint at step 50, or over when there is
#      none) beside the step logged last (it said step 80 alone); results'
#      status column is the state as it is;
#   5. status and results of runs whose state names a Slurm job ask squeue
#      (a fake), once for a whole sweep: a job it no longer lists is stale
#      (they said running or submitted for ever), a running one queued
#      again is pending, and a squeue that fails leaves the state
#      unverified;
#   6. status of several directories in one call: each as alone, a sweep's
#      lines after "sweep DIR:", the exit the worst (it took one DIR).
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
unset JEPA_TRAIN_BIN
cd "$T" || exit 1
tiny_data images tr te || { finish; exit 1; }
printf 'data:\n  train: tr\n  test: te\ntrain:\n  steps: 10\n  minutes: 0\neval:\n  probe: false\n' >base.yaml
# points (seed, loss.type): (0, smooth_l1) (0, l2) (1, smooth_l1) (1, l2)
printf 'base: base.yaml\ndir: sw\ngrid:\n  seed: [0, 1]\n  loss.type: [smooth_l1, l2]\n' >s.yaml
# the fake mpirun: l2 losses are the smaller (as they are, in another unit);
# probe_acc when the spec has eval.probe
cat >mpirun <<'SH'
#!/bin/bash
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} ;; esac; done
r=$d/spec.resolved.yaml
seed=$(sed -n 's/^seed: //p' "$r")
lt=$(sed -n '/^loss:/,/^[^ ]/s/^  type: //p' "$r")
probe=$(sed -n '/^eval:/,/^[^ ]/s/^  probe: //p' "$r")
[ "$lt" = l2 ] && loss=0.0$((10 + seed)) || loss=0.$((20 + seed))
printf '{"step": 10, "loss": %s}\n' "$loss" >"$d/metrics.jsonl"
acc=-1; [ "$probe" = true ] && acc=0.$((70 + seed))
printf '{\n  "objective": "ijepa",\n  "final_loss": %s,\n  "probe_acc": %s,\n  "steps": 10,\n  "planned_steps": 10,\n  "stop_reason": "completed",\n  "param_hash": "00000000000000ab"\n}\n' "$loss" "$acc" >"$d/summary.json"
SH
chmod +x mpirun
export JEPA_MPIRUN="$T/mpirun"
run sweep "$L" sweep s.yaml
[ "$RC" -eq 0 ] && [ -s sw/point-003/summary.json ] && ok "fixture: a sweep of 4 points" || bad "sweep: rc $RC: $OUT $ERR"
W='jepa-launch: warning: points ranked by final_loss differ in loss.type, which changes what the loss measures: their losses are not comparable (eval.probe: true ranks them by probe_acc)'
[ "$ERR" = "$W" ] && ok "sweep: the table, then the warning" || bad "sweep's stderr: $ERR"

# ---- 1. plot of a text-valued key
if command -v "${JEPA_GNUPLOT:-gnuplot}" >/dev/null; then
  run pl "$L" plot sw
  G=sw/plots/sweep.gp
  [ "$RC" -eq 0 ] && [ -s sw/plots/loss_vs_loss.type.png ] && ok "plot: loss_vs_loss.type.png" || bad "plot: rc $RC: $ERR"
  grep -qxF "set xtics ('smooth_l1' 0, 'l2' 1)" "$G" && ok "one tick per value, first-seen order" \
    || bad "ticks: $(grep xtics "$G")"
  grep -qxF 'set xrange [-0.5:1.5]' "$G" && ok "x range fits the 2 values" || bad "xrange: $(grep xrange "$G")"
  # by_key_1.dat is loss against loss.type (by_key_0.dat: against seed)
  [ "$(tr '\n' ' ' <sw/plots/by_key_1.dat)" = "0 0.2 1 0.01 0 0.21 1 0.011 " ] \
    && ok "points of one value at its x (0 1 0 1)" || bad "by_key_1.dat: $(cat sw/plots/by_key_1.dat)"
  grep -qxF "plot 'by_key_1.dat' using 1:2 with points pt 7 ps 2" "$G" && ok "drawn at their x" \
    || bad "plot line: $(grep by_key_1 "$G")"
  [ "$(tr '\n' ' ' <sw/plots/by_key_0.dat)" = "0 0.2 0 0.01 1 0.21 1 0.011 " ] \
    && ok "a numeric key keeps its values" || bad "by_key_0.dat: $(cat sw/plots/by_key_0.dat)"
else
  echo "skip plots: no gnuplot"
fi

# ---- 2. results: the final losses of two loss types are not comparable
run res "$L" results sw
[ "$RC" -eq 0 ] && [ "$ERR" = "$W" ] && ok "results: one warning line" || bad "results: rc $RC: $ERR"
[ "$(printf '%s\n' "$OUT" | awk 'NR > 1 {printf "%s ", $1}')" = "point-001 point-003 point-000 point-002 " ] \
  && ok "the order is final loss's still (1 3 0 2)" || bad "order: $OUT"
sed -e 's/^dir: sw/dir: sd/' -e 's/^  loss.type: .*//' s.yaml >sd.yaml
run sd "$L" sweep sd.yaml
run res "$L" results sd
[ "$RC" -eq 0 ] && [ -z "$ERR" ] && ok "no warning when only seed varies" || bad "seed only: rc $RC: $ERR"
sed -e 's/^dir: sw/dir: sp/' s.yaml >sp.yaml
printf 'set:\n  eval.probe: true\n' >>sp.yaml
run sp "$L" sweep sp.yaml
run res "$L" results sp
[ "$RC" -eq 0 ] && [ -z "$ERR" ] && [ "$(printf '%s\n' "$OUT" | awk 'NR > 1 {printf "%s ", $1}')" = "point-002 point-003 point-000 point-001 " ] \
  && ok "no warning when probe_acc ranks them" || bad "with probe: rc $RC: $OUT $ERR"

# ---- 3. a run trained by jepa-train alone, killed at step 80
mkdir -p k/checkpoints && cp sw/point-000/spec.resolved.yaml k/
printf '{"step": 70, "loss": 0.23}\n{"step": 80, "loss": 0.2178}\n' >k/metrics.jsonl
: >k/checkpoints/step-00000050.ckpt
run st "$L" status k
[ "$RC" -eq 0 ] && [ "$OUT" = "k: unfinished (checkpoint at step 50; resume with jepa-launch resume k or --set resume=auto), step 80, loss 0.2178" ] \
  && ok "status of a killed jepa-train run: unfinished" || bad "status k: rc $RC: $OUT $ERR"
# failed on a corrupt shard in its first step: the spec files and an empty metrics.jsonl
mkdir -p c && cp sw/point-000/spec.resolved.yaml c/ && : >c/metrics.jsonl
run st "$L" status c
[ "$RC" -eq 0 ] && [ "$OUT" = "c: unfinished (no step logged, no checkpoint: jepa-launch resume c starts it over)" ] \
  && ok "status of a jepa-train run that failed in its first step: unfinished" || bad "status c: rc $RC: $OUT $ERR"
rm c/metrics.jsonl
run st "$L" status c
[ "$RC" -eq 0 ] && [ "$OUT" = "c: pending" ] && ok "a run directory holding only its spec: pending" \
  || bad "status c without metrics: rc $RC: $OUT $ERR"

# ---- 4. a launcher's run stopped at step 80, its newest checkpoint at 50
cp -a k s
# resumes SHOWN: status of s shows state SHOWN, step 80 and the checkpoint at 50
resumes() {
  run st "$L" status s
  [ "$RC" -eq 0 ] && [ "$OUT" = "s: $1, step 80, loss 0.2178, resume from step 50" ] \
    && ok "status of a run $1: where a resume starts" || bad "status s ($1): rc $RC: $OUT $ERR"
}
for state in "stopped signal=15" "stopped status=75" "failed status=1 restarts=3"; do
  printf '%s\n' "$state" >s/state
  resumes "$state"
done
sleep 0 & gone=$! # a launcher pid that is gone: the run is stale
wait
printf 'running pid=%d mpirun=%d attempt=1\n' "$gone" "$gone" >s/state
resumes "stale (launcher pid $gone is gone)"
printf 'stopped signal=15\n' >s/state
run res "$L" results s
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | tail -1 | tr -s ' ')" = "s - - 80 stopped signal=15" ] \
  && ok "results: the state as it is" || bad "results s: rc $RC: $OUT $ERR"
rm s/checkpoints/step-00000050.ckpt
run st "$L" status s
[ "$RC" -eq 0 ] && [ "$OUT" = "s: stopped signal=15, step 80, loss 0.2178, resume starts over (no checkpoint)" ] \
  && ok "status of a stopped run without a checkpoint: a resume starts over" || bad "status s: rc $RC: $OUT $ERR"

# ---- 5. Slurm jobs: what squeue (a fake: sq.out, its exit in sq.rc, its
# stderr in sq.err; each call's arguments in sq.calls) says of them
cat >squeue <<'SH'
#!/bin/bash
echo "$*" >>"$(dirname "$0")/sq.calls"
cd "$(dirname "$0")" || exit 1
[ -e sq.out ] && cat sq.out
[ -e sq.err ] && cat sq.err >&2
exit "$(cat sq.rc 2>/dev/null || echo 0)"
SH
chmod +x squeue
export JEPA_SQUEUE="$T/squeue"
cp -a sw sq && rm sq/point-00*/summary.json && echo 29 >sq/slurm_job
echo "running job=31 attempt=0" >sq/point-000/state # RUNNING
echo "running job=32 attempt=0" >sq/point-001/state # gone (scancel, time limit)
echo "running job=33 attempt=1" >sq/point-002/state # requeued: PD, BeginTime
echo submitted >sq/point-003/state                  # the array's task 3, still queued
printf '29_0 31 RUNNING\n29_2 33 PENDING\n29_3 29 PENDING\n' >sq.out
: >sq.calls
run st "$L" status sq
want="point-000: running job=31 attempt=0, step 10, loss 0.2000
point-001: stale (Slurm job 32 is gone), step 10, loss 0.0100, resume starts over (no checkpoint)
point-002: pending (Slurm job 33 queued), step 10, loss 0.2100
point-003: submitted, step 10, loss 0.0110
0 of 4 points finished"
[ "$RC" -eq 0 ] && [ "$OUT" = "$want" ] && ok "status of a sweep's Slurm points: running, stale, pending, submitted" \
  || bad "status sq: rc $RC: $OUT $ERR"
[ "$(cat sq.calls)" = "-h -r -o %i %A %T -j 29,31,32,33" ] && ok "one squeue call for the sweep" \
  || bad "squeue calls: $(cat sq.calls)"
run res "$L" results sq
printf '%s\n' "$OUT" | grep -q '^point-001 .*stale (Slurm job 32 is gone)$' && ok "results: the stale point as such" \
  || bad "results sq: rc $RC: $OUT $ERR"
# one run, submitted (slurm_job 40), cancelled while held: squeue exits 1
# when it lists none of the jobs asked about
echo submitted >s/state && echo 40 >s/slurm_job && : >sq.out && echo 1 >sq.rc
echo 'slurm_load_jobs error: Invalid job id specified' >sq.err
run st "$L" status s
[ "$RC" -eq 0 ] && [ "$OUT" = "s: stale (Slurm job 40 is gone), step 80, loss 0.2178, resume starts over (no checkpoint)" ] \
  && ok "status of a submitted job squeue no longer knows: stale" || bad "status s (gone): rc $RC: $OUT $ERR"
echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >sq.err
run st "$L" status s
[ "$RC" -eq 0 ] && [ "$OUT" = "s: submitted (unverified: $T/squeue failed: slurm_load_jobs error: Unable to contact slurm controller (connect failure)), step 80, loss 0.2178" ] \
  && ok "squeue failing: submitted, unverified, with why" || bad "status s (squeue down): rc $RC: $OUT $ERR"
run st env JEPA_SQUEUE="$T/no-squeue" "$L" status s
case "$OUT" in "s: submitted (unverified: cannot run $T/no-squeue: "*) ok "no squeue: unverified" ;;
  *) bad "status s (no squeue): rc $RC: $OUT $ERR" ;; esac
unset JEPA_SQUEUE

# ---- 6. status DIR DIR ...: each as status DIR says it, the exit the worst
printf 'stopped signal=15\n' >s/state
mkdir -p dm && cp sw/point-000/spec.resolved.yaml dm/ && echo '{"final_loss": 1e400, "steps": 1}' >dm/summary.json
for d in s sd k dm; do "$L" status "$d" >"alone.$d" 2>"alone.$d.err"; done
run st "$L" status s sd k
want="$(cat alone.s)
sweep sd:
$(cat alone.sd)
$(cat alone.k)"
[ "$RC" -eq 0 ] && [ "$OUT" = "$want" ] && [ -z "$ERR" ] && ok "status of a run, a sweep and a run: each as alone" \
  || bad "status s sd k: rc $RC: $OUT $ERR"
run st "$L" status s dm k
[ "$RC" -eq 1 ] && [ "$OUT" = "$(cat alone.s alone.dm alone.k)" ] && [ "$ERR" = "$(cat alone.dm.err)" ] \
  && ok "a damaged run among them: exit 1, its line as alone" || bad "status s dm k: rc $RC: $OUT $ERR"
run st "$L" status s nothere dm
[ "$RC" -eq 2 ] && [ "$OUT" = "$(cat alone.s alone.dm)" ] \
  && [ "$ERR" = "jepa-launch: status: nothere is neither a run nor a sweep directory
$(cat alone.dm.err)" ] && ok "a directory that is neither among them: said in its turn, the rest shown, exit 2" \
  || bad "status s nothere dm: rc $RC: $OUT $ERR"
finish
