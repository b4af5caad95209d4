#!/usr/bin/env bash
# jepa-launch end to end: the exact mpirun argv of --dry-run, a real 2-rank
# run, bad specs (one line with FILE:LINE:COL, nothing created), hostile
# values in run.dir and slurm.* (never executed: a sentinel file must not
# appear), the max_restarts loop with a fake trainer, a local 2-point sweep
# with its results table and CSV, status, plots, and bad command lines;
# inputs the trainer refuses leave no run directory (unless an attempt got
# past setup), --np against --set parallel.ranks, and plots/status of
# damaged files (a failed plot leaves plots/ as it was).
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
SPEC="$S/configs/fmnist-tiny.yaml"
pack_fmnist || { finish; exit 1; }
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=12 --set train.log_every=4
       --set train.batch_per_rank=32 --set parallel.threads_per_rank=1 --set eval.probe=false "${DATA[@]}")
SENT="$T/pwned"
unset JEPA_MPIRUN JEPA_TRAIN_BIN

# --- dry run: the exact command, nothing created
run dry "$L" run "$SPEC" --np 2 --dry-run "${SMALL[@]}" --set run.dir="$T/a"
want="mpirun -np 2 -x JEPA_RUN_LOCK_PID $B/jepa-train $T/a/spec.resolved.yaml --exact-spec $T/a/spec.yaml"
[ "$RC" -eq 0 ] && [ "$OUT" = "$want" ] && ok "--dry-run prints the mpirun argv" || bad "dry run rc $RC: [$OUT] want [$want] $ERR"
[ -e "$T/a" ] && bad "--dry-run created $T/a" || ok "--dry-run creates nothing"
expect_full "run --dry-run" jepa-launch "$L" run "$SPEC" --np 2 --dry-run "${SMALL[@]}" --set run.dir="$T/a" # it exited 0
run dry2 "$L" run "$SPEC" --dry-run "${DATA[@]}" --set run.dir="$T/a" --set parallel.threads_per_rank=2 \
  --set parallel.transport=tcp --set parallel.ranks=3
want="mpirun -np 3 --oversubscribe --bind-to none --mca btl self,tcp -x JEPA_RUN_LOCK_PID $B/jepa-train $T/a/spec.resolved.yaml --exact-spec $T/a/spec.yaml"
[ "$(nproc)" -lt 3 ] || want=${want/ --oversubscribe/}
[ "$OUT" = "$want" ] && ok "transport tcp, 2 threads per rank, 3 ranks" || bad "[$OUT] want [$want]"
# the command names a resolved spec it does not write: stderr shows what --set puts in it
case "$ERR" in *"dry run: $T/a/spec.resolved.yaml would have parallel.threads_per_rank: 2 (--set)"*) \
  ok "--dry-run shows the values --set gives" ;; *) bad "dry run stderr without the --set values: [$ERR]" ;; esac

# --- a real 2-rank run
run real "$L" run "$SPEC" --np 2 "${SMALL[@]}" --set run.dir="$T/a"
[ "$RC" -eq 0 ] && ok "2-rank run through jepa-launch" || bad "run rc $RC: $ERR"
grep -q '"ranks": 2' "$T/a/summary.json" 2>/dev/null && ok "summary says 2 ranks" || bad "summary.json"
cmp -s "$T/a/spec.yaml" "$SPEC" && ok "spec.yaml is the exact file" || bad "spec.yaml differs from $SPEC"
grep -q '^  ranks: 2$' "$T/a/spec.resolved.yaml" && grep -q '^  steps: 12$' "$T/a/spec.resolved.yaml" \
  && ok "spec.resolved.yaml has the overrides" || bad "resolved spec"
[ "$(cat "$T/a/state")" = done ] && ok "state done" || bad "state $(cat "$T/a/state")"
run status "$L" status "$T/a"
case "$OUT" in "a: done, step 12, loss "*", final_loss "*) ok "status: $OUT" ;; *) bad "status: $OUT $ERR" ;; esac
expect_full "status RUN" jepa-launch "$L" status "$T/a"
run plot "$L" plot "$T/a"
[ "$RC" -eq 0 ] && [ -s "$T/a/plots/curves.png" ] && ok "plot wrote curves.png ($(stat -c %s "$T/a/plots/curves.png") bytes)" \
  || bad "plot rc $RC: $ERR"
# a plot that fails says gnuplot's error in one line and leaves the last good picture
cp -r "$T/a" "$T/pl" && printf '{"step": 1, "loss": nan}\n{"step": 2, "loss": nan}\n' > "$T/pl/metrics.jsonl"
run plotbad "$L" plot "$T/pl"
expect_error "plot of a run whose losses are all NaN" 2 "gnuplot failed on $T/pl/plots/curves.gp: " "undefined"
cmp -s "$T/pl/plots/curves.png" "$T/a/plots/curves.png" && [ ! -e "$T/pl/plots/.new" ] \
  && ok "the earlier curves.png kept, no staging left" || bad "curves.png replaced or .new left"
diff -r "$T/pl/plots" "$T/a/plots" >/dev/null && ok "plots/ as it was: its metrics.dat and curves.gp not rewritten" \
  || bad "a failed plot changed plots/: $(diff -r "$T/pl/plots" "$T/a/plots" 2>&1 | head -3)"
rm -rf "$T/pl/plots"
run plotbad2 "$L" plot "$T/pl"
expect_error "failed plot, no plots/ before" 2 "gnuplot failed on $T/pl/plots/curves.gp: " "nothing of this plot kept"
[ -e "$T/pl/plots" ] && bad "a failed plot left $(ls -A "$T/pl/plots" | tr '\n' ' ')" || ok "a failed plot made no plots/"
cp -r "$T/a" "$T/dm" && printf '{broken' > "$T/dm/summary.json"
run dmst "$L" status "$T/dm"
case "$RC $OUT" in "1 dm: damaged: summary.json: "*) ok "status: a damaged summary.json said, exit 1" ;;
  *) bad "status of a damaged run: rc $RC: $OUT $ERR" ;; esac
run resume_dry "$L" resume "$T/a" --dry-run
want="$T/a: finished before ($T/a/summary.json): nothing to resume; jepa-launch status $T/a shows it, jepa-eval $T/a evaluates it again"
[ "$RC" -eq 0 ] && [ "$OUT" = "$want" ] && [ -z "$ERR" ] && ok "resume --dry-run of a finished run: nothing to resume, no argv" \
  || bad "resume --dry-run: [$OUT] want [$want] $ERR"
# a finished run: nothing started (no new attempt in launch.log), its figures where they were
na=$(grep -c started "$T/a/launch.log"); cp "$T/a/summary.json" "$T/a.sum"
run resfin "$L" resume "$T/a"
[ "$RC" -eq 0 ] && [ "$OUT" = "$T/a: finished before ($T/a/summary.json): nothing to resume; jepa-launch status $T/a shows it, jepa-eval $T/a evaluates it again" ] \
  && [ "$(grep -c started "$T/a/launch.log")" = "$na" ] && cmp -s "$T/a/summary.json" "$T/a.sum" \
  && ok "resume of a finished run: one line, nothing started" || bad "resume of a finished run: rc $RC: $OUT $ERR"

run twicenp "$L" run "$SPEC" "${DATA[@]}" --np 1 --np 2 --dry-run
expect_error "--np given twice" 2 "--np: given twice (1, then 2)"
run npset "$L" run "$SPEC" "${DATA[@]}" --np 2 --set parallel.ranks=3 --dry-run
expect_error "--np 2 and --set parallel.ranks=3 disagree" 2 "--np 2" "--set parallel.ranks=3" "disagree"
run npset2 "$L" run "$SPEC" "${DATA[@]}" --set parallel.ranks=3 --np 2 --set run.dir="$T/n3" --dry-run
expect_error "either order" 2 "--np 2" "--set parallel.ranks=3"
run npsame "$L" run "$SPEC" "${DATA[@]}" --np 2 --set parallel.ranks=2 --set run.dir="$T/n2" --dry-run
[ "$RC" -eq 0 ] && case "$OUT" in "mpirun -np 2 "*) true ;; *) false ;; esac && ok "--np 2 with --set parallel.ranks=2 agrees" \
  || bad "--np 2 --set parallel.ranks=2: rc $RC [$OUT] $ERR"

# --- plots and status of what holds nothing to show: one line naming the file, nothing written
mkdir -p "$T/gm" && cp "$T/a/spec.resolved.yaml" "$T/gm/" && printf 'garbage\n{"no": 1}\n' >"$T/gm/metrics.jsonl"
run gmplot "$L" plot "$T/gm"
expect_error "plot of a garbage metrics.jsonl" 2 "$T/gm/metrics.jsonl holds no parseable metrics"
[ -e "$T/gm/plots" ] && bad "plot of garbage metrics left $T/gm/plots" || ok "no plots/ left"
: >"$T/gm/metrics.jsonl"
run emplot "$L" plot "$T/gm"
expect_error "plot of an empty metrics.jsonl" 2 "no metrics yet" "$T/gm/metrics.jsonl is empty"
[ -e "$T/gm/plots" ] && bad "plot of empty metrics left $(ls -R "$T/gm/plots" | tr '\n' ' ')" || ok "no plots/metrics.dat left"
mkdir -p "$T/es" && : >"$T/es/points.csv"
for c in status results plot; do
  run es "$L" "$c" "$T/es"
  expect_error "$c of a sweep whose points.csv is empty" 2 "$T/es/points.csv: empty"
done
printf 'point,dir,optim.lr\n' >"$T/es/points.csv"
run es "$L" status "$T/es"
expect_error "status of a sweep whose points.csv lists no point" 2 "$T/es/points.csv: lists no point"
[ "$(ls "$T/es")" = points.csv ] && ok "nothing written beside it" || bad "written in $T/es: $(ls "$T/es")"

# --- a dry run refuses what the real run would
run dryck "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/a" --dry-run
expect_error "dry run over a finished run" 2 "run.dir $T/a holds a finished run" "choose a new run.dir"
touch "$T/plainfile"
run dryf "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/plainfile/x" --dry-run
expect_error "dry run under a file" 2 "$T/plainfile is not a directory"

# --- inputs jepa-train refuses at setup (exit 4): never restarted, they would
# recur; nothing was trained, so the run directory this start made is taken
# back. mpirun's stderr is the trainer's own (its end-of-job banner included):
# the trainer's line naming the problem is there, and ours is the last.
REF=(--set data.train="$T/fm/test" --set data.test="$T/fm/test" --set train.batch_per_rank=6000 --set max_restarts=3
     --set train.steps=3 --set train.minutes=0 --set parallel.threads_per_rank=1)
refused_line() { printf 'jepa-launch: %s: jepa-train refused its inputs at setup (status 4; its message above says why)' "$1"; }
run refused "$L" run "$SPEC" --np 2 --set run.dir="$T/ref/sub" "${REF[@]}"
[ "$RC" -eq 4 ] && printf '%s\n' "$ERR" | grep -q '^jepa-train: rank 0: .*fewer than one global batch' \
  && ! printf '%s\n' "$ERR" | grep -q 'restart 1/3' && [ "$(printf '%s\n' "$ERR" | tail -1)" = "$(refused_line "$T/ref/sub")" ] \
  && ok "refused inputs: exit 4, not restarted (max_restarts 3), the trainer's reason said, ours last" \
  || bad "refused inputs: rc $RC: $ERR"
[ -e "$T/ref" ] && bad "a refused start left $(find "$T/ref" | tr '\n' ' ')" || ok "refused inputs: run.dir and its parent not left"
run refch "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/refch" --set model.channels=3
[ "$RC" -eq 4 ] && [ ! -e "$T/refch" ] && printf '%s\n' "$ERR" | grep -q '^jepa-train: .*model.img_size/channels' \
  && ok "model.channels=3 on 1-channel images: exit 4, the trainer's line, nothing created" \
  || bad "channels 3: rc $RC, $(ls "$T/refch" 2>&1 | tr '\n' ' '): $ERR"
# a directory that was there keeps what it held; ours go when it held none of them
mkdir -p "$T/refmine" && echo notes >"$T/refmine/notes"
run refmine "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/refmine" --set model.channels=3
[ "$RC" -eq 4 ] && [ "$(ls "$T/refmine")" = notes ] && [ "$(printf '%s\n' "$ERR" | tail -1)" = "$(refused_line "$T/refmine")" ] \
  && ok "refused in a directory of the user's: only our files removed" || bad "refmine: rc $RC, $(ls "$T/refmine" | tr '\n' ' '): $ERR"
cp "$SPEC" "$T/refmine/spec.yaml"
run refkept "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/refmine" --set model.channels=3
[ "$RC" -eq 4 ] && [ -e "$T/refmine/spec.yaml" ] && [ "$(printf '%s\n' "$ERR" | tail -1)" = \
  "$(refused_line "$T/refmine"); $T/refmine kept: it existed before with its own spec.yaml" ] \
  && ok "one with a spec.yaml of its own is kept, and the last line says why" || bad "refkept: rc $RC: $ERR"
# exit 4 on a restart, after an attempt that got past setup: nothing is taken
# back (this trainer writes nothing in run.dir, so only that rule keeps it)
printf '#!/bin/bash\nn=$(cat "$FAKE_COUNT" 2>/dev/null || echo 0)\necho $((n + 1)) >"$FAKE_COUNT"\n%s\nexit 1\n' \
  '[ "$n" -ge 1 ] && { echo "fake-refuse: attempt $((n + 1)) refused" >&2; exit 4; }' >"$T/fake-refuse"
chmod +x "$T/fake-refuse"
run reflate env JEPA_TRAIN_BIN="$T/fake-refuse" FAKE_COUNT="$T/refuse-count" "$L" run "$SPEC" "${DATA[@]}" \
  --set run.dir="$T/reflate" --set max_restarts=2 --set parallel.threads_per_rank=1
[ "$RC" -eq 4 ] && [ "$(cat "$T/refuse-count")" = 2 ] && [ -f "$T/reflate/spec.yaml" ] \
  && [ "$(grep -c 'started' "$T/reflate/launch.log")" = 2 ] \
  && [ "$(printf '%s\n' "$ERR" | tail -1)" = "jepa-launch: $T/reflate: job failed with status 4 (see $T/reflate/launch.log)" ] \
  && ok "exit 4 on a restart after an attempt past setup: run.dir kept, launch.log named" \
  || bad "reflate: rc $RC, $(ls "$T/reflate" 2>&1 | tr '\n' ' '): $ERR"

# --- bad specs: one line, FILE:LINE:COL, exit 2, nothing created
printf 'seed: 1\nrun:\n  dir: %s\ndata:\n  train: %s/no-such-dir\n' "$T/bad" "$T" >"$T/bad1.yaml"
run bad1 "$L" run "$T/bad1.yaml"
expect_error "missing shard directory" 2 "$T/bad1.yaml:5:10: data.train: shard directory" "does not exist"
printf 'run.dir: %s\noptim:\n  lrr: 0.1\n' "$T/bad" >"$T/bad2.yaml"
run bad2 "$L" run "$T/bad2.yaml"
expect_error "unknown key" 2 "$T/bad2.yaml:3:3: optim.lrr: unknown key (did you mean 'optim.lr'?)"
printf 'run.dir: %s\nmodel:\n  depth: two\n' "$T/bad" >"$T/bad3.yaml"
run bad3 "$L" slurm "$T/bad3.yaml"
expect_error "wrong type (slurm)" 2 "$T/bad3.yaml:3:10: model.depth: expected an integer, got 'two'"
run bad4 "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/bad" --set data.test="$T"
expect_error "--set data.test without a manifest" 2 "--set data.test=$T: '$T' has no manifest.json"
run bad5 "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/bad" --set parallel.nodes=2
expect_error "two nodes need Slurm" 2 "--set parallel.nodes=2: is 2, but jepa-launch run starts ranks on this machine only"
run bad6 "$L" slurm "$SPEC" "${DATA[@]}" --set run.dir="$T/bad" --set slurm.partition="$(printf 'a\nb')"
expect_error "newline in an #SBATCH value" 2 "--set slurm.partition=a?b: contains a newline or control character"
run bad7 "$L" slurm "$SPEC" "${DATA[@]}" --set run.dir="$T/bad" --set slurm.extra="$(printf -- '--exclusive\necho hi')"
expect_error "slurm.extra line that is not an option" 2 "slurm.extra" "line 'echo hi' is not an sbatch option"
[ -e "$T/bad" ] && bad "a failed check created $T/bad" || ok "no run directory after any bad spec"

# --- hostile values: run.dir and slurm.* with spaces, quotes, $(...), ;, newline
H="$T/h a\"b'c \$(touch $SENT); \`touch $SENT\` x
y"
run hostile "$L" run "$SPEC" "${SMALL[@]}" --set train.steps=4 --set run.dir="$H"
[ "$RC" -eq 0 ] && [ -f "$H/summary.json" ] && ok "run in a hostile run.dir" || bad "hostile run rc $RC: $ERR"
HS="x \"q\" 'y' \$(touch $SENT); \`touch $SENT\` \\"
run hslurm "$L" slurm "$SPEC" --dry-run "${SMALL[@]}" --set run.dir="$T/hs \$(touch $SENT); 'q\"" \
  --set slurm.job_name="$HS" --set slurm.account="$HS" --set slurm.partition="a;b" \
  --set slurm.extra="$(printf -- '--comment="$(touch %s)"\n--exclusive' "$SENT")"
HD="$T/hs \$(touch $SENT); 'q\""
[ "$RC" -eq 0 ] && [ -f "$HD/job.sbatch" ] && ok "slurm --dry-run writes job.sbatch" || bad "slurm dry rc $RC: $ERR"
bash -n "$HD/job.sbatch" && ok "the script parses" || bad "bash -n failed"
# run the script with a fake srun that records its argv: the values arrive intact
mkdir -p "$T/fakebin"
printf '#!/bin/bash\nfor a in "$@"; do printf "%%s\\0" "$a"; done >"$FAKE_ARGV"\n' >"$T/fakebin/srun"
chmod +x "$T/fakebin/srun"
FAKE_ARGV="$T/argv" PATH="$T/fakebin:$PATH" bash "$HD/job.sbatch" >/dev/null 2>&1
printf '%s\0' --mpi=pmix -n 1 --cpus-per-task=1 "$B/jepa-train" "$HD/spec.resolved.yaml" --exact-spec "$HD/spec.yaml" >"$T/want"
cmp -s "$T/argv" "$T/want" && ok "srun gets the exact argv" || bad "srun argv: $(tr '\0' ' ' <"$T/argv")"
[ "$(cat "$HD/state")" = done ] && ok "script wrote state done" || bad "state: $(cat "$HD/state")"
grep -qF "#SBATCH --job-name=\"x \\\"q\\\" 'y' \$(touch $SENT); \`touch $SENT\` \\\\\"" "$HD/job.sbatch" \
  && ok "#SBATCH value double-quoted with escapes" || bad "job-name line: $(grep job-name "$HD/job.sbatch")"
[ -e "$SENT" ] && bad "a hostile value was executed" || ok "no hostile value ran (sentinel absent)"

# --- max_restarts with a fake trainer: fails twice, then succeeds
cat >"$T/fake-train" <<'EOF'
#!/bin/bash
dir=$(dirname "$1")
n=$(cat "$dir/attempts" 2>/dev/null || echo 0)
echo $((n + 1)) >"$dir/attempts"
printf '%s\n' "$*" >>"$dir/argv.log"
[ "$n" -ge "${FAKE_FAILS:-2}" ] && exit 0
exit "${FAKE_CODE:-7}"
EOF
chmod +x "$T/fake-train"
run restart env JEPA_TRAIN_BIN="$T/fake-train" "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/r" --set max_restarts=2 \
  --set parallel.threads_per_rank=1
[ "$RC" -eq 0 ] && [ "$(cat "$T/r/attempts")" = 3 ] && ok "2 failures, 2 restarts, done" || bad "restart rc $RC attempts $(cat "$T/r/attempts" 2>&1): $ERR"
[ "$(grep -c 'resume=auto' "$T/r/argv.log")" = 2 ] && [ "$(head -1 "$T/r/argv.log" | grep -c resume)" = 0 ] \
  && ok "restarts pass --set resume=auto, the first start does not" || bad "argv.log: $(cat "$T/r/argv.log")"
[ "$(grep -c 'restart [12]/2 with resume=auto' "$T/r/launch.log")" = 2 ] && ok "each restart logged in launch.log" \
  || bad "launch.log: $(cat "$T/r/launch.log")"
run norestart env JEPA_TRAIN_BIN="$T/fake-train" FAKE_FAILS=5 "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/r2" \
  --set max_restarts=1 --set parallel.threads_per_rank=1
[ "$RC" -eq 7 ] && [ "$(cat "$T/r2/attempts")" = 2 ] && case "$(cat "$T/r2/state")" in failed*) true ;; *) false ;; esac \
  && ok "gives up after max_restarts (exit 7, state $(cat "$T/r2/state"))" || bad "rc $RC state $(cat "$T/r2/state" 2>&1)"
run nanrun env JEPA_TRAIN_BIN="$T/fake-train" FAKE_FAILS=5 FAKE_CODE=3 "$L" run "$SPEC" "${DATA[@]}" --set run.dir="$T/r3" \
  --set max_restarts=4 --set parallel.threads_per_rank=1
[ "$RC" -eq 3 ] && [ "$(cat "$T/r3/attempts")" = 1 ] && ok "a non-finite loss (exit 3) is not restarted" \
  || bad "exit 3: rc $RC attempts $(cat "$T/r3/attempts" 2>&1)"
run nomem env JEPA_TRAIN_BIN="$T/fake-train" FAKE_FAILS=5 FAKE_CODE=5 "$L" run "$SPEC" "${DATA[@]}" \
  --set run.dir="$T/r5" --set max_restarts=4 --set parallel.threads_per_rank=1
[ "$RC" -eq 5 ] && [ "$(cat "$T/r5/attempts")" = 1 ] \
  && [ "$(cat "$T/r5/state")" = "failed status=5 (out of memory; not restarted)" ] \
  && grep -q 'attempt 0: jepa-train ran out of memory (status 5); a restart would repeat it' "$T/r5/launch.log" \
  && [ "$(printf '%s\n' "$ERR" | tail -1)" = "jepa-launch: $T/r5: job failed with status 5 (see $T/r5/launch.log)" ] \
  && ok "out of memory (exit 5) is not restarted (max_restarts 4), state and launch.log say so" \
  || bad "exit 5: rc $RC attempts $(cat "$T/r5/attempts" 2>&1) state $(cat "$T/r5/state" 2>&1): $ERR"
# exit 2 (the trainer rejects its command line or spec, e.g. another
# version's keys): not restarted, and the start is taken back like exit 4's
printf '#!/bin/bash\nn=$(cat "$FAKE_COUNT" 2>/dev/null || echo 0)\necho $((n + 1)) >"$FAKE_COUNT"\n%s\nexit 2\n' \
  'echo "fake-reject: unknown key" >&2' >"$T/fake-reject"
chmod +x "$T/fake-reject"
run rejrun env JEPA_TRAIN_BIN="$T/fake-reject" FAKE_COUNT="$T/reject-count" "$L" run "$SPEC" "${DATA[@]}" \
  --set run.dir="$T/r4" --set max_restarts=4 --set parallel.threads_per_rank=1
[ "$RC" -eq 2 ] && [ "$(cat "$T/reject-count")" = 1 ] && [ ! -e "$T/r4" ] && [ "$(printf '%s\n' "$ERR" | tail -1)" = \
  "jepa-launch: $T/r4: jepa-train rejected its command line or spec (status 2; its message above says why)" ] \
  && ok "a rejected command line or spec (exit 2): not restarted, the start taken back, one last line" \
  || bad "exit 2: rc $RC attempts $(cat "$T/reject-count" 2>&1), $(ls "$T/r4" 2>&1 | tr '\n' ' '): $ERR"

# --- kill -9 of one rank of a real 2-rank run: the restart loop resumes from
# the last checkpoint and ends bit for bit where an uninterrupted run ends
KS=("${SMALL[@]}" --set train.steps=240 --set train.log_every=10 --set checkpoint.every_steps=20)
run ref "$L" run "$SPEC" --np 2 "${KS[@]}" --set run.dir="$T/k0"
"$L" run "$SPEC" --np 2 "${KS[@]}" --set run.dir="$T/k1" --set max_restarts=2 >"$T/k1.out" 2>"$T/k1.err" &
lpid=$!
step=0
for _ in $(seq 1200); do
  step=$(tail -1 "$T/k1/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
  [ "${step:-0}" -ge 60 ] && break
  sleep 0.05
done
mpid=$(sed -n 's/^running pid=[0-9]* mpirun=\([0-9]*\) .*/\1/p' "$T/k1/state")
rank=$(pgrep -P "${mpid:-0}" | tail -1)
[ -n "$rank" ] && kill -9 "$rank" && ok "killed rank pid $rank (of mpirun $mpid) with -9 at step $step" \
  || bad "no rank to kill (mpirun '$mpid', step '$step')"
wait "$lpid"
krc=$?
H0=$(sed -n 's/.*"param_hash": "\([0-9a-f]*\)".*/\1/p' "$T/k0/summary.json" 2>/dev/null)
H1=$(sed -n 's/.*"param_hash": "\([0-9a-f]*\)".*/\1/p' "$T/k1/summary.json" 2>/dev/null)
[ "$krc" -eq 0 ] && grep -q 'restart 1/2 with resume=auto' "$T/k1/launch.log" && ok "jepa-launch restarted the job and it finished" \
  || bad "killed run: rc $krc, launch.log: $(cat "$T/k1/launch.log" 2>&1) $(tail -3 "$T/k1.err")"
from=$(sed -n 's/^train: resuming from .* (step \([0-9]*\) of 240)$/\1/p' "$T/k1.err" | head -1)
[ "${from:-0}" -ge 20 ] && ok "the restart resumed from the checkpoint at step $from" || bad "no resume in: $(grep -i resum "$T/k1.err")"
[ -n "$H0" ] && [ "$H0" = "$H1" ] && ok "restarted run ends with the uninterrupted run's param_hash ($H0)" \
  || bad "param_hash: uninterrupted '$H0', restarted '$H1'"

# --- a local sweep of 2 points, results, status, plots
cat >"$T/sweep.yaml" <<EOF
base: $SPEC
dir: $T/sw
parallel: 1
set: {model.width: 32, model.depth: 2, eval.pool_blocks: 1, model.heads: 2, model.pred_width: 16, model.pred_depth: 1,
      model.pred_heads: 2, train.steps: 8, train.log_every: 2, train.batch_per_rank: 32,
      parallel.threads_per_rank: 1, eval.probe: false, data.train: $T/fm/train, data.test: $T/fm/test}
grid:
  optim.lr: [0.002, 0.0005]
EOF
run sweep "$L" sweep "$T/sweep.yaml"
[ "$RC" -eq 0 ] && ok "local sweep of 2 points" || bad "sweep rc $RC: $OUT $ERR"
[ "$(printf '%s\n' "$OUT" | grep -c '^point-00[01] .* done$')" = 2 ] && ok "sweep prints its results" || bad "sweep output: $OUT"
run results "$L" results "$T/sw"
first=$(printf '%s\n' "$OUT" | sed -n 2p | awk '{print $3}')
second=$(printf '%s\n' "$OUT" | sed -n 3p | awk '{print $3}')
[ "$RC" -eq 0 ] && awk -v a="$first" -v b="$second" 'BEGIN{exit !(a+0 <= b+0)}' && ok "results best first ($first <= $second)" \
  || bad "results: $OUT"
[ "$(head -1 "$T/sw/results.csv")" = "point,optim.lr,final_loss,probe_acc,steps,status" ] \
  && [ "$(grep -c ',8,done$' "$T/sw/results.csv")" = 2 ] && ok "results.csv" || bad "csv: $(cat "$T/sw/results.csv")"
expect_full "results SWEEP" jepa-launch "$L" results "$T/sw"
expect_full "status SWEEP" jepa-launch "$L" status "$T/sw"
[ "$(sed -n 2p "$T/sw/points.csv")" = "0,point-000,0.002" ] && ok "points.csv lists the points" || bad "points.csv"
run sstatus "$L" status "$T/sw"
[ "$(printf '%s\n' "$OUT" | tail -1)" = "2 of 2 points finished" ] && ok "sweep status" || bad "status: $OUT"
run splot "$L" plot "$T/sw"
[ "$RC" -eq 0 ] && [ -s "$T/sw/plots/loss.png" ] && [ -s "$T/sw/plots/loss_vs_optim.lr.png" ] \
  && ok "sweep plots: loss.png and loss_vs_optim.lr.png" || bad "sweep plot rc $RC: $ERR"

# --- bad command lines: one line, non-zero
for args in "" "bogus" "run" "run $SPEC extra" "run $SPEC --np" "run $SPEC --np 0" "run $SPEC --bogus" \
            "run $T/none.yaml" "resume" "resume $T" "slurm" "slurm $SPEC --np 2" "sweep" "sweep $T/none.yaml" \
            "sweep $T/sweep.yaml --parallel x" "results" "results $T" "status" "status $T" "plot" "plot $T"; do
  # shellcheck disable=SC2086
  run cli "$L" $args
  if [ "$RC" -ne 0 ] && [ "$(printf '%s' "$ERR" | grep -c '')" = 1 ]; then ok "jepa-launch $args: $ERR"
  else bad "jepa-launch $args: rc $RC, stderr [$ERR]"; fi
done
# a flag's value is never the next option, and --trainer is checked up front:
# neither may start a run (the default run.dir of $SPEC stays absent)
RDEF=$(sed -n 's/^  dir: *//p' "$SPEC" | head -n 1)
for args in "--trainer --dry-run" "--trainer $T/no-such-trainer --dry-run" "--trainer $T --dry-run" "--np --dry-run"; do
  # shellcheck disable=SC2086
  run cli env -C "$T" "$L" run "$SPEC" $args
  first=${args%% *}
  if [ "$RC" -eq 2 ] && [ "$(printf '%s' "$ERR" | grep -c '')" = 1 ] && case "$ERR" in *"$first"*) true ;; *) false ;; esac \
     && [ ! -e "$T/$RDEF" ]; then ok "jepa-launch run SPEC $args: $ERR"
  else bad "jepa-launch run SPEC $args: rc $RC, stderr [$ERR], $T/$RDEF $( [ -e "$T/$RDEF" ] && echo made)"; fi
done
# $JEPA_TRAIN_BIN gets --trainer's check (it started mpirun: a 10-line
# banner, exit 132, the run directory left behind); --trainer '' is refused
# (it was ignored)
for v in /dev/null "$T"; do
  run envbin env JEPA_TRAIN_BIN="$v" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/envbin"
  expect_error "JEPA_TRAIN_BIN=$v" 2 "run: JEPA_TRAIN_BIN=$v: not an executable file"
  [ ! -e "$T/envbin" ] && ok "JEPA_TRAIN_BIN=$v: no run directory" || bad "JEPA_TRAIN_BIN=$v left $(ls -A "$T/envbin")"
done
run envsweep env JEPA_TRAIN_BIN=/dev/null "$L" sweep "$T/sweep.yaml" --dry-run
expect_error "sweep with JEPA_TRAIN_BIN=/dev/null" 2 "sweep: JEPA_TRAIN_BIN=/dev/null: not an executable file"
run envstatus env JEPA_TRAIN_BIN=/dev/null "$L" status "$T/a"
[ "$RC" -eq 0 ] && ok "status does not start the trainer: JEPA_TRAIN_BIN not asked" || bad "status: rc $RC $ERR"
run emptytr "$L" run "$SPEC" "${SMALL[@]}" --trainer '' --dry-run --set run.dir="$T/emptytr"
expect_error "--trainer ''" 2 "run --trainer '': an empty path"

# on a terminal (script(1) gives one) the job is told to draw its progress
# line (JEPA_PROGRESS=1: mpirun gives the ranks a pipe); through a pipe not
printf '#!/bin/sh\necho "progress=${JEPA_PROGRESS:-unset}"\n' >"$T/envrun" && chmod +x "$T/envrun"
run tty script -qec "JEPA_MPIRUN='$T/envrun' '$L' run '$SPEC' --np 1 --set run.dir='$T/tty' ${SMALL[*]}" /dev/null
case "$OUT" in *progress=1*) ok "on a terminal: JEPA_PROGRESS=1 for the job" ;; *) bad "tty: rc $RC [$OUT] $ERR" ;; esac
run notty env JEPA_MPIRUN="$T/envrun" "$L" run "$SPEC" --np 1 --set run.dir="$T/notty" "${SMALL[@]}"
case "$OUT" in *progress=unset*) ok "through a pipe: no JEPA_PROGRESS" ;; *) bad "notty: rc $RC [$OUT] $ERR" ;; esac
finish
