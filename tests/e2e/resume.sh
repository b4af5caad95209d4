#!/usr/bin/env bash
# Checkpoints and resume, end to end on a tiny model (seconds per run):
#   - exact resume at 1 and 2 ranks: N steps straight and k steps + stop +
#     resume give the same param_hash and the same logged step/loss/lr/wd/
#     ema/target_std lines (k odd: the stop falls inside a log interval);
#   - kill -9 of one rank of a 2-rank run at a random step, then resume:
#     the straight run's param_hash;
#   - SIGTERM and SIGINT (1 rank) and SIGUSR1 through mpirun (2 ranks): a checkpoint,
#     exit 75, and the resumed run equals the straight one;
#   - a damaged newest checkpoint (flipped byte, truncated): a warning
#     naming it, fallback to the previous one, the straight run's hash;
#   - another model config, other training settings (the line names the
#     key and both values, from the checkpoint's run's spec.resolved.yaml;
#     train.batch_per_rank set at another rank count: the trainer keeps the
#     global batch itself, so the line says to leave it),
#     a world size that does not divide the global batch, resume: none over
#     an existing run: refused in one line naming the file / run dir, the
#     run directory left as it was (resuming on
#     another world size that divides it: tests/e2e/elastic.sh);
#   - an injected NaN (gradient, loss; 1 and 2 ranks): exit 3 naming the
#     step, no checkpoint written, the existing ones byte-identical;
#   - checkpoint.every_minutes; Slurm requeue: scontrol requeue JOBID via a
#     stand-in scontrol.
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
TR="$B/jepa-train"
SPEC="$S/configs/fmnist-tiny.yaml"
pack_fmnist
N=40
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=$N --set train.log_every=2
       --set train.batch_per_rank=32 --set parallel.threads_per_rank=1 --set eval.probe=false
       "${DATA[@]}")
json() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }
hash_of() { json "$1/summary.json" param_hash; }
# the columns a resumed run must reproduce (timings differ run to run)
cols() { sed 's/, "img_per_s.*//' "$1/metrics.jsonl"; }
# same_run DESC REF DIR: DIR ended as the straight run REF did
same_run() {
  local ha hb
  ha=$(hash_of "$2"); hb=$(hash_of "$3")
  if [ -n "$ha" ] && [ "$ha" = "$hb" ]; then ok "$1: param_hash equal ($ha)"; else bad "$1: param_hash $hb, straight run $ha"; fi
  if [ "$(grep -c '' "$2/metrics.jsonl")" -gt 0 ] && cmp -s <(cols "$2") <(cols "$3"); then
    ok "$1: metrics.jsonl step/loss/lr/wd/ema/target_std lines equal ($(grep -c '' "$3/metrics.jsonl") lines)"
  else
    bad "$1: metrics differ: $(diff <(cols "$2") <(cols "$3") | head -n 4 | tr '\n' ' ')"
  fi
}
# wait_step DIR K PID: until DIR's metrics log step >= K (or PID ends)
wait_step() {
  local i last
  for i in $(seq 1200); do
    last=$(tail -n 1 "$1/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
    [ -n "$last" ] && [ "$last" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
sums() { (cd "$1" && sha256sum latest checkpoints/*); }

# ---- 1 rank: straight, then stopped at step 13 of 40 and resumed
run a1 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a1"
[ "$RC" -eq 0 ] && ok "1 rank: straight run of $N steps" || bad "1 rank straight run failed (rc $RC): $ERR"
JEPA_DEBUG_STOP_STEP=13 run b1 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b1" --set checkpoint.every_steps=4
[ "$RC" -eq 75 ] && ok "1 rank: stop after step 13 exits 75" || bad "stop: rc $RC, want 75: $ERR"
case "$ERR" in *"after step 13"*"step-00000013.ckpt"*"resume=auto"*) ok "stop message names the step and the checkpoint" ;; *) bad "stop message: $ERR" ;; esac
[ "$(cat "$T/b1/latest" 2>/dev/null)" = "checkpoints/step-00000013.ckpt" ] && ok "latest points at step 13" || bad "latest: $(cat "$T/b1/latest" 2>/dev/null)"
[ -e "$T/b1/summary.json" ] && bad "an interrupted run wrote summary.json" || ok "no summary.json for an interrupted run"
run e1 "$B/jepa-eval" "$T/b1" --set eval.max_iters=5 --set data.train="$T/fm/test"
case "$RC:$ERR" in 0:*"step-00000013.ckpt"*) ok "jepa-eval of an unfinished run probes the checkpoint latest names" ;;
  *) bad "jepa-eval of an unfinished run: rc $RC: $ERR" ;; esac
run b1r "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b1" --set checkpoint.every_steps=4 --set resume=auto
[ "$RC" -eq 0 ] && ok "1 rank: resume=auto finishes" || bad "1 rank resume failed (rc $RC): $ERR"
case "$ERR" in *"resuming from $T/b1/checkpoints/step-00000013.ckpt"*) ok "resume names its checkpoint" ;; *) bad "resume stderr: $ERR" ;; esac
same_run "1 rank, 13 + resume + 27" "$T/a1" "$T/b1"
[ "$(json "$T/b1/summary.json" steps)" = $N ] && [ "$(json "$T/b1/summary.json" resumed_from)" = 13 ] \
  && ok "summary: steps $N, resumed_from 13" || bad "summary steps/resumed_from: $(cat "$T/b1/summary.json")"
ls "$T/b1/checkpoints" | tr '\n' ' ' | grep -qx "step-00000032.ckpt step-00000036.ckpt step-00000040.ckpt " \
  && ok "keep 3: the newest three checkpoints remain" || bad "checkpoints: $(ls "$T/b1/checkpoints" | tr '\n' ' ')"
cmp -s "$T/b1/checkpoint.bin" "$T/b1/checkpoints/step-00000040.ckpt" && ok "checkpoint.bin is the final checkpoint" || bad "checkpoint.bin differs from the final"
# a finished run resumed again: nothing to train, and no stray file (checkpoint.bin
# is already a hard link of the final checkpoint: rename onto it is a no-op)
run b1f "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b1" --set checkpoint.every_steps=4 --set resume=auto
LEFT=$(ls -A "$T/b1" "$T/b1/checkpoints" | grep -c '\.tmp' || true)
[ "$RC" -eq 0 ] && [ "$LEFT" -eq 0 ] && cmp -s "$T/b1/checkpoint.bin" "$T/b1/checkpoints/step-00000040.ckpt" \
  && ok "a finished run resumed again: exit 0, no temporary file left" \
  || bad "finished run resumed: rc $RC, $LEFT temporary files: $(ls -A "$T/b1" | tr '\n' ' ') $ERR"

# ---- timed checkpoints: every 0.0001 min (~6 ms) puts one after most steps
run m1 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/m1" --set checkpoint.every_minutes=0.0001 --set checkpoint.keep=100
NC=$(ls "$T/m1/checkpoints" | grep -c '')
[ "$RC" -eq 0 ] && [ "$NC" -ge 10 ] && ok "checkpoint.every_minutes: $NC checkpoints in $N steps" || bad "every_minutes: rc $RC, $NC checkpoints: $ERR"
[ "$(hash_of "$T/m1")" = "$(hash_of "$T/a1")" ] && ok "checkpointing does not change the run" || bad "every_minutes run hash differs"

# ---- 2 ranks: straight, then the last rank alone "signalled" at step 15, resumed
run a2 timeout 300 "$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a2"
[ "$RC" -eq 0 ] && ok "2 ranks: straight run" || bad "2 ranks straight run failed (rc $RC): $ERR"
run b2 timeout 300 "$MPI" -np 2 -x JEPA_DEBUG_STOP_STEP=15 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b2" \
  --set checkpoint.every_steps=6
[ "$RC" -eq 75 ] && ok "2 ranks: a stop seen by rank 1 only stops both after step 15 (exit 75)" || bad "2-rank stop: rc $RC: $ERR"
[ -e "$T/b2/checkpoints/step-00000015.ckpt" ] && ok "2 ranks: checkpoint of step 15" || bad "no step-15 checkpoint: $(ls "$T/b2/checkpoints")"
run b2r timeout 300 "$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b2" --set checkpoint.every_steps=6 --set resume=auto
[ "$RC" -eq 0 ] && ok "2 ranks: resume=auto finishes" || bad "2-rank resume failed (rc $RC): $ERR"
same_run "2 ranks, 15 + resume + 25" "$T/a2" "$T/b2"

# ---- kill -9 one rank of a 2-rank run at a random step, then resume
K=$((4 + RANDOM % 24))
"$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/k2" --set checkpoint.every_steps=3 >"$T/k2.out" 2>"$T/k2.err" &
MP=$!
# rank 1 is found while the run starts and frozen (SIGSTOP) the moment step K
# is logged: looking it up after that let the 40-step run finish first under
# load (the kill then found no process and the job ended 0)
victim="" last=""
for _ in $(seq 1200); do
  if [ -z "$victim" ]; then
    for p in $(pgrep -P "$MP"); do
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
    done
  fi
  last=$(tail -n 1 "$T/k2/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
  if [ -n "$last" ] && [ "$last" -ge "$K" ]; then [ -n "$victim" ] && kill -STOP "$victim"; break; fi
  kill -0 "$MP" 2>/dev/null || break
  sleep 0.05
done
if [ -n "$last" ] && [ "$last" -ge "$K" ]; then
  [ -n "$victim" ] && kill -9 "$victim"
  wait "$MP"; krc=$?
  done_at=$(tail -n 1 "$T/k2/metrics.jsonl" | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
  if [ -n "$victim" ] && [ "$krc" -ne 0 ]; then ok "kill -9 of rank 1 (pid $victim) at step >= $K (logged up to $done_at) ends the job (rc $krc)"; else bad "kill: victim '$victim', rc $krc"; fi
  run k2r timeout 300 "$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/k2" --set checkpoint.every_steps=3 --set resume=auto
  [ "$RC" -eq 0 ] && ok "after kill -9: resume=auto finishes" || bad "resume after kill failed (rc $RC): $ERR"
  same_run "kill -9 at step >= $K + resume" "$T/a2" "$T/k2"
else
  wait "$MP"
  bad "the 2-rank run ended before step $K could be reached (rc $?): $(tail -n 3 "$T/k2.err")"
fi

# ---- SIGTERM to a 1-rank run; SIGUSR1 to mpirun (it forwards it to the ranks)
"$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/t1" >"$T/t1.out" 2>"$T/t1.err" &
P=$!
if wait_step "$T/t1" 3 "$P"; then
  kill -TERM "$P"; wait "$P"; trc=$?
  [ "$trc" -eq 75 ] && ok "SIGTERM: checkpoint and exit 75" || bad "SIGTERM: rc $trc: $(cat "$T/t1.err")"
  grep -q "stopped by signal 15 after step" "$T/t1.err" && ok "SIGTERM: message names the signal and step" || bad "SIGTERM stderr: $(cat "$T/t1.err")"
  run t1r "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/t1" --set resume=auto
  [ "$RC" -eq 0 ] && ok "after SIGTERM: resume=auto finishes" || bad "resume after SIGTERM (rc $RC): $ERR"
  same_run "SIGTERM + resume" "$T/a1" "$T/t1"
else
  wait "$P"; bad "1-rank run ended before step 3 (rc $?)"
fi
# ---- SIGINT (Ctrl-C) as SIGTERM; job control on, or bash starts the
# background job with SIGINT ignored (which the trainer then keeps)
set -m
"$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/i1" >"$T/i1.out" 2>"$T/i1.err" &
P=$!
set +m
if wait_step "$T/i1" 3 "$P"; then
  kill -INT "$P"; wait "$P"; irc=$?
  [ "$irc" -eq 75 ] && grep -q "stopped by signal 2 after step" "$T/i1.err" && grep -q "SIGINT: stopping" "$T/i1.err" \
    && ok "SIGINT: a line on arrival, checkpoint, exit 75" || bad "SIGINT: rc $irc: $(cat "$T/i1.err")"
  run i1r "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/i1" --set resume=auto
  [ "$RC" -eq 0 ] && ok "after SIGINT: resume=auto finishes" || bad "resume after SIGINT (rc $RC): $ERR"
  same_run "SIGINT + resume" "$T/a1" "$T/i1"
else
  wait "$P"; bad "1-rank run ended before step 3 (rc $?)"
fi
"$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/g1" >"$T/g1.out" 2>"$T/g1.err" &
P=$!
if wait_step "$T/g1" 3 "$P"; then
  kill -INT "$P"; wait "$P"; grc=$?
  [ "$grc" -eq 0 ] && [ "$(json "$T/g1/summary.json" steps)" = $N ] \
    && ok "SIGINT ignored by the parent (a background job) stays ignored: all $N steps" \
    || bad "a background job's ignored SIGINT stopped it: rc $grc: $(cat "$T/g1.err")"
else
  wait "$P"; bad "1-rank run ended before step 3 (rc $?)"
fi
# ---- SIGTERM during the closing evaluation (after checkpoint.bin): the
# process ends at once with the signal (the evaluation is all that is left,
# and a resume of the finished run evaluates again)
EV=(--set eval.probe=true --set eval.max_iters=20 --set train.steps=4)
"$TR" "$SPEC" "${SMALL[@]}" "${EV[@]}" --set run.dir="$T/e1" >"$T/e1.out" 2>"$T/e1.err" &
P=$!
for i in $(seq 1200); do [ -e "$T/e1/checkpoint.bin" ] || ! kill -0 "$P" 2>/dev/null && break; sleep 0.02; done
kill -TERM "$P" 2>/dev/null; wait "$P"; erc=$?
[ "$erc" -eq 143 ] && [ -e "$T/e1/checkpoint.bin" ] && [ ! -e "$T/e1/summary.json" ] \
  && ok "SIGTERM in the closing evaluation: ended at once (143), checkpoint.bin kept, no summary" \
  || bad "SIGTERM in the evaluation: rc $erc, summary $( [ -e "$T/e1/summary.json" ] && echo written): $(tail -n 2 "$T/e1.err")"
run e1r "$TR" "$SPEC" "${SMALL[@]}" "${EV[@]}" --set run.dir="$T/e1" --set resume=auto
[ "$RC" -eq 0 ] && [ -n "$(json "$T/e1/summary.json" probe_acc)" ] \
  && ok "resume=auto of it evaluates again: probe_acc $(json "$T/e1/summary.json" probe_acc)" || bad "e1 resume: rc $RC: $ERR"
"$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/u2" >"$T/u2.out" 2>"$T/u2.err" &
MP=$!
if wait_step "$T/u2" 3 "$MP"; then
  kill -USR1 "$MP"; wait "$MP"; urc=$?
  [ "$urc" -eq 75 ] && ok "SIGUSR1 via mpirun: both ranks checkpoint and exit 75" || bad "SIGUSR1: rc $urc: $(tail -n 3 "$T/u2.err")"
  run u2r timeout 300 "$MPI" -np 2 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/u2" --set resume=auto
  [ "$RC" -eq 0 ] && ok "after SIGUSR1: resume=auto finishes" || bad "resume after SIGUSR1 (rc $RC): $ERR"
  same_run "SIGUSR1 + resume" "$T/a2" "$T/u2"
else
  wait "$MP"; bad "2-rank run ended before step 3 (rc $?)"
fi

# ---- a damaged newest checkpoint: fallback to the previous one
for how in flip truncate; do
  rm -rf "$T/c1"; cp -r "$T/b1" "$T/c1"
  NEWEST="$T/c1/checkpoints/step-00000040.ckpt"
  if [ $how = flip ]; then printf '\x5a' | dd of="$NEWEST" bs=1 seek=5000 conv=notrunc status=none
  else truncate -s 3000 "$NEWEST"; fi
  run c1 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/c1" --set checkpoint.every_steps=4 --set resume=auto
  [ "$RC" -eq 0 ] && ok "$how newest: resume=auto finishes" || bad "$how newest: rc $RC: $ERR"
  case "$ERR" in *"warning: $NEWEST: "*"previous good checkpoint $T/c1/checkpoints/step-00000036.ckpt"*) ok "$how newest: warning names it, falls back to step 36" ;;
    *) bad "$how newest: stderr $ERR" ;; esac
  [ -e "$NEWEST.corrupt" ] && ok "$how newest: moved aside to .corrupt" || bad "$how newest: not moved aside"
  same_run "$how newest + fallback" "$T/a1" "$T/c1"
done

# ---- refusals: another model config, a world size not dividing the global batch, resume: none
cp "$T/b1/spec.resolved.yaml" "$T/b1.spec"; BEFORE=$(sums "$T/b1")
run cfg "$TR" "$SPEC" "${SMALL[@]}" --set model.width=48 --set run.dir="$T/b1" --set resume=auto
expect_error "another model config refused" 4 "$T/b1/checkpoints/step-00000040.ckpt" "model.width is 32 in the checkpoint, 48 in the spec"
cmp -s "$T/b1.spec" "$T/b1/spec.resolved.yaml" && [ "$(sums "$T/b1")" = "$BEFORE" ] \
  && ok "the refused run left the run directory as it was" || bad "the refused resume changed $T/b1"
run cfgp "$TR" "$SPEC" "${SMALL[@]}" --set model.depth=3 --set eval.pool_blocks=1 --set run.dir="$T/other" \
  --set resume="$T/b1/checkpoints/step-00000036.ckpt"
expect_error "resume=PATH of another config refused" 4 "$T/b1/checkpoints/step-00000036.ckpt" "model.depth"
BEFORE=$(sums "$T/a2")
run world timeout 300 "$MPI" -np 3 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a2" --set resume=auto
case "$RC:$ERR" in 0:*) bad "3 ranks on a global batch of 64: resumed" ;;
  *"$T/a2/checkpoints/step-00000040.ckpt: global batch 64 (written by 2 ranks) does not divide by 3 ranks"*)
    ok "3 ranks on a global batch of 64 refused in one line naming both" ;;
  *) bad "3 ranks on a global batch of 64: rc $RC: $ERR" ;; esac
[ "$(sums "$T/a2")" = "$BEFORE" ] && ok "the refused resume left the run directory as it was" || bad "the refused resume changed $T/a2"
# 1 rank with train.batch_per_rank set to keep 2 x 32's global batch: refused (it changes the
# run's settings), saying the trainer keeps the global batch by itself (it said only the key)
run bpr "$TR" "$SPEC" "${SMALL[@]}" --set train.batch_per_rank=64 --set run.dir="$T/a2" --set resume=auto
expect_error "1 rank, train.batch_per_rank=64 on a 2 x 32 checkpoint" 4 "other training settings" \
  "(train.batch_per_rank is 64 here, 32 in $T/a2/spec.resolved.yaml; a resume on another number of ranks keeps the checkpoint's global batch by itself, the trainer re-splitting it over the ranks: do not set train.batch_per_rank)"
[ "$(sums "$T/a2")" = "$BEFORE" ] && ok "the refused batch_per_rank resume left the run directory as it was" \
  || bad "the refused batch_per_rank resume changed $T/a2"
BEFORE=$(sums "$T/b1")
run lr "$TR" "$SPEC" "${SMALL[@]}" --set optim.lr=0.0123 --set run.dir="$T/b1" --set resume=auto
expect_error "another optim.lr refused, naming the key" 4 "$T/b1/checkpoints/step-00000040.ckpt" \
  "other training settings" "(optim.lr is 0.0123 here, " " in $T/b1/spec.resolved.yaml)"
[ "$(sums "$T/b1")" = "$BEFORE" ] && ok "the refused resume left the run directory as it was" || bad "the refused lr resume changed $T/b1"
run seedp "$TR" "$SPEC" "${SMALL[@]}" --set seed=77 --set run.dir="$T/other2" \
  --set resume="$T/b1/checkpoints/step-00000036.ckpt"
expect_error "resume=PATH with another seed names it from that run's spec" 4 \
  "(seed is 77 here, " " in $T/b1/spec.resolved.yaml)"
run none "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b1"
expect_error "resume: none over a run with checkpoints refused" 4 "run.dir $T/b1 already holds checkpoints" "resume=auto"
run rdir "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/rdir" --set resume="$T"
expect_error "resume=DIRECTORY refused as one" 4 "cannot read $T: Is a directory"

# ---- NaN/Inf guard: no checkpoint of the bad state, the good ones untouched
JEPA_DEBUG_STOP_STEP=9 run n1 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/n1" --set checkpoint.every_steps=4
BEFORE=$(sums "$T/n1"); LIST=$(ls "$T/n1/checkpoints")
JEPA_DEBUG_NAN_STEP=11 run n1g "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/n1" --set checkpoint.every_steps=4 --set resume=auto
ERR=$(tail -n 1 "$T/err") # after the "resuming from" line
expect_error "NaN gradient stops training" 3 "step 11: non-finite gradient" "no checkpoint of this state" "step-00000009.ckpt"
[ "$(sums "$T/n1")" = "$BEFORE" ] && [ "$(ls "$T/n1/checkpoints")" = "$LIST" ] \
  && ok "NaN gradient: checkpoints and latest byte-identical, none added ($(echo $LIST))" || bad "NaN changed the checkpoints: $(ls "$T/n1/checkpoints")"
JEPA_DEBUG_NAN_STEP=10 JEPA_DEBUG_NAN_KIND=loss run n1l "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/n1" --set resume=auto
ERR=$(tail -n 1 "$T/err")
expect_error "NaN loss stops training" 3 "step 10: non-finite loss (nan)"
[ "$(sums "$T/n1")" = "$BEFORE" ] && ok "NaN loss: checkpoints byte-identical" || bad "NaN loss changed the checkpoints"
run n2 timeout 300 "$MPI" -np 2 -x JEPA_DEBUG_NAN_STEP=3 -x JEPA_DEBUG_NAN_KIND=loss "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/n2"
[ "$RC" -eq 3 ] && ok "2 ranks: a NaN loss on rank 1 stops both (exit 3)" || bad "2-rank NaN: rc $RC: $ERR"
case "$ERR" in *"step 3: non-finite loss"*) ok "2 ranks: the message names step 3" ;; *) bad "2-rank NaN stderr: $ERR" ;; esac
[ -e "$T/n2/checkpoints" ] && bad "2-rank NaN wrote a checkpoint" || ok "2 ranks: no checkpoint written"

# ---- Slurm: requeue through scontrol (a stand-in on PATH records its arguments)
mkdir -p "$T/bin"
printf '#!/bin/sh\necho "$@" > "%s/requeue.log"\n' "$T" > "$T/bin/scontrol"; chmod +x "$T/bin/scontrol"
PATH="$T/bin:$PATH" SLURM_JOB_ID=4242 JEPA_REQUEUE=1 JEPA_DEBUG_STOP_STEP=2 run rq "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/rq"
[ "$RC" -eq 75 ] && [ "$(cat "$T/requeue.log" 2>/dev/null)" = "requeue 4242" ] && ok "Slurm: scontrol requeue 4242 after the checkpoint" \
  || bad "requeue: rc $RC, log '$(cat "$T/requeue.log" 2>/dev/null)': $ERR"
finish
