#!/usr/bin/env bash
# A stop request (SIGUSR1: what jepa-launch sends for the first Ctrl-C or
# SIGTERM, and Slurm before a time limit) in an evaluation of a world-model
# run (tiny model, a small Two-Room set; JEPA_DEBUG_SLOW_EVAL holds each
# evaluation open for the signal):
#   - in the closing evaluation (checkpoint.bin published): exit 75 at once
#     with one line saying so, checkpoint.bin kept, no summary.json; a
#     resume=auto then trains nothing (metrics.jsonl and checkpoints
#     unchanged) and evaluates: the straight run's summary.json (figures,
#     param_hash, the objective's statistics, which it wrote as 0 but the
#     first: the checkpoint keeps one, metrics.jsonl's last line has them);
#   - the same through mpirun at 2 ranks (mpirun forwards it) and through
#     jepa-launch run's Ctrl-C (exit 75, "continue it with jepa-launch
#     resume"), whose jepa-launch resume finishes the run;
#   - with JEPA_REQUEUE=1 under Slurm: scontrol requeue JOBID (a stand-in);
#   - in an evaluation during training (eval.every_steps): the agreed stop
#     at the end of the next step, exit 75, and the resume ends as the
#     straight run.
# The old behaviour: SIGUSR1 there was ignored, the evaluation ran on, exit 0.
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
TR="$B/jepa-train"
L="$B/jepa-launch"
SPEC="$S/configs/world-tworoom.yaml"
"$B/jepa-world" gen --out "$T/w/train" --episodes 200 --steps 16 --seed 0 --quiet &&
  "$B/jepa-world" gen --out "$T/w/test" --episodes 50 --steps 16 --seed 1 --split test --quiet \
  || { bad "jepa-world gen failed"; finish; exit 1; }
N=6
SMALL=(--set model.width=16 --set model.depth=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set world.embed_dim=16
       --set sigreg.directions=32 --set train.batch_per_rank=8 --set train.steps=$N
       --set train.log_every=2 --set parallel.threads_per_rank=1
       --set data.train="$T/w/train" --set data.test="$T/w/test")
json() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }
# the summary without its timings (a resume of the finished run wrote the
# objective's statistics but the first, sigreg, as 0: the checkpoint keeps
# only that one; they come from metrics.jsonl's last line now)
figs() { grep -v '"wall_s"\|"train_s"\|"comm_wait_s"\|"resumed_from"' "$1/summary.json"; }
cols() { sed 's/, "img_per_s.*//' "$1/metrics.jsonl"; }
sums() { (cd "$1" && sha256sum metrics.jsonl checkpoints/* | sort); }
# wait_for FILE PID: until FILE exists (or PID ends)
wait_for() {
  local i
  for i in $(seq 1500); do
    [ -e "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}
# ms since $1 (date +%s%N)
since() { echo $((($(date +%s%N) - $1) / 1000000)); }

run a "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a"
[ "$RC" -eq 0 ] && ok "straight run exits 0" || bad "straight run: rc $RC: $ERR"

# ---- SIGUSR1 in the closing evaluation, 1 rank
JEPA_DEBUG_SLOW_EVAL=60 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/c1" >"$T/c1.out" 2>"$T/c1.err" &
P=$!
if wait_for "$T/c1/checkpoint.bin" "$P"; then
  sleep 0.3; t0=$(date +%s%N); kill -USR1 "$P"; wait "$P"; crc=$?; ms=$(since "$t0")
  [ "$crc" -eq 75 ] && [ "$ms" -lt 5000 ] && ok "SIGUSR1 in the closing evaluation: exit 75 after $ms ms" \
    || bad "SIGUSR1 in the closing evaluation: rc $crc after $ms ms (want 75 at once): $(tail -n 2 "$T/c1.err")"
  want="jepa-train: stopped by signal 10 in the closing evaluation, after step $N of $N: checkpoint $T/c1/checkpoints/step-0000000$N.ckpt written; continue with --set resume=auto, which evaluates again (exit 75)"
  [ "$(grep -c 'stopped by signal' "$T/c1.err")" -eq 1 ] && [ "$(tail -n 1 "$T/c1.err")" = "$want" ] \
    && ok "one line says what happened" || bad "stop line: $(tail -n 2 "$T/c1.err")"
  [ -e "$T/c1/checkpoint.bin" ] && [ ! -e "$T/c1/summary.json" ] && ok "checkpoint.bin kept, no summary.json" \
    || bad "after the stop: summary $([ -e "$T/c1/summary.json" ] && echo written), checkpoint.bin $([ -e "$T/c1/checkpoint.bin" ] || echo missing)"
  before=$(sums "$T/c1")
  run c1r "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/c1" --set resume=auto
  [ "$RC" -eq 0 ] && [ -e "$T/c1/summary.json" ] && ok "resume=auto of it exits 0 with summary.json" \
    || bad "resume after the stop: rc $RC: $ERR"
  [ "$(sums "$T/c1")" = "$before" ] && ok "the resume trained nothing: metrics.jsonl and checkpoints unchanged" \
    || bad "the resume changed metrics.jsonl or the checkpoints"
  case "$ERR" in *"world eval: "*) ok "the resume evaluated" ;; *) bad "no evaluation in the resume: $ERR" ;; esac
  cmp -s <(figs "$T/a") <(figs "$T/c1") && ok "its summary is the straight run's (figures, param_hash)" \
    || bad "summary differs: $(diff <(figs "$T/a") <(figs "$T/c1") | head -n 4 | tr '\n' ' ')"
else
  wait "$P"; bad "the run ended before checkpoint.bin (rc $?): $(tail -n 2 "$T/c1.err")"
fi

# ---- Slurm: the stop requeues the job (JEPA_REQUEUE=1, a stand-in scontrol)
mkdir -p "$T/bin"
printf '#!/bin/sh\necho "$@" > "%s/requeue.log"\n' "$T" >"$T/bin/scontrol"; chmod +x "$T/bin/scontrol"
PATH="$T/bin:$PATH" SLURM_JOB_ID=4242 JEPA_REQUEUE=1 JEPA_DEBUG_SLOW_EVAL=60 \
  "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/q1" >"$T/q1.out" 2>"$T/q1.err" &
P=$!
if wait_for "$T/q1/checkpoint.bin" "$P"; then
  sleep 0.3; kill -USR1 "$P"; wait "$P"; qrc=$?
  [ "$qrc" -eq 75 ] && [ "$(cat "$T/requeue.log" 2>/dev/null)" = "requeue 4242" ] \
    && [ "$(tail -n 1 "$T/q1.err")" = "train: requeued Slurm job 4242 (scontrol requeue)" ] \
    && ok "Slurm: the stop in the closing evaluation runs scontrol requeue 4242, exit 75" \
    || bad "Slurm requeue in the evaluation: rc $qrc, scontrol: $(cat "$T/requeue.log" 2>&1): $(tail -n 2 "$T/q1.err")"
else
  wait "$P"; bad "the Slurm run ended before checkpoint.bin (rc $?)"
fi

# ---- 2 ranks: SIGUSR1 to mpirun in the closing evaluation
JEPA_DEBUG_SLOW_EVAL=60 "$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set train.batch_per_rank=4 \
  --set run.dir="$T/m2" >"$T/m2.out" 2>"$T/m2.err" &
MP=$!
if wait_for "$T/m2/checkpoint.bin" "$MP"; then
  sleep 0.3; t0=$(date +%s%N); kill -USR1 "$MP"; wait "$MP"; mrc=$?; ms=$(since "$t0")
  [ "$mrc" -ne 0 ] && [ "$ms" -lt 10000 ] && [ "$(grep -c 'stopped by signal 10 in the closing evaluation' "$T/m2.err")" -eq 1 ] \
    && [ ! -e "$T/m2/summary.json" ] \
    && ok "2 ranks: SIGUSR1 via mpirun ends the closing evaluation (mpirun $mrc after $ms ms), one line" \
    || bad "2 ranks: mpirun rc $mrc after $ms ms: $(tail -n 3 "$T/m2.err")"
  run m2r timeout 300 "$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set train.batch_per_rank=4 --set run.dir="$T/m2" \
    --set resume=auto
  [ "$RC" -eq 0 ] && [ -e "$T/m2/summary.json" ] && ok "2 ranks: resume=auto evaluates and exits 0" \
    || bad "2 ranks: resume: rc $RC: $ERR"
else
  wait "$MP"; bad "the 2-rank run ended before checkpoint.bin (rc $?)"
fi

# ---- jepa-launch run: Ctrl-C (SIGINT to the launcher) in the closing evaluation
JEPA_DEBUG_SLOW_EVAL=60 "$L" run "$SPEC" --np 1 "${SMALL[@]}" --set run.dir="$T/l1" >"$T/l1.out" 2>"$T/l1.err" &
LP=$!
if wait_for "$T/l1/checkpoint.bin" "$LP"; then
  sleep 0.3; t0=$(date +%s%N); kill -INT "$LP"; wait "$LP"; lrc=$?; ms=$(since "$t0")
  [ "$lrc" -eq 75 ] && [ "$ms" -lt 10000 ] && grep -q "continue it with jepa-launch resume $T/l1" "$T/l1.err" \
    && [ ! -e "$T/l1/summary.json" ] \
    && ok "jepa-launch run: Ctrl-C in the closing evaluation stops it: exit 75 after $ms ms" \
    || bad "jepa-launch run: Ctrl-C in the closing evaluation: rc $lrc after $ms ms: $(tail -n 3 "$T/l1.err")"
  run l1r "$L" resume "$T/l1"
  [ "$RC" -eq 0 ] && [ -e "$T/l1/summary.json" ] && ok "jepa-launch resume then evaluates: exit 0, summary.json" \
    || bad "jepa-launch resume: rc $RC: $ERR"
else
  wait "$LP"; bad "the launched run ended before checkpoint.bin (rc $?): $(tail -n 3 "$T/l1.err")"
fi

# ---- SIGUSR1 in an evaluation during training (eval.every_steps=2): the
# stop after the next step (3), resumed to the straight run's end
EVS=(--set eval.every_steps=2)
run b "$TR" "$SPEC" "${SMALL[@]}" "${EVS[@]}" --set run.dir="$T/b"
[ "$RC" -eq 0 ] && ok "straight run with eval.every_steps=2 exits 0" || bad "eval.every_steps run: rc $RC: $ERR"
JEPA_DEBUG_SLOW_EVAL=60 "$TR" "$SPEC" "${SMALL[@]}" "${EVS[@]}" --set run.dir="$T/e1" >"$T/e1.out" 2>"$T/e1.err" &
P=$!
if wait_for "$T/e1/metrics.jsonl" "$P"; then
  sleep 0.5; t0=$(date +%s%N); kill -USR1 "$P"; wait "$P"; erc=$?; ms=$(since "$t0")
  [ "$erc" -eq 75 ] && [ "$ms" -lt 5000 ] && grep -q "stopped by signal 10 after step 3 of $N: checkpoint" "$T/e1.err" \
    && ok "SIGUSR1 in a mid-run evaluation: stopped after the next step (3), exit 75 after $ms ms" \
    || bad "SIGUSR1 in a mid-run evaluation: rc $erc after $ms ms: $(tail -n 2 "$T/e1.err")"
  run e1r "$TR" "$SPEC" "${SMALL[@]}" "${EVS[@]}" --set run.dir="$T/e1" --set resume=auto
  [ "$RC" -eq 0 ] && cmp -s <(figs "$T/b") <(figs "$T/e1") && cmp -s <(cols "$T/b") <(cols "$T/e1") \
    && ok "its resume ends as the straight run (summary, metrics lines)" \
    || bad "mid-run stop + resume: rc $RC: $(diff <(figs "$T/b") <(figs "$T/e1") | head -n 4 | tr '\n' ' ')"
else
  wait "$P"; bad "the eval.every_steps run ended before its first metrics line (rc $?)"
fi
finish
