#!/usr/bin/env bash
# What a new user's trial of jepa-launch found, end to end:
#   1. Ctrl-C (SIGINT to the whole foreground process group) stops a real
#      2-rank run with a checkpoint and says how to resume; a job stopped
#      before its first checkpoint is not told to "continue" (fake mpirun);
#      Ctrl-C or SIGHUP to a parallel sweep's group reaches each point's
#      mpirun once, as SIGUSR1 (fake mpirun);
#   2. one job per run directory: a second `run` and a plain jepa-train are
#      refused in one line naming the holder's pid, also after the first
#      launcher was killed -9 while its job goes on; once the holders are
#      gone (kill -9) a new run works; `slurm` into a run dir whose job
#      squeue still lists (fake sbatch and squeue) is refused;
#   3. resume --np 3 --dry-run refuses what the real resume refuses;
#      a directory in use is said so before anything else is said of it
#      (run, resume --np 3, slurm --set resume=auto);
#   4. state names the launcher's pid; a run whose launcher was killed -9
#      but whose job finished is `done`; SIGHUP (ssh gone) to the group
#      stops the run like SIGTERM (checkpoint, state stopped, launch.log);
#      so does SIGUSR1 to the launcher alone (a batch script's --signal=B:USR1)
#      or to a sweep, and SIGUSR2, SIGALRM, SIGXCPU; SIGPIPE does not kill it;
#   5. `run` into a finished run dir says it finished and to pick a new
#      run.dir, never `resume`;
#   6. a run that fails keeps the trainer's line in state and launch.log.
# About 60 s on 2 cores (tiny model).
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
TR="$B/jepa-train"
SPEC="$S/configs/fmnist-tiny.yaml"
FM=/usr/share/datasets/fashion-mnist
unset JEPA_MPIRUN JEPA_TRAIN_BIN
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$B/jepa-shard" pack --idx-images "$FM/t10k-images-idx3-ubyte.gz" --idx-labels "$FM/t10k-labels-idx1-ubyte.gz" \
  --out "$T/d" --split train --quiet || { bad "packing Fashion-MNIST's test split failed"; finish; exit 1; }
# 200 steps of 2 ranks x 64: long enough (seconds) to be signalled mid-run
SMALL=(--np 2 --set model.width=48 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2
       --set model.pred_width=16 --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=200
       --set train.minutes=0 --set train.log_every=1 --set train.batch_per_rank=64 --set parallel.threads_per_rank=1
       --set eval.probe=false --set checkpoint.every_steps=1000 --set data.train="$T/d" --set data.test="$T/d")
cd "$T" || exit 1

# at_step DIR N: waits (up to 60 s) until DIR/metrics.jsonl has logged step N
at_step() {
  local s
  for _ in $(seq 1200); do
    s=$(tail -1 "$1/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
    [ "${s:-0}" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
# started NAME CMD...: CMD in the background as its own process group (a
# terminal's foreground job); PID its pid (= the group)
started() {
  local name=$1; shift
  set -m
  "$@" >"$T/$name.out" 2>"$T/$name.err" & PID=$!
  set +m
}
# ended NAME: waits for PID; RC, and ERR its last stderr line from us
ended() {
  wait "$PID"; RC=$?
  ERR=$(grep '^jepa-launch' "$T/$1.err")
}
ckpts() { ls "$1"/checkpoints/step-*.ckpt 2>/dev/null | wc -l; }

# ---- 1. Ctrl-C: SIGINT to the whole group, a checkpoint, resume advised.
# Steps of 1.5 s (a real model's): mpirun's own abort kills the ranks 1 s
# after its SIGTERM (odls_base_sigkill_timeout), before such a step ends
SLOW=(env JEPA_DEBUG_SLOW_START=60:1500)
started cc "${SLOW[@]}" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/cc"
at_step "$T/cc" 1 || bad "cc: never reached step 1: $(tail -3 "$T/cc.err")"
kill -INT -"$PID"; ended cc
[ "$RC" -eq 75 ] && [ "$(ckpts "$T/cc")" -ge 1 ] && [ "$(cat "$T/cc/state")" = "stopped signal=2" ] \
  && ok "Ctrl-C to the group: exit 75, a checkpoint, state stopped signal=2" \
  || bad "Ctrl-C: rc $RC, $(ckpts "$T/cc") checkpoints, state '$(cat "$T/cc/state")': $(tail -3 "$T/cc.err")"
case "$ERR" in *"stopped by signal 2 (SIGINT"*"continue it with jepa-launch resume $T/cc") ok "Ctrl-C: says how to resume" ;;
  *) bad "Ctrl-C line: $ERR" ;; esac

# before any checkpoint: no "continue it with"
printf '#!/bin/sh\nexec sleep 30\n' >"$T/sleeprun" && chmod +x "$T/sleeprun"
started early env JEPA_MPIRUN="$T/sleeprun" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/early"
for _ in $(seq 200); do grep -q '^running' "$T/early/state" 2>/dev/null && break; sleep 0.05; done
kill -INT -"$PID"; ended early
case "$ERR" in *"before its first checkpoint"*"starts it again from step 0"*) [ "$RC" -eq 75 ] \
  && ok "Ctrl-C before a checkpoint: says nothing was kept (exit 75)" || bad "early: rc $RC" ;;
  *) bad "Ctrl-C before a checkpoint: $ERR" ;; esac

# ---- 1. Ctrl-C (or a hangup) to a parallel sweep's group: each point's
# mpirun gets one signal, SIGUSR1 (its checkpoint), never a second (the
# abort): the points are not in the sweep's group, so only the sweep's
# forwarding reaches them. The fake mpirun logs each signal it gets.
cat >"$T/mpirun-log" <<'SH'
#!/bin/bash
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} ;; esac; done
got=0 n=0
for s in INT TERM HUP USR1; do trap "echo $s >>'$d/signals'; got=1" $s; done
for s in TSTP CONT; do trap "echo $s >>'$d/signals'" $s; done
ps -o pgid= -p "$PPID" | tr -d ' ' >"$d/lpgid" # the point's jepa-launch's group
sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status >"$d/sigign" # what the launcher left ignored
: >"$d/started"
for i in $(seq 600); do # a second signal has 1 s to come before we exit 75
  sleep 0.05
  [ "$got" = 1 ] && { n=$((n + 1)); [ "$n" -ge 20 ] && exit 75; }
done
exit 1
SH
chmod +x "$T/mpirun-log"
sigsweep() { # SIG NAME: a 2-point sweep, 2 at a time, SIG to its group once both run
  printf 'base: %s\ndir: %s\nparallel: 2\nset: {max_restarts: 0, data.train: %s, data.test: %s}\ngrid:\n  optim.lr: [0.001, 0.002]\n' \
    "$SPEC" "$T/$2" "$T/d" "$T/d" >"$T/$2.yaml"
  started "$2" env JEPA_MPIRUN="$T/mpirun-log" "$L" sweep "$T/$2.yaml"
  for _ in $(seq 400); do [ -e "$T/$2/point-000/started" ] && [ -e "$T/$2/point-001/started" ] && break; sleep 0.05; done
  # two signals to one point coalesce when they come together: its group
  # is what says whether the terminal's reaches it besides ours
  grep -qx "$PID" "$T/$2"/point-00*/lpgid && bad "SIG$1: a point's jepa-launch is in the sweep's group $PID"
  kill -"$1" -"$PID"; ended "$2"
  [ "$RC" -eq 75 ] && [ "$(cat "$T/$2/point-000/signals" 2>&1)" = USR1 ] && [ "$(cat "$T/$2/point-001/signals" 2>&1)" = USR1 ] \
    && ok "SIG$1 to a parallel sweep's group: exit 75, each point's mpirun got one SIGUSR1" \
    || bad "SIG$1 to a sweep: rc $RC, signals $(cat "$T/$2"/point-00*/signals 2>&1 | tr '\n' ' '): $ERR"
}
sigsweep INT swi
sigsweep HUP swh
case "$ERR" in *"stopped by signal 1 (SIGHUP)"*) ok "SIGHUP to a sweep: said as SIGHUP" ;; *) bad "SIGHUP sweep line: $ERR" ;; esac
# Ctrl-Z, fg, then Ctrl-\ at a sweep's terminal: they reach only the sweep's
# group, so the sweep passes each on; Ctrl-\ used to kill the sweep alone
# (its default action) and leave the points' jobs running
printf 'base: %s\ndir: %s\nparallel: 2\nset: {max_restarts: 0, data.train: %s, data.test: %s}\ngrid:\n  optim.lr: [0.001, 0.002]\n' \
  "$SPEC" "$T/swq" "$T/d" "$T/d" >"$T/swq.yaml"
started swq env JEPA_MPIRUN="$T/mpirun-log" "$L" sweep "$T/swq.yaml"
for _ in $(seq 400); do [ -e "$T/swq/point-000/started" ] && [ -e "$T/swq/point-001/started" ] && break; sleep 0.05; done
kill -TSTP -"$PID"; sleep 0.5; lst=$(ps -o stat= -p "$PID"); kill -CONT -"$PID"; sleep 0.5
kill -QUIT -"$PID"; ended swq
[ "$RC" -eq 75 ] && case "$lst" in T*) true ;; *) false ;; esac \
  && [ "$(tr '\n' ' ' <"$T/swq/point-000/signals" 2>&1)" = "TSTP CONT TERM " ] \
  && [ "$(tr '\n' ' ' <"$T/swq/point-001/signals" 2>&1)" = "TSTP CONT TERM " ] \
  && ok "Ctrl-Z, fg, Ctrl-\\ to a sweep: it stops and continues, each point's mpirun gets TSTP, CONT, then its abort" \
  || bad "sweep Ctrl-Z/fg/Ctrl-\\: rc $RC, sweep stat '$lst', signals $(cat "$T/swq"/point-00*/signals 2>&1 | tr '\n' ' '): $ERR"
case "$ERR" in *"stopped by signal 3 (SIGQUIT)"*) ok "Ctrl-\\ to a sweep: said as SIGQUIT" ;; *) bad "SIGQUIT sweep line: $ERR" ;; esac

# ---- 4. at a terminal: Ctrl-Z stops the job too and fg continues it
# (TSTP/CONT reach mpirun); the first Ctrl-C says what it does; Ctrl-\
# aborts the job (SIGTERM, mpirun's abort) and says so
started say env JEPA_MPIRUN="$T/mpirun-log" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/say"
for _ in $(seq 400); do [ -e "$T/say/started" ] && break; sleep 0.05; done
kill -TSTP -"$PID"; sleep 0.5; lst=$(ps -o stat= -p "$PID"); kill -CONT -"$PID"; sleep 0.5
kill -INT -"$PID"; ended say
[ "$(tr '\n' ' ' <"$T/say/signals" 2>&1)" = "TSTP CONT USR1 " ] && case "$lst" in T*) true ;; *) false ;; esac \
  && ok "Ctrl-Z stops the launcher and reaches mpirun, fg too; then Ctrl-C: one SIGUSR1" \
  || bad "Ctrl-Z/fg/Ctrl-C: launcher stat '$lst', mpirun got $(tr '\n' ' ' <"$T/say/signals" 2>&1)"
case "$ERR" in "jepa-launch: SIGINT: the job checkpoints at the end of its step and stops; a second SIGINT aborts it"$'\n'*) \
  ok "the first Ctrl-C says what it does" ;; *) bad "first Ctrl-C said: $ERR" ;; esac
started quit env JEPA_MPIRUN="$T/mpirun-log" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/quit"
for _ in $(seq 400); do [ -e "$T/quit/started" ] && break; sleep 0.05; done
kill -QUIT -"$PID"; ended quit
[ "$RC" -eq 75 ] && [ "$(cat "$T/quit/signals" 2>&1)" = TERM ] && [ "$(cat "$T/quit/state")" = "stopped signal=3" ] \
  && ok "Ctrl-\\: mpirun gets its abort (SIGTERM), the launcher waits for it, exit 75" \
  || bad "Ctrl-\\: rc $RC, mpirun got $(cat "$T/quit/signals" 2>&1), state $(cat "$T/quit/state" 2>&1): $ERR"

# ---- 3. resume --dry-run refuses what resume refuses (2 ranks x 64 = 128)
run dry3 "$L" resume "$T/cc" --np 3 --dry-run
expect_error "resume --np 3 --dry-run of a 2x64 checkpoint" 2 "global batch 128 (written by 2 ranks) does not divide by 3 ranks"
[ -z "$OUT" ] || bad "resume --dry-run printed: $OUT"

# ---- 2. a directory in use is said to be in use before anything else is
# said of it: cc (stopped, with checkpoints) resumed by a launcher (fake
# mpirun) while a run (resume: none), a resume at 3 ranks and a slurm with
# resume=auto come; they advised `resume` (refused in turn), a world size,
# or said its spec differs
printf '#!/bin/sh\nexit 0\n' >"$T/okrun0" && chmod +x "$T/okrun0" # where one is not refused: it trains nothing
started ccb env JEPA_MPIRUN="$T/sleeprun" "$L" resume "$T/cc"
for _ in $(seq 200); do grep -q '^running pid' "$T/cc/state" 2>/dev/null && break; sleep 0.05; done
run ccr env JEPA_MPIRUN="$T/okrun0" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/cc"
expect_error "run into a directory a resume holds" 2 "run.dir $T/cc is in use by pid $PID"
run ccn env JEPA_MPIRUN="$T/okrun0" "$L" resume "$T/cc" --np 3
expect_error "resume --np 3 of a directory in use" 2 "run.dir $T/cc is in use by pid $PID"
run ccs env JEPA_SBATCH=/nonexistent/sbatch "$L" slurm "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/cc" --set resume=auto
expect_error "slurm --set resume=auto into a directory in use" 2 "run.dir $T/cc is in use by pid $PID"
mp=$(sed -n 's/.* mpirun=\([0-9]*\) .*/\1/p' "$T/cc/state")
kill -9 "$PID" ${mp:+"$mp"}; wait "$PID" 2>/dev/null

# ---- 4. SIGHUP to the group: stopped like SIGTERM
started hup "${SLOW[@]}" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/hup"
at_step "$T/hup" 1 || bad "hup: never reached step 1"
kill -HUP -"$PID"; ended hup
[ "$RC" -eq 75 ] && [ "$(cat "$T/hup/state" 2>&1)" = "stopped signal=1" ] && [ "$(ckpts "$T/hup")" -ge 1 ] \
  && grep -q 'stopped by signal 1' "$T/hup/launch.log" \
  && ok "SIGHUP: exit 75, a checkpoint, state stopped signal=1, said in launch.log" \
  || bad "SIGHUP: rc $RC, state '$(cat "$T/hup/state" 2>&1)', $(ckpts "$T/hup") checkpoints, log: $(tail -1 "$T/hup/launch.log")"

# ---- 1. SIGUSR1 to the launcher alone (what `#SBATCH --signal=B:USR1@90`
# sends a batch script that is `jepa-launch run`): stopped like SIGTERM, with
# a checkpoint; it used to kill the launcher (exit 138) and orphan the job
started usr "${SLOW[@]}" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/usr"
at_step "$T/usr" 1 || bad "usr: never reached step 1"
kill -USR1 "$PID"; ended usr
[ "$RC" -eq 75 ] && [ "$(cat "$T/usr/state" 2>&1)" = "stopped signal=10" ] && [ "$(ckpts "$T/usr")" -ge 1 ] \
  && ! pgrep -f "$T/usr/spec" >/dev/null \
  && ok "SIGUSR1 to the launcher: exit 75, a checkpoint, state stopped signal=10, no process left" \
  || bad "SIGUSR1: rc $RC, state '$(cat "$T/usr/state" 2>&1)', $(ckpts "$T/usr") checkpoints, left: $(pgrep -af "$T/usr/spec")"
case "$ERR" in *"stopped by signal 10 (SIGUSR1;"*"continue it with jepa-launch resume $T/usr") ok "SIGUSR1: says how to resume" ;;
  *) bad "SIGUSR1 line: $ERR" ;; esac
# a second SIGUSR1 is the abort, as a second SIGTERM is (fake mpirun)
started usr2 env JEPA_MPIRUN="$T/mpirun-log" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/usr2"
for _ in $(seq 400); do [ -e "$T/usr2/started" ] && break; sleep 0.05; done
kill -USR1 "$PID"; sleep 0.2; kill -USR1 "$PID"; ended usr2
[ "$RC" -eq 75 ] && [ "$(tr '\n' ' ' <"$T/usr2/signals" 2>&1)" = "USR1 TERM " ] \
  && ok "two SIGUSR1: mpirun gets SIGUSR1, then its abort (SIGTERM)" \
  || bad "two SIGUSR1: rc $RC, mpirun got $(tr '\n' ' ' <"$T/usr2/signals" 2>&1): $ERR"
# a sweep passes SIGUSR1 on to each running point as SIGTERM is
sigsweep USR1 swu
case "$ERR" in *"stopped by signal 10 (SIGUSR1)"*) ok "SIGUSR1 to a sweep: said as SIGUSR1" ;; *) bad "SIGUSR1 sweep line: $ERR" ;; esac

# ---- 1. every other signal that would kill the launcher alone (its job
# orphaned, holding the run's lock): SIGUSR2, SIGALRM, SIGXCPU (a CPU-time
# limit's, a batch system's warning), a real-time one stop the job as
# SIGTERM does, to the launcher alone or to a sweep; SIGPIPE is ignored (a
# closed stdout or stderr fails the write) and mpirun gets it at its
# default (fake mpirun)
for sig in USR2 ALRM XCPU RTMIN+3; do
  num=$(kill -l "$sig")
  started "o$sig" env JEPA_MPIRUN="$T/mpirun-log" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/o$sig"
  for _ in $(seq 400); do [ -e "$T/o$sig/started" ] && break; sleep 0.05; done
  kill -"$sig" "$PID"; ended "o$sig"
  [ "$RC" -eq 75 ] && [ "$(cat "$T/o$sig/signals" 2>&1)" = USR1 ] && [ "$(cat "$T/o$sig/state" 2>&1)" = "stopped signal=$num" ] \
    && case "$ERR" in *"stopped by signal $num (SIG$sig;"*) true ;; *) false ;; esac \
    && ok "SIG$sig to the launcher: mpirun gets one SIGUSR1, state stopped signal=$num, exit 75" \
    || bad "SIG$sig: rc $RC, mpirun got $(cat "$T/o$sig/signals" 2>&1), state '$(cat "$T/o$sig/state" 2>&1)': $ERR"
done
sigsweep USR2 swu2
case "$ERR" in *"stopped by signal 12 (SIGUSR2)"*) ok "SIGUSR2 to a sweep: said as SIGUSR2" ;; *) bad "SIGUSR2 sweep line: $ERR" ;; esac
[ $(( (0x$(cat "$T/swu2/point-000/sigign") >> 12) & 1 )) -eq 0 ] && ok "a point's mpirun has SIGPIPE at its default" \
  || bad "a point's mpirun ignores SIGPIPE: SigIgn $(cat "$T/swu2/point-000/sigign")"
started opipe env JEPA_MPIRUN="$T/mpirun-log" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/opipe"
for _ in $(seq 400); do [ -e "$T/opipe/started" ] && break; sleep 0.05; done
kill -PIPE "$PID"; sleep 0.5
kill -0 "$PID" 2>/dev/null && ok "SIGPIPE to the launcher: ignored, it runs on" || bad "SIGPIPE killed the launcher"
[ $(( (0x$(cat "$T/opipe/sigign") >> 12) & 1 )) -eq 0 ] && ok "its mpirun has SIGPIPE at its default" \
  || bad "mpirun ignores SIGPIPE: SigIgn $(cat "$T/opipe/sigign")"
kill -TERM "$PID"; ended opipe
[ "$RC" -eq 75 ] && [ "$(cat "$T/opipe/signals" 2>&1)" = USR1 ] && ok "then SIGTERM stops it as ever (exit 75)" \
  || bad "SIGTERM after SIGPIPE: rc $RC, mpirun got $(cat "$T/opipe/signals" 2>&1): $ERR"
# its stderr a pipe whose reader is gone: the first Ctrl-C's line fails
# (EPIPE), the launcher still stops the job and waits for it
mkfifo "$T/efifo"
cat "$T/efifo" >/dev/null & rdr=$!
set -m
env JEPA_MPIRUN="$T/mpirun-log" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/epipe" >"$T/epipe.out" 2>"$T/efifo" & PID=$!
set +m
for _ in $(seq 400); do [ -e "$T/epipe/started" ] && break; sleep 0.05; done
kill "$rdr"; wait "$rdr" 2>/dev/null
kill -INT -"$PID"; wait "$PID"; RC=$?
[ "$RC" -eq 75 ] && [ "$(cat "$T/epipe/signals" 2>&1)" = USR1 ] && [ "$(cat "$T/epipe/state" 2>&1)" = "stopped signal=2" ] \
  && ok "Ctrl-C with stderr a closed pipe: the job stopped, exit 75" \
  || bad "Ctrl-C, stderr a closed pipe: rc $RC, mpirun got $(cat "$T/epipe/signals" 2>&1), state '$(cat "$T/epipe/state" 2>&1)'"
sleep 1.5; pgrep -f "$T/epipe/spec" >/dev/null && bad "epipe: its mpirun left running" || ok "epipe: nothing left running"

# ---- 4. kill -9 of the launcher: its job goes on and finishes: done
started or "$L" run "$SPEC" "${SMALL[@]}" --set train.steps=60 --set run.dir="$T/or"
at_step "$T/or" 2 || bad "or: never reached step 2"
st=$(cat "$T/or/state")
case "$st" in "running pid=$PID mpirun="*) ok "state names the launcher's pid: $st" ;;
  *) bad "state '$st' does not name the launcher pid $PID" ;; esac
kill -9 "$PID"; wait "$PID" 2>/dev/null
for _ in $(seq 1200); do [ -e "$T/or/summary.json" ] && break; sleep 0.05; done
sleep 1 # mpirun's exit after summary.json
run st "$L" status "$T/or"
case "$OUT" in "or: done, step 60"*) ok "status of the finished orphan: $OUT" ;; *) bad "status: $OUT" ;; esac
run rs "$L" results "$T/or"
case "$OUT" in *running*|*stale*) bad "results: $OUT" ;; *done*) ok "results says done" ;; *) bad "results: $OUT" ;; esac

# ---- 2. a second job into a running run's directory (the others run a
# fake mpirun that fails: where one is not refused, it trains nothing)
printf '#!/bin/sh\nexit 1\n' >"$T/failrun" && chmod +x "$T/failrun"
FAIL1=(env JEPA_MPIRUN="$T/failrun" timeout 60)
started lk "$L" run "$SPEC" "${SMALL[@]}" --set train.steps=60 --set run.dir="$T/lk"
at_step "$T/lk" 2 || bad "lk: never reached step 2"
lpid=$PID
spec0=$(cat "$T/lk/spec.resolved.yaml" "$T/lk/state" | sha256sum)
run second "${FAIL1[@]}" "$L" run "$SPEC" "${SMALL[@]}" --set train.steps=60 --set run.dir="$T/lk" --set max_restarts=0
expect_error "a second run into a running run's directory" 2 "run.dir $T/lk is in use by pid $lpid"
run plain timeout 20 "$TR" "$SPEC" "${SMALL[@]:2}" --set train.steps=60 --set run.dir="$T/lk" --set resume=auto
expect_error "a plain jepa-train into it" 4 "run.dir $T/lk is in use by pid"
run rdry "$L" resume "$T/lk" --dry-run # makes the real resume's checks: the lock too
expect_error "resume --dry-run of a running run's directory" 2 "run.dir $T/lk is in use by pid $lpid"
[ "$(cat "$T/lk/spec.resolved.yaml" "$T/lk/state" | sha256sum)" = "$spec0" ] && ok "the refused ones wrote nothing" \
  || bad "spec.resolved.yaml or state changed by a refused job"
kill -9 "$lpid"; wait "$lpid" 2>/dev/null
run third "${FAIL1[@]}" "$L" run "$SPEC" "${SMALL[@]}" --set train.steps=60 --set run.dir="$T/lk" --set max_restarts=0
expect_error "a run after kill -9 of the launcher, its job going on" 2 "run.dir $T/lk is in use by pid"

# ---- 5. run into the finished directory: not told to resume
run fin "${FAIL1[@]}" "$L" run "$SPEC" "${SMALL[@]}" --set train.steps=60 --set run.dir="$T/or"
expect_error "run into a finished run dir" 2 "run.dir $T/or holds a finished run" "choose a new run.dir"
case "$ERR" in *"jepa-launch resume"*) bad "run into a finished dir advises resume: $ERR" ;; esac

# ---- 6. a run that fails past setup keeps why in its directory: the
# trainer's one line (RUN/error, written when jepa-launch started it) in
# state, which status and results show, and in launch.log; it was on the
# terminal alone (state 'failed status=3 (...)', launch.log without it)
run nan env JEPA_DEBUG_NAN_STEP=3 "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/nan" --set max_restarts=0
why=$(printf '%s\n' "$ERR" | grep '^jepa-train: step 3: non-finite')
[ "$RC" -eq 3 ] && [ -n "$why" ] && [ "$(cat "$T/nan/state")" = "failed status=3 (non-finite loss; not restarted): $why" ] \
  && grep -qF "attempt 0: $why" "$T/nan/launch.log" && ok "a failed run's state and launch.log hold the trainer's line" \
  || bad "failed run: rc $RC, line '$why', state '$(cat "$T/nan/state" 2>&1)', log: $(cat "$T/nan/launch.log" 2>&1)"
run nans "$L" status "$T/nan"
case "$OUT" in "nan: failed status=3 (non-finite loss; not restarted): $why, step "*) ok "status shows why it failed" ;;
  *) bad "status of the failed run: $OUT" ;; esac
# each attempt's line is its own: a restart that says nothing leaves no
# earlier line behind (fake mpirun: 1 with a line, then 1 without)
cat >"$T/fail-once-said" <<'SH'
#!/bin/sh
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} ;; esac; done
[ -e "$d/said" ] && exit 1
: >"$d/said"; echo 'jepa: rank 1: cannot write checkpoint: No space left on device' >"$d/error"; exit 1
SH
chmod +x "$T/fail-once-said"
run f1 env JEPA_MPIRUN="$T/fail-once-said" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/f1" --set max_restarts=1
[ "$RC" -eq 1 ] && [ "$(cat "$T/f1/state")" = "failed status=1 restarts=1" ] \
  && grep -q 'attempt 0: jepa: rank 1: cannot write checkpoint: No space left on device$' "$T/f1/launch.log" \
  && ok "a restart's failure without a line: state without the last attempt's line, launch.log has it" \
  || bad "restart after a said failure: rc $RC, state '$(cat "$T/f1/state" 2>&1)', log: $(cat "$T/f1/launch.log" 2>&1)"

# ---- 2. after kill -9 of every holder, a new run works (fake mpirun)
started k9 env JEPA_MPIRUN="$T/sleeprun" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/k9"
for _ in $(seq 200); do grep -q '^running' "$T/k9/state" 2>/dev/null && break; sleep 0.05; done
spec0=$(cat "$T/k9/spec.resolved.yaml" "$T/k9/state" | sha256sum)
run k9b env JEPA_MPIRUN="$T/sleeprun" timeout 60 "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/k9"
expect_error "a second run into k9" 2 "run.dir $T/k9 is in use by pid $PID"
[ "$(cat "$T/k9/spec.resolved.yaml" "$T/k9/state" | sha256sum)" = "$spec0" ] && ok "it wrote nothing" \
  || bad "spec.resolved.yaml or state changed by the refused run"
mp=$(sed -n 's/.* mpirun=\([0-9]*\) .*/\1/p' "$T/k9/state")
kill -9 "$PID" ${mp:+"$mp"}; wait "$PID" 2>/dev/null
printf '#!/bin/sh\nexit 0\n' >"$T/okrun" && chmod +x "$T/okrun"
run k9c env JEPA_MPIRUN="$T/okrun" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/k9"
[ "$RC" -eq 0 ] && [ "$(cat "$T/k9/state")" = done ] && ok "after kill -9 of the holders, a new run works" \
  || bad "new run after kill -9: rc $RC: $ERR"
# ---- 2. Slurm: a run dir whose job squeue still lists is not submitted again
mkdir -p fakebin
printf '#!/bin/sh\necho 4711\n' >fakebin/sbatch
# squeue -h -r -o '%i %A %T' -j IDS: job 4711's line while $FAKE_Q holds its state
printf '#!/bin/sh\ncase ",$6," in *,4711,*) [ -e "$FAKE_Q" ] && echo "4711 4711 $(cat "$FAKE_Q")" ;; esac; exit 0\n' >fakebin/squeue
chmod +x fakebin/sbatch fakebin/squeue
export JEPA_SBATCH="$T/fakebin/sbatch" JEPA_SQUEUE="$T/fakebin/squeue" FAKE_Q="$T/queue"
echo PENDING >"$T/queue"
run sl1 "$L" slurm "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/sl"
[ "$RC" -eq 0 ] && [ "$OUT" = "submitted job 4711" ] && ok "slurm: submitted" || bad "slurm: rc $RC [$OUT] $ERR"
spec0=$(cat "$T/sl/spec.resolved.yaml" "$T/sl/state" "$T/sl/job.sbatch" | sha256sum)
run sl2 "$L" slurm "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/sl"
expect_error "slurm again while the job is pending" 2 "run.dir $T/sl belongs to Slurm job 4711, still PENDING (squeue)"
# ... nor run locally, by `resume` or `run`, while it is queued (fake mpirun:
# where one is not refused, it trains nothing)
run sl2r env JEPA_MPIRUN="$T/okrun" "$L" resume "$T/sl"
expect_error "resume while its Slurm job is pending" 2 "run.dir $T/sl belongs to Slurm job 4711, still PENDING (squeue)"
run sl2l env JEPA_MPIRUN="$T/okrun" "$L" run "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/sl"
expect_error "run while its Slurm job is pending" 2 "run.dir $T/sl belongs to Slurm job 4711, still PENDING (squeue)"
[ "$(cat "$T/sl/spec.resolved.yaml" "$T/sl/state" "$T/sl/job.sbatch" | sha256sum)" = "$spec0" ] \
  && ok "the refused local runs wrote nothing" || bad "a refused local run changed $T/sl"
echo 'running job=4711 attempt=0' >"$T/sl/state"
echo RUNNING >"$T/queue"
spec1=$(cat "$T/sl/spec.resolved.yaml" "$T/sl/state" "$T/sl/job.sbatch" | sha256sum)
run sl3 "$L" slurm "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/sl"
expect_error "slurm again while the job runs" 2 "Slurm job 4711, still RUNNING"
# hashed before state is put back: a refused submit that wrote state shows
[ "$(cat "$T/sl/spec.resolved.yaml" "$T/sl/state" "$T/sl/job.sbatch" | sha256sum)" = "$spec1" ] \
  && ok "the refused submits wrote nothing" || bad "a refused submit changed $T/sl"
echo submitted >"$T/sl/state"
rm "$T/queue" # the job has ended: squeue lists it not
# its batch script, started while a local job holds the dir: the trainer's
# lock refusal (exit 4, fake srun) leaves the local job's state as it was
started slk env JEPA_MPIRUN="$T/sleeprun" "$L" resume "$T/sl"
for _ in $(seq 200); do grep -q '^running pid' "$T/sl/state" 2>/dev/null && break; sleep 0.05; done
st0=$(cat "$T/sl/state")
printf '#!/bin/sh\necho "jepa-train: run.dir $FAKE_D is in use by pid 1 (it holds $FAKE_D/lock): ..." >&2\nexit 4\n' \
  >fakebin/srun && chmod +x fakebin/srun
FAKE_D="$T/sl" SLURM_JOB_ID=4712 PATH="$T/fakebin:$PATH" bash "$T/sl/job.sbatch" >"$T/slk.job" 2>&1; src=$?
[ "$src" -eq 4 ] && [ "$(cat "$T/sl/state")" = "$st0" ] && grep -q 'refused: another job holds' "$T/sl/launch.log" \
  && ok "a batch job refused by the run lock leaves the live job's state ($st0)" \
  || bad "batch job refused by the lock: rc $src, state '$(cat "$T/sl/state")' (was '$st0')"
mp=$(sed -n 's/.* mpirun=\([0-9]*\) .*/\1/p' "$T/sl/state")
kill -9 "$PID" ${mp:+"$mp"}; wait "$PID" 2>/dev/null
run sl4 "$L" slurm "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/sl"
[ "$RC" -eq 0 ] && ok "slurm once the job is gone: submitted" || bad "slurm after the job ended: rc $RC $ERR"
# a squeue that hangs (slurmctld down) is given up after 10 s: nothing known, submitted
printf '#!/bin/sh\nexec sleep 60\n' >fakebin/squeue-hang && chmod +x fakebin/squeue-hang
SECONDS=0
run sl5 env JEPA_SQUEUE="$T/fakebin/squeue-hang" timeout 40 "$L" slurm "$SPEC" "${SMALL[@]:2}" --set run.dir="$T/sl"
[ "$RC" -eq 0 ] && [ "$SECONDS" -lt 30 ] && ok "a hung squeue: given up, submitted in ${SECONDS}s" \
  || bad "a hung squeue: rc $RC after ${SECONDS}s: $ERR"
unset JEPA_SBATCH JEPA_SQUEUE
finish
