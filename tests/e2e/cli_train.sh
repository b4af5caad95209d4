#!/usr/bin/env bash
# jepa-train and bench-step on bad input: one clear line naming the
# file/key/value, a non-zero exit, and no run directory created.
. "$(dirname "$0")/lib.sh"
TR="$B/jepa-train"
SPEC="$S/configs/fmnist-tiny.yaml"
RD="$T/run"
pack_fmnist

run usage "$TR"
expect_error "no arguments" 2 "missing SPEC.yaml"

run missing "$TR" "$T/nope.yaml"
expect_error "missing spec file" 2 "$T/nope.yaml" "No such file"

printf 'optim:\n  lrr: 0.1\n' > "$T/typo.yaml"
run typo "$TR" "$T/typo.yaml"
expect_error "unknown key with suggestion" 2 "$T/typo.yaml:2:3" "optim.lrr" "did you mean 'optim.lr'"

printf 'model:\n  depth: 0\n' > "$T/range.yaml"
run range "$TR" "$T/range.yaml"
expect_error "out-of-range value" 2 "$T/range.yaml:2:10" "model.depth" "[1, 64]"

printf 'train:\n  steps: ten\n' > "$T/type.yaml"
run type "$TR" "$T/type.yaml"
expect_error "wrong type" 2 "train.steps" "ten"

printf 'model: [1, 2\n' > "$T/syntax.yaml"
run syntax "$TR" "$T/syntax.yaml"
expect_error "YAML syntax error" 2 "$T/syntax.yaml:"

run badset "$TR" "$SPEC" --set optim.lr=fast --set run.dir="$RD"
expect_error "--set bad value" 2 "--set optim.lr=fast"

run badkey "$TR" "$SPEC" --set optim.l=1 --set run.dir="$RD"
expect_error "--set unknown key" 2 "optim.l"

run noeq "$TR" "$SPEC" --set optim.lr
expect_error "--set without =" 2 "missing '='"

run cross "$TR" "$SPEC" --set train.steps=0 --set train.minutes=0 --set run.dir="$RD"
expect_error "steps and minutes both zero" 2 "train.steps" "train.minutes"

run patch "$TR" "$SPEC" --set model.patch=5 --set run.dir="$RD"
expect_error "image not a multiple of the patch" 2 "model.patch"

run probeevery "$TR" "$SPEC" --set eval.every_steps=15 --set run.dir="$RD"
expect_error "probe interval not a multiple of the log interval" 2 "eval.every_steps" "15" "train.log_every (10)"

run extra "$TR" "$SPEC" --frobnicate --set run.dir="$RD"
expect_error "unknown argument" 2 "--frobnicate"

run exdir "$TR" "$SPEC" --set run.dir="$RD" --exact-spec "$T"
expect_error "--exact-spec naming a directory" 2 "cannot read $T" "Is a directory"
run exnone "$TR" "$SPEC" --set run.dir="$RD" --exact-spec
expect_error "--exact-spec without a file" 2 "--exact-spec needs a FILE"
run exzero timeout 20 "$TR" "$SPEC" --set run.dir="$RD" --exact-spec /dev/zero
expect_error "--exact-spec /dev/zero: not read forever" 2 "--exact-spec /dev/zero: not a regular file"
mkfifo "$T/fifo"
run exfifo timeout 20 "$TR" "$SPEC" --set run.dir="$RD" --exact-spec "$T/fifo"
expect_error "--exact-spec a FIFO: refused without waiting for a writer" 2 "--exact-spec $T/fifo: not a regular file"
printf 'seed: 1\n\0junk\n' >"$T/nul.yaml"
run exnul "$TR" "$SPEC" --set run.dir="$RD" --exact-spec "$T/nul.yaml"
expect_error "--exact-spec with a NUL byte" 2 "$T/nul.yaml: holds a NUL byte"
printf 'model: [1, 2\n' >"$T/exbad.yaml"
run exbad "$TR" "$SPEC" --set run.dir="$RD" --exact-spec "$T/exbad.yaml"
expect_error "--exact-spec that is not a spec" 2 "--exact-spec $T/exbad.yaml:"
run extwice "$TR" "$SPEC" --set run.dir="$RD" --exact-spec "$SPEC" --exact-spec "$T/typo.yaml"
expect_error "--exact-spec given twice" 2 "--exact-spec given twice" "$T/typo.yaml"
run exmpi env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun -np 2 "$TR" "$SPEC" --set run.dir="$RD" --exact-spec "$T/nul.yaml"
[ "$RC" -ne 0 ] && [ "$(printf '%s\n' "$ERR" | grep -c '^jepa-train:')" = 1 ] &&
  printf '%s\n' "$ERR" | grep -q "^jepa-train: --exact-spec $T/nul.yaml: holds a NUL byte" \
  && ok "--exact-spec refused under mpirun -np 2: one line, from rank 0" || bad "exmpi: rc $RC: $ERR"
[ ! -e "$RD" ] && ok "no run directory after a bad --exact-spec" || bad "$RD made"

run data "$TR" "$SPEC" "${DATA[@]}" --set data.train="$T/missing-shards" --set train.steps=1 --set run.dir="$RD"
expect_error "missing data directory" 4 "$T/missing-shards" "data.train: pack one with jepa-shard pack"
# the hint is the objective's: a world model's data comes from jepa-world gen
run worlddata "$TR" "$S/configs/world-tworoom.yaml" --set data.train="$T/missing-shards" \
  --set data.test="$T/missing-shards" --set train.steps=1 --set run.dir="$RD"
expect_error "missing world data directory" 4 "$T/missing-shards" "data.train: generate one with jepa-world gen"

run fewrec "$TR" "$SPEC" --set data.train="$T/fm/test" --set data.test="$T/fm/test" --set train.batch_per_rank=20000 \
  --set train.steps=1 --set train.minutes=0 --set parallel.threads_per_rank=1 --set run.dir="$RD"
expect_error "fewer records than one global batch" 4 "$T/fm/test" "fewer than one global batch"
[ ! -e "$RD" ] && ok "a run refused by the data reader writes no run directory" || bad "$RD made: $(ls "$RD")"

mkdir -p "$T/junk" && printf 'not a manifest' > "$T/junk/manifest.json"
run junk "$TR" "$SPEC" "${DATA[@]}" --set data.train="$T/junk" --set train.steps=1 --set run.dir="$RD"
expect_error "corrupt manifest" 4 "$T/junk"
case "$ERR" in *"data.train: pack"*) bad "a damaged data set told to pack one: $ERR" ;;
  *) ok "no packing hint for a data set that exists but is damaged" ;; esac

cp -r "$T/fm/train" "$T/flipped"
f=$(ls "$T/flipped"/*.jshard 2>/dev/null | head -n 1)
printf '\xff\xff\xff\xff' | dd of="$f" bs=1 seek=5000 conv=notrunc status=none
run flipped "$TR" "$SPEC" "${DATA[@]}" --set data.train="$T/flipped" --set train.steps=1 --set run.dir="$RD"
expect_error "corrupt shard frame" 4 "$f"

# a FIFO where a checkpoint or a shard is read: refused in one line naming
# it, not waited on (a FIFO's blocking open waits for a writer forever,
# SIGTERM ignored: timeout -k's exit 137 is that hang), no run directory
FIFO_RUN=(--set train.steps=1 --set train.minutes=0 --set eval.probe=false --set parallel.threads_per_rank=1)
mkfifo "$T/ck.fifo"
run ckfifo timeout -k 5 20 "$TR" "$SPEC" "${DATA[@]}" "${FIFO_RUN[@]}" --set run.dir="$RD" --set resume="$T/ck.fifo"
expect_error "resume=a FIFO: refused, not waited on" 4 "$T/ck.fifo: not a regular file"
[ ! -e "$RD" ] && ok "no run directory after resume=FIFO" || bad "resume=FIFO made $RD"
mkdir -p "$T/ckauto/checkpoints" && mkfifo "$T/ckauto/checkpoints/step-00000003.ckpt"
run ckauto timeout -k 5 20 "$TR" "$SPEC" "${DATA[@]}" "${FIFO_RUN[@]}" --set run.dir="$T/ckauto" --set resume=auto
[ "$RC" -eq 4 ] && [ "$(printf '%s\n' "$ERR" | grep -c '')" = 2 ] \
  && printf '%s\n' "$ERR" | grep -q "^jepa: warning: $T/ckauto/checkpoints/step-00000003.ckpt: not a regular file" \
  && printf '%s\n' "$ERR" | grep -q "^jepa-train: $T/ckauto/checkpoints: none of its 1 checkpoint is readable" \
  && [ "$(ls -A "$T/ckauto")" = checkpoints ] && [ -p "$T/ckauto/checkpoints/step-00000003.ckpt" ] \
  && ok "resume=auto, the newest checkpoint a FIFO: skipped as unreadable, not waited on; nothing written" \
  || bad "resume=auto with a FIFO checkpoint: rc $RC: $ERR"
cp -r "$T/fm/test" "$T/fifodata" && rm "$T/fifodata/shard-00000.jshard" && mkfifo "$T/fifodata/shard-00000.jshard"
run datafifo timeout -k 5 20 "$TR" "$SPEC" "${DATA[@]}" "${FIFO_RUN[@]}" --set data.train="$T/fifodata" --set run.dir="$RD"
expect_error "data.train with a FIFO shard: refused, not waited on" 4 "$T/fifodata/shard-00000.jshard: not a regular file"
[ ! -e "$RD" ] && ok "no run directory after a FIFO shard" || bad "a FIFO shard made $RD"

run testdata "$TR" "$SPEC" "${DATA[@]}" --set data.test="$T/missing-test" --set train.steps=1 --set run.dir="$RD"
expect_error "missing probe test set (checked before training)" 4 "$T/missing-test"

# a batch the machine cannot hold: one line naming the keys to shrink, exit
# 5 (TRAIN_EXIT_NOMEM, which jepa-launch does not restart; the address
# space capped at 1.5 GiB; this batch's activations alone need ~6 GiB)
run oom bash -c 'ulimit -v 1500000 && exec "$@"' oom "$TR" "$SPEC" "${DATA[@]}" --set train.batch_per_rank=40000 \
  --set train.steps=1 --set parallel.threads_per_rank=1 --set run.dir="$RD"
expect_error "a batch larger than memory" 5 "out of memory allocating" "train.batch_per_rank"

if [ -e "$RD" ]; then bad "a failed run left $RD behind"; else ok "no run directory after failures"; fi

# a full disk (/dev/full behind the file's name): one line naming the file,
# and no temp file left behind
ONE=(--set train.steps=1 --set train.minutes=0 --set eval.probe=false --set parallel.threads_per_rank=1)
mkdir -p "$T/full1" && ln -s /dev/full "$T/full1/spec.resolved.yaml.tmp"
run full1 "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/full1"
expect_error "a full disk writing spec.resolved.yaml" 4 "cannot write $T/full1/spec.resolved.yaml" "No space left"
[ ! -L "$T/full1/spec.resolved.yaml.tmp" ] && [ ! -e "$T/full1/spec.resolved.yaml" ] \
  && ok "no spec.resolved.yaml or its temp file after a full disk" || bad "full1 left: $(ls -A "$T/full1")"
mkdir -p "$T/full2" && ln -s /dev/full "$T/full2/metrics.jsonl"
run full2 "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set train.steps=3 --set train.log_every=1 --set run.dir="$T/full2"
n=$(printf '%s\n' "$ERR" | grep -c "jepa: rank 0: step 1: cannot write $T/full2/metrics.jsonl: No space left on device")
[ "$RC" -eq 1 ] && [ "$n" = 1 ] && [ ! -e "$T/full2/summary.json" ] \
  && ok "a full disk writing metrics.jsonl stops the run at its first line (exit 1)" || bad "full2: rc $RC: $ERR"

printf 'x\n' >"$T/afile"
run rdfile "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/afile"
expect_error "run.dir naming a file" 4 "run.dir $T/afile exists and is not a directory"
[ "$(cat "$T/afile")" = x ] && ok "the file is untouched" || bad "$T/afile changed"

# a fresh start never writes over a finished run whose checkpoints were
# deleted, and resume=PATH never continues another run inside a run.dir
# that holds checkpoints of its own
run fin "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fin"
run fin2 "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fin2"
[ "$RC" -eq 0 ] && [ -s "$T/fin/summary.json" ] && [ -s "$T/fin2/checkpoint.bin" ] \
  && ok "fixture: two finished 1-step runs" || bad "fixture fin2: rc $RC: $ERR"
# its figures written to a full disk are lost: one line, exit 1 (it exited 0)
expect_full "jepa-train SPEC" jepa-train "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fullout"
rm -rf "$T/fin/checkpoint.bin" "$T/fin/checkpoints" && cp -a "$T/fin" "$T/fin.before"
run again "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fin"
expect_error "a finished run without checkpoints is not overwritten" 4 "$T/fin/summary.json" "another run.dir"
diff -r "$T/fin" "$T/fin.before" >/dev/null && ok "the finished run's files are untouched" || bad "fin changed"
cp -a "$T/fin2" "$T/fin2.before"
run foreign "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fin2" --set resume="$T/fin/../fin2.before/checkpoint.bin"
expect_error "resume=PATH of another run into a run.dir with checkpoints" 4 "already holds checkpoints" "resume=$T/fin/../fin2.before/checkpoint.bin"
diff -r "$T/fin2" "$T/fin2.before" >/dev/null && ok "the run.dir with checkpoints is untouched" || bad "fin2 changed"
run foreignfin "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fin" --set resume="$T/fin2.before/checkpoint.bin"
expect_error "resume=PATH of another run into a finished run without checkpoints" 4 "$T/fin/summary.json"
diff -r "$T/fin" "$T/fin.before" >/dev/null && ok "the finished run's files are untouched again" || bad "fin changed"
run own "$TR" "$SPEC" "${DATA[@]}" "${ONE[@]}" --set run.dir="$T/fin2" --set resume="$T/fin2/checkpoints/step-00000001.ckpt"
[ "$RC" -eq 0 ] && ok "resume=PATH of one of the run's own checkpoints (RUN/checkpoints/) is its own" \
  || bad "own checkpoint: rc $RC: $ERR"

run help "$TR" --help
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "optim.lr"; then ok "--help lists keys"; else bad "--help"; fi
run dashdash "$TR" -- "$S/configs/no-such.yaml"
expect_error "-- then SPEC: SPEC is read" 2 "no-such.yaml"
run help2 "$TR" "$SPEC" --set seed=1 --help
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "optim.lr"; then ok "--help after SPEC and --set"; else bad "--help after SPEC: rc $RC: $ERR"; fi

run bench "$B/bench-step" --threads 0
expect_error "bench-step bad thread count" 2 "--threads"

finish
