#!/bin/bash
# launch_failures.sh - what a failed attempt leaves in the run directory:
#   1. RUN/error's temp files (jepa-train's error.PID.tmp), which a rank
#      killed while writing the line leaves, are removed before each attempt
#      and taken back with a start that came to nothing; other names stay;
#   2. a RUN/error line over 316 bytes reaches state and launch.log cut
#      after a whole UTF-8 character (a path's), ending "...";
#   3. an attempt a signal ended leaves no line of the trainer's: state and
#      launch.log say what killed it, mpirun itself, a rank (mpirun's status
#      128 + S) or, from mpirun's words in a sweep point's train.log, which
#      rank on which node; a real 2-rank run whose rank 1 sends itself
#      SIGKILL (JEPA_DEBUG_KILL_STEP), under run and under a sweep;
#   4. an attempt a rank's non-zero exit ended without a line of the
#      trainer's (a library's exit()): from mpirun's words in a sweep
#      point's train.log, which rank exited with which status, never from
#      an earlier attempt's words; a real 2-rank sweep point whose rank 1
#      calls exit(7) (JEPA_DEBUG_EXIT_STEP).
# A fake mpirun, then mpirun (about 10 s on 2 cores).
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
unset JEPA_TRAIN_BIN
cd "$T" || exit 1
tiny_data images tr te || { finish; exit 1; }
printf 'data:\n  train: %s/tr\n  test: %s/te\ntrain.steps: 10\n' "$T" "$T" >base.yaml

# the fake mpirun: each attempt lists the run directory as it found it
# (seen/NAME.N, outside it); a first attempt does what FAKE_FIRST says
# and exits FAKE_STATUS; a restart (resume=auto) exits FAKE_RESUME_STATUS
# when set, else finishes the run
cat >mpirun <<'SH'
#!/bin/bash
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} ;; esac; done
s=$FAKE_SEEN/${d##*/}
n=$(ls "$FAKE_SEEN" | grep -c "^${d##*/}\.")
ls -A "$d" >"$s.$n"
case " $* " in
  *resume=auto*)
    [ -n "${FAKE_RESUME_STATUS:-}" ] && exit "$FAKE_RESUME_STATUS"
    printf '{"step": 10, "loss": 0.5}\n' >"$d/metrics.jsonl"
    printf '{"objective": "ijepa", "final_loss": 0.5, "probe_acc": -1, "steps": 10, "planned_steps": 10, "stop_reason": "completed", "param_hash": "00000000000000ab"}\n' >"$d/summary.json"
    exit 0 ;;
esac
eval "${FAKE_FIRST:-}"
exit "${FAKE_STATUS:-1}"
SH
chmod +x mpirun
export JEPA_MPIRUN="$T/mpirun" FAKE_SEEN="$T/seen"
mkdir seen

# ---- 1. error.PID.tmp: a rank killed while writing RUN/error (its temp
# half-written), another name that only looks like one
FAKE_FIRST='printf "jepa: rank 1: half a li" >"$d/error.4242.tmp"; : >"$d/error.x.tmp"' FAKE_STATUS=137 \
  run et "$L" run base.yaml --set run.dir="$T/et" --set max_restarts=1
[ "$RC" -eq 0 ] && [ "$(cat et/state)" = done ] && ok "fixture: attempt 0 left error.4242.tmp, attempt 1 finished" \
  || bad "et: rc $RC: $ERR"
grep -qx 'error.4242.tmp' seen/et.0 && bad "attempt 0 found an error temp file it had not written yet" || true
grep -q '^error\.[0-9]*\.tmp$' seen/et.1 && bad "attempt 1 found $(grep '^error\.' seen/et.1 | tr '\n' ' ')" \
  || ok "the restart found no error.PID.tmp: removed before the attempt"
[ ! -e et/error.4242.tmp ] && [ -e et/error.x.tmp ] && ok "error.x.tmp (not jepa-train's name) stays" \
  || bad "after the run: $(ls et | tr '\n' ' ')"
# a start that came to nothing (refused at setup, exit 4) takes the temp
# files back with the rest: nothing of the run directory is left
FAKE_FIRST='printf "jepa-train: rank 1: x\n" >"$d/error"; printf "jepa-train: rank 0: x" >"$d/error.77.tmp"' \
  FAKE_STATUS=4 run eu "$L" run base.yaml --set run.dir="$T/eu/run"
[ "$RC" -eq 4 ] && [ ! -e eu ] && ok "a start refused at setup takes back error and error.77.tmp: nothing left" \
  || bad "eu: rc $RC, left $(find eu 2>&1 | tr '\n' ' '): $ERR"

# ---- 2. a long line with a UTF-8 path: 3-byte characters after 0, 1 and 2
# ASCII bytes more, so the cut falls at each place in a character; a line
# of 316 bytes fits, one of 317 is cut
utf8_ok() { iconv -f UTF-8 -t UTF-8 <"$1" >/dev/null 2>&1; }
han=$(printf '漢%.0s' $(seq 150))
for p in 0 1 2; do
  x=$(printf "%${p}s" '' | tr ' ' x)
  line="jepa-train: cannot read /data/$x$han/manifest.json"
  FAKE_FIRST='printf "%s\n" "$FAKE_LINE" >"$d/error"' FAKE_LINE=$line \
    run u$p "$L" run base.yaml --set run.dir="$T/u$p" --set max_restarts=0
  utf8_ok "u$p/state" && ok "$p byte(s) before the path: state is UTF-8" || bad "u$p: state $(od -c "u$p/state" | tail -3)"
  case "$(cat "u$p/state")" in "failed status=1 restarts=0: jepa-train: cannot read /data/$x漢漢"*漢...) true ;; *) false ;; esac \
    && ok "$p: the line in state ends ... after its last whole character" || bad "u$p: rc $RC, state $(cat "u$p/state")"
  grep -a 'attempt 0: jepa-train: cannot read' "u$p/launch.log" >"u$p.logline" && utf8_ok "u$p.logline" \
    && ok "$p: launch.log's line is UTF-8" || bad "u$p: launch.log $(od -c "u$p.logline" | tail -3)"
done
for k in 316 317; do
  line=$(printf 'a%.0s' $(seq "$k"))
  FAKE_FIRST='printf "%s\n" "$FAKE_LINE" >"$d/error"' FAKE_LINE=$line \
    run a$k "$L" run base.yaml --set run.dir="$T/a$k" --set max_restarts=0
  want=$line; [ "$k" -eq 317 ] && want="${line:0:316}..."
  [ "$(cat "a$k/state")" = "failed status=1 restarts=0: $want" ] && ok "a line of $k bytes: ${want: -3}" \
    || bad "a$k: state $(cat "a$k/state")"
done

# ---- 3. killed by a signal: mpirun itself (a fake that kills itself), a
# rank by mpirun's words in a point's train.log (a fake that says them)
FAKE_FIRST='kill -9 $$' run km "$L" run base.yaml --set run.dir="$T/km" --set max_restarts=0
[ "$RC" -eq 137 ] && [ "$(cat km/state)" = "failed status=137 restarts=0: mpirun killed by signal 9 (SIGKILL; out of memory?)" ] \
  && grep -q 'attempt 0: mpirun killed by signal 9 (SIGKILL; out of memory?)$' km/launch.log \
  && ok "mpirun killed by SIGKILL: state and launch.log say so" || bad "km: rc $RC, state $(cat km/state): $ERR"
printf 'base: %s/base.yaml\ndir: %s/ks\nparallel: 1\nset: {max_restarts: 0}\ngrid:\n  optim.lr: [0.001]\n' "$T" "$T" >ks.yaml
noticed='mpirun noticed that process rank 3 with PID 0 on node n7 exited on signal 11 (Segmentation fault).'
FAKE_FIRST="echo '$noticed' >&2" FAKE_STATUS=139 run ks "$L" sweep ks.yaml
want="failed status=139 restarts=0: rank 3 on node n7 killed by signal 11 (SIGSEGV)"
[ "$RC" -eq 1 ] && [ "$(cat ks/point-000/state)" = "$want" ] && printf '%s\n' "$OUT" | grep -qxF "point-000: $want, see $T/ks/point-000/train.log" \
  && ok "a sweep point: the rank, node and signal from mpirun's words in train.log" || bad "ks: rc $RC, state $(cat ks/point-000/state): $OUT"

# ---- 4. a rank's non-zero exit, no line of the trainer's: Open MPI 4.1's
# words (mpirun -np 2, rank 1 exit(7)), which name no node
sweep_yaml() { # NAME MAX_RESTARTS
  printf 'base: %s/base.yaml\ndir: %s/%s\nparallel: 1\nset: {max_restarts: %s}\ngrid:\n  optim.lr: [0.001]\n' \
    "$T" "$T" "$1" "$2" >"$1.yaml"
}
dashes=--------------------------------------------------------------------------
export FAKE_WORDS="$dashes
mpirun detected that one or more processes exited with non-zero status, thus causing
the job to be terminated. The first process to do so was:

  Process name: [[26220,1],1]
  Exit code:    7
$dashes"
sweep_yaml ke 0
FAKE_FIRST='printf "%s\n" "$FAKE_WORDS" >&2' FAKE_STATUS=7 run ke "$L" sweep ke.yaml
want="failed status=7 restarts=0: rank 1 exited with status 7"
[ "$RC" -eq 1 ] && [ "$(cat ke/point-000/state)" = "$want" ] && grep -q 'attempt 0: rank 1 exited with status 7$' ke/point-000/launch.log \
  && printf '%s\n' "$OUT" | grep -qxF "point-000: $want, see $T/ke/point-000/train.log" \
  && ok "a sweep point: the rank and status from mpirun's words in train.log" || bad "ke: rc $RC, state $(cat ke/point-000/state): $OUT"
# the words at train.log's very end (no newline after them)
sweep_yaml kn 0
FAKE_END=${FAKE_WORDS%$'\n'*} FAKE_FIRST='printf "%s" "$FAKE_END" >&2' FAKE_STATUS=7 run kn "$L" sweep kn.yaml
[ "$(tail -c 15 kn/point-000/train.log; echo .)" = "Exit code:    7." ] && [ "$(cat kn/point-000/state)" = "$want" ] \
  && ok "the words as train.log's last bytes" || bad "kn: rc $RC, state $(cat kn/point-000/state), log ends $(tail -c 20 kn/point-000/train.log | od -c)"
# attempt 0's words name rank 1; attempt 1 (the restart) exits 7 and says
# nothing: its state is bare, not attempt 0's rank
sweep_yaml kt 1
FAKE_FIRST='printf "%s\n" "$FAKE_WORDS" >&2' FAKE_STATUS=7 FAKE_RESUME_STATUS=7 run kt "$L" sweep kt.yaml
[ "$(cat kt/point-000/state)" = "failed status=7 restarts=1" ] && grep -q 'attempt 0: rank 1 exited with status 7$' kt/point-000/launch.log \
  && ! grep -q 'attempt 1: rank' kt/point-000/launch.log && ok "a restart that said nothing is not given attempt 0's rank" \
  || bad "kt: rc $RC, state $(cat kt/point-000/state), launch.log $(cat kt/point-000/launch.log)"
# the trainer's own line, when there is one, comes first
sweep_yaml kl 0
FAKE_FIRST='printf "jepa: rank 1: cannot read x\n" >"$d/error"; printf "%s\n" "$FAKE_WORDS" >&2' FAKE_STATUS=7 run kl "$L" sweep kl.yaml
[ "$(cat kl/point-000/state)" = "failed status=7 restarts=0: jepa: rank 1: cannot read x" ] \
  && ok "RUN/error's line before mpirun's words" || bad "kl: rc $RC, state $(cat kl/point-000/state)"

# a rank SIGKILLed for real (the trainer's test hook, the last rank, before
# step 4): mpirun's 137 under run, its words under a sweep
FM=/usr/share/datasets/fashion-mnist
"$B/jepa-shard" pack --idx-images "$FM/t10k-images-idx3-ubyte.gz" --idx-labels "$FM/t10k-labels-idx1-ubyte.gz" \
  --out fm --split train --quiet || { bad "packing Fashion-MNIST's test split failed"; finish; exit 1; }
unset JEPA_MPIRUN
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
keys=(model.width=32 model.depth=2 model.heads=2 model.pred_width=16 model.pred_depth=1 model.pred_heads=2
      eval.pool_blocks=1 eval.probe=false train.steps=6 train.log_every=1 train.batch_per_rank=32 parallel.ranks=2
      parallel.threads_per_rank=1 checkpoint.every_steps=2 data.train="$T/fm" data.test="$T/fm" max_restarts=0)
sets=(); for k in "${keys[@]}"; do sets+=(--set "$k"); done
JEPA_DEBUG_KILL_STEP=3 run kr "$L" run "$S/configs/fmnist-tiny.yaml" "${sets[@]}" --set run.dir="$T/kr"
want="failed status=137 restarts=0: a rank killed by signal 9 (SIGKILL; out of memory?)"
[ "$RC" -eq 137 ] && [ "$(cat kr/state)" = "$want" ] && grep -q 'attempt 0: a rank killed by signal 9 (SIGKILL; out of memory?)$' kr/launch.log \
  && ok "run: a rank SIGKILLed mid-training: $want" || bad "kr: rc $RC, state $(cat kr/state): $(tail -3 <<<"$ERR")"
run krst "$L" status kr
case "$OUT" in "kr: $want, step 3, "*", resume from step 2") ok "status shows it" ;; *) bad "status: $OUT $ERR" ;; esac
printf 'base: %s\ndir: %s/kw\nparallel: 1\nset: {%s}\ngrid:\n  optim.lr: [0.001]\n' "$S/configs/fmnist-tiny.yaml" "$T" \
  "$(printf '%s, ' "${keys[@]}" | sed 's/=/: /g; s/, $//')" >kw.yaml
JEPA_DEBUG_KILL_STEP=3 run kw "$L" sweep kw.yaml
case "$(cat kw/point-000/state)" in "failed status=137 restarts=0: rank 1 on node "?*" killed by signal 9 (SIGKILL; out of memory?)") \
  ok "sweep: rank 1 named: $(cat kw/point-000/state)" ;; *) bad "kw: rc $RC, state $(cat kw/point-000/state): $OUT" ;; esac
# a rank's exit(7) for real (the trainer's test hook, the last rank, before
# step 4), no line of the trainer's: Open MPI's words in the point's train.log
sed "s|^dir: .*|dir: $T/xw|" kw.yaml >xw.yaml
JEPA_DEBUG_EXIT_STEP=3 run xw "$L" sweep xw.yaml
want="failed status=7 restarts=0: rank 1 exited with status 7"
[ "$(cat xw/point-000/state)" = "$want" ] && [ ! -e xw/point-000/error ] && grep -q 'Exit code: *7$' xw/point-000/train.log \
  && ok "sweep: a rank's exit(7) named: $want" \
  || bad "xw: rc $RC, state $(cat xw/point-000/state): $OUT $(tail -12 xw/point-000/train.log)"

finish
