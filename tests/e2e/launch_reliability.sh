#!/usr/bin/env bash
# Issue 16, items 2-7, as end-to-end checks of jepa-launch and jepa-train:
#   2. a run.dir that begins with '-' reaches mpirun, jepa-train, sbatch and
#      srun as a path (local run, sweep, Slurm script, resume);
#   3. '%' in a path handed to Slurm is written '%%' (our own %j stays);
#   4. every kind of refused resume (the trainer's and the launcher's) leaves
#      the run directory byte-identical;
#   5. `jepa-launch resume` of a run started with plain `mpirun -np 2` takes
#      the checkpoint's world size, and refuses a --np that does not divide
#      its global batch (one that does resumes: tests/e2e/elastic.sh);
#   6. a sweep run again into its directory skips finished points, continues
#      unfinished ones, refuses one that would rewrite a point; `results`
#      reports no figures for a point whose spec was rewritten after it ran;
#   7. every output path the launcher takes gets its parents (mkdir -p);
# and two hostile-input findings: `jepa-launch resume` of a moved or copied
# run directory continues it where it is (never at its recorded run.dir),
# and a job sbatch could not be run for leaves no run directory behind,
# while one sbatch ran but gave no job id for keeps it (it may be queued),
# each said in one line; a `jepa-launch run` stopped by SIGTERM says so, with
# how to continue, and `jepa-launch resume` then finishes it; a sweep stopped
# by SIGTERM or SIGINT stops its running points (resumable, not failed),
# starts no more, says so in one line and exits 75; sweep --set reaches
# every point, is shown by --dry-run and kept in sweep.json, and a bad one
# (or one naming a varied key) is refused; more --set than a spec takes is
# refused naming the command or the spec file.
# About 30 s on 2 cores (tiny model, a few steps per run).
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
TR="$B/jepa-train"
MPI="${JEPA_MPIEXEC:-mpirun}"
SPEC="$S/configs/fmnist-tiny.yaml"
FM=/usr/share/datasets/fashion-mnist
unset JEPA_MPIRUN JEPA_TRAIN_BIN
export JEPA_SBATCH=false # no real sbatch is ever asked: the Slurm checks use a fake one
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# Fashion-MNIST's test split packed twice: the same 10000 images in other
# shards, so the same shape and size with another fingerprint
pack() {
  "$B/jepa-shard" pack --idx-images "$FM/t10k-images-idx3-ubyte.gz" --idx-labels "$FM/t10k-labels-idx1-ubyte.gz" \
    --out "$1" --split train --quiet "${@:2}"
}
pack "$T/d1" && pack "$T/d2" --records-per-shard 2048 || { bad "packing Fashion-MNIST's test split failed"; finish; exit 1; }
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=6 --set train.log_every=1
       --set train.batch_per_rank=32 --set parallel.threads_per_rank=1 --set eval.probe=false
       --set checkpoint.every_steps=2 --set data.train="$T/d1" --set data.test="$T/d1")

# snap DIR: one hash over the names, sizes and bytes of everything in DIR
snap() {
  (cd -- "$1" && find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %s %F' &&
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum | cut -c1-16
}
# refused DESC DIR BEFORE PATTERN...: the last command failed with one
# stderr line holding every PATTERN, and DIR still hashes to BEFORE
refused() {
  local desc=$1 dir=$2 before=$3 lines after
  shift 3
  after=$(snap "$dir")
  if [ "$RC" -eq 0 ]; then bad "$desc: not refused (exit 0)"; return; fi
  for p in "$@"; do
    case "$ERR" in *"$p"*) ;; *) bad "$desc: stderr lacks '$p': $ERR"; return ;; esac
  done
  # mpirun adds its own banner when a rank exits non-zero: count our lines only
  lines=$(printf '%s\n' "$ERR" | grep -c '^jepa')
  [ "$lines" -eq 1 ] || { bad "$desc: $lines jepa lines in stderr, want 1: $ERR"; return; }
  [ "$after" = "$before" ] && ok "$desc: refused (exit $RC), run directory byte-identical" \
    || bad "$desc: run directory changed ($before -> $after): $ERR"
}
json() { sed -n "s/.*\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" "$1"; }

cd "$T" || exit 1

# ---- 2. a run.dir that begins with '-'
run dry "$L" run "$SPEC" --np 2 --dry-run "${SMALL[@]}" --set run.dir="-dash run"
want="mpirun -np 2 -x JEPA_RUN_LOCK_PID $B/jepa-train './-dash run/spec.resolved.yaml' --exact-spec './-dash run/spec.yaml'"
[ "$RC" -eq 0 ] && [ "$OUT" = "$want" ] && ok "dash: --dry-run hands mpirun ./-dash run" || bad "dash dry: rc $RC [$OUT] $ERR"
run dash "$L" run "$SPEC" --np 2 "${SMALL[@]}" --set run.dir="-dash run" --set max_restarts=0
[ "$RC" -eq 0 ] && [ "$(json "$T/-dash run/summary.json" ranks)" = 2 ] && [ "$(json "$T/-dash run/summary.json" steps)" = 6 ] \
  && ok "dash: a 2-rank run in '-dash run' finishes" || bad "dash run: rc $RC: $(printf '%s' "$ERR" | head -3)"
mv "$T/-dash run/summary.json" "$T/dash.summary" # unfinished again: a resume has work to do
run dashres "$L" resume --dry-run -- "-dash run"
mv "$T/dash.summary" "$T/-dash run/summary.json"
[ "$OUT" = "$want --set resume=auto" ] && ok "dash: resume --dry-run" || bad "dash resume: [$OUT] $ERR"
# Slurm: a fake sbatch records its argv; the script it got runs with a fake srun
mkdir -p fakebin
printf '#!/bin/bash\nfor a in "$@"; do printf "%%s\\0" "$a"; done >"$FAKE_ARGV"\necho 4711\n' >fakebin/sbatch
printf '#!/bin/bash\nfor a in "$@"; do printf "%%s\\0" "$a"; done >"$FAKE_ARGV"\n' >fakebin/srun
chmod +x fakebin/sbatch fakebin/srun
SD="-s 50%acc %j"
FAKE_ARGV="$T/sbatch.argv" JEPA_SBATCH="$T/fakebin/sbatch" run sl "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$SD"
printf '%s\0' --parsable "--output=-s 50%%acc %%j/slurm-%j.out" "./$SD/job.sbatch" >want.argv
[ "$RC" -eq 0 ] && cmp -s sbatch.argv want.argv && ok "dash + %: sbatch gets --output=-s 50%%acc %%j/slurm-%j.out ./-s 50%acc %j/job.sbatch" \
  || bad "sbatch argv: rc $RC [$(tr '\0' ' ' <sbatch.argv 2>&1)] $ERR"
FAKE_ARGV="$T/srun.argv" PATH="$T/fakebin:$PATH" bash "./$SD/job.sbatch" >/dev/null 2>&1
printf '%s\0' --mpi=pmix -n 1 --cpus-per-task=1 "$B/jepa-train" "./$SD/spec.resolved.yaml" --exact-spec "./$SD/spec.yaml" >want.argv
cmp -s srun.argv want.argv && ok "dash: srun gets ./-s 50%acc %j/spec.resolved.yaml" || bad "srun argv: $(tr '\0' ' ' <srun.argv 2>&1)"
# a requeue that comes back with another task count (issue 17): srun takes the allocation's
FAKE_ARGV="$T/srun.argv" PATH="$T/fakebin:$PATH" SLURM_RESTART_COUNT=1 SLURM_TASKS_PER_NODE="2(x2),1" \
  bash "./$SD/job.sbatch" >/dev/null 2>&1
printf '%s\0' --mpi=pmix -n 5 --cpus-per-task=1 "$B/jepa-train" "./$SD/spec.resolved.yaml" --exact-spec "./$SD/spec.yaml" \
  --set resume=auto >want.argv
cmp -s srun.argv want.argv && grep -q "allocation has 5 tasks (spec: 1)" "./$SD/launch.log" \
  && ok "requeued on 2(x2),1 tasks: srun -n 5 with resume=auto, noted" || bad "requeue srun argv: $(tr '\0' ' ' <srun.argv 2>&1)"
rm -f srun.argv
FAKE_ARGV="$T/srun.argv" PATH="$T/fakebin:$PATH" SLURM_TASKS_PER_NODE=3 bash "./$SD/job.sbatch" >/dev/null 2>&1
printf '%s\0' --mpi=pmix -n 1 --cpus-per-task=1 "$B/jepa-train" "./$SD/spec.resolved.yaml" --exact-spec "./$SD/spec.yaml" >want.argv
cmp -s srun.argv want.argv && ok "a first start on 3 allocated tasks keeps the spec's 1 rank, no resume" \
  || bad "first start srun argv: $(tr '\0' ' ' <srun.argv 2>&1)"
run slbs "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/back\\slash"
expect_error "Slurm: a backslash in run.dir is refused" 2 "run.dir" "backslash"
[ -e "$T/back\\slash" ] && bad "a refused slurm run.dir was created" || ok "nothing created for it"

# ---- 5. resume of a run started with plain mpirun -np 2 (parallel.ranks says 1)
run p2 "$MPI" -np 2 -x JEPA_DEBUG_STOP_STEP=3 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/p2"
[ "$RC" -eq 75 ] && [ -e "$T/p2/checkpoints/step-00000003.ckpt" ] && ok "plain mpirun -np 2 run stopped after step 3" \
  || bad "p2: rc $RC: $ERR"
run p2dry "$L" resume "$T/p2" --dry-run
[ "$OUT" = "mpirun -np 2 -x JEPA_RUN_LOCK_PID $B/jepa-train $T/p2/spec.resolved.yaml --exact-spec $T/p2/spec.yaml --set resume=auto" ] \
  && case "$ERR" in *"written by 2 ranks"*"parallel.ranks 1"*) true ;; *) false ;; esac \
  && ok "resume takes the checkpoint's world size (2) and says so" || bad "p2 resume dry: [$OUT] [$ERR]"
before=$(snap "$T/p2")
run p2np3 "$L" resume "$T/p2" --np 3
refused "resume --np 3 of a 2-rank checkpoint (global batch 64)" "$T/p2" "$before" \
  "global batch 64 (written by 2 ranks) does not divide by 3 ranks"
run p2res "$L" resume "$T/p2"
[ "$RC" -eq 0 ] && [ "$(json "$T/p2/summary.json" ranks)" = 2 ] && [ "$(json "$T/p2/summary.json" resumed_from)" = 3 ] \
  && ok "jepa-launch resume finishes it at 2 ranks from step 3" || bad "p2 resume: rc $RC: $(printf '%s' "$ERR" | tail -3)"

# ---- resume of a run directory that was moved or copied: it continues in
# the directory named, never at the run.dir its spec recorded
run mv1 env JEPA_DEBUG_STOP_STEP=3 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir=mvA
[ "$RC" -eq 75 ] && cp -a mvA mvA.copy && mv mvA mvB && ok "fixture: run mvA stopped after step 3, copied, moved to mvB" \
  || bad "mv fixture: rc $RC: $ERR"
run mvdry "$L" resume mvB --dry-run
[ "$OUT" = "mpirun -np 1 -x JEPA_RUN_LOCK_PID $B/jepa-train mvB/spec.resolved.yaml --exact-spec mvB/spec.yaml --set run.dir=mvB --set resume=auto" ] \
  && [ "$ERR" = "jepa-launch: mvB holds the run made as run.dir mvA: resuming it here (run.dir=mvB)" ] \
  && ok "resume --dry-run of a moved run: --set run.dir=mvB, said in one line" || bad "mv dry: [$OUT] [$ERR]"
run mvres "$L" resume mvB
[ "$RC" -eq 0 ] && [ ! -e mvA ] && [ "$(json mvB/summary.json resumed_from)" = 3 ] && [ "$(json mvB/summary.json steps)" = 6 ] \
  && grep -q '^  dir: "mvB"$' mvB/spec.resolved.yaml && ok "the moved run resumes from step 3 in mvB, no mvA made" \
  || bad "mv resume: rc $RC, mvA $( [ -e mvA ] && echo made), $(tail -2 <<<"$ERR")"
# the recorded run.dir holds another run: the copy is the one continued
mv mvA.copy mvA && cp -a mvA mvC && before=$(snap mvA)
run mvcopy "$L" resume mvC
[ "$RC" -eq 0 ] && [ "$(snap mvA)" = "$before" ] && [ "$(json mvC/summary.json resumed_from)" = 3 ] \
  && ok "resume of a copy: the copy finishes, the run at its recorded run.dir is byte-identical" \
  || bad "copy resume: rc $RC: $(tail -2 <<<"$ERR")"
# an absolute run.dir, moved, resumed from another directory: absolute again
run mvabs1 env JEPA_DEBUG_STOP_STEP=3 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/mvD"
[ "$RC" -eq 75 ] && mv "$T/mvD" "$T/mvE" && mkdir -p sub && run mvabs2 env -C sub "$L" resume ../mvE
[ "$RC" -eq 0 ] && grep -q "^  dir: \"$T/mvE\"$" "$T/mvE/spec.resolved.yaml" && [ ! -e "$T/mvD" ] \
  && [ "$(json "$T/mvE/summary.json" resumed_from)" = 3 ] \
  && ok "a moved run recorded with an absolute run.dir resumes with an absolute one ($T/mvE)" || bad "abs mv: rc $RC: $ERR"

# ---- a job sbatch could not even be run for leaves nothing behind; one it
# ran (failed, or printed no job id) may be queued all the same: the run
# directory stays, the one line says so, and the exit is 1 (2: nothing made)
run sbnone env JEPA_SBATCH="$T/no-such-sbatch" "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/sbA/run"
expect_error "slurm with an sbatch that does not exist" 2 "cannot run $T/no-such-sbatch"
[ -e "$T/sbA" ] && bad "left $(find "$T/sbA" | tr '\n' ' ')" || ok "nothing left of run.dir or its parent"
printf '#!/bin/bash\necho 42\n' >fakebin/sbatch-noexec
chmod -x fakebin/sbatch-noexec
run sbnox env JEPA_SBATCH="$T/fakebin/sbatch-noexec" "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/sbX"
expect_error "slurm with an sbatch that is not executable" 2 "cannot run $T/fakebin/sbatch-noexec: Permission denied"
[ -e "$T/sbX" ] && bad "left $(find "$T/sbX" | tr '\n' ' ')" || ok "nothing left of its run.dir"
maybe_queued() { printf '%s; %s kept (job.sbatch, spec files): sbatch may have queued it, check squeue before resubmitting' "$1" "$2"; }
printf '#!/bin/bash\nfor i in 1 2 3 4; do echo "sbatch: error: trouble $i" >&2; done\necho "sbatch: fatal: no config" >&2\nexit 1\n' \
  >fakebin/sbatch-fails
chmod +x fakebin/sbatch-fails
run sbfail env JEPA_SBATCH="$T/fakebin/sbatch-fails" "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/sbB"
[ "$RC" -eq 1 ] && [ "$ERR" = "jepa-launch: $(maybe_queued "$T/fakebin/sbatch-fails failed (status 1): sbatch: fatal: no config" "$T/sbB")" ] \
  && ok "sbatch exits 1 after 5 lines: its last line, run.dir kept, in one line" || bad "sbfail: rc $RC: $ERR"
[ -f "$T/sbB/job.sbatch" ] && [ -f "$T/sbB/spec.yaml" ] \
  && [ "$(cat "$T/sbB/state")" = "failed: sbatch (the job may be queued: check squeue)" ] \
  && ok "its job.sbatch and spec kept, state says it may be queued" || bad "sbB: $(ls "$T/sbB" 2>&1 | tr '\n' ' ')"
printf '#!/bin/bash\necho "Submitted batch job 42"\n' >fakebin/sbatch-noid
chmod +x fakebin/sbatch-noid
run sbnoid env JEPA_SBATCH="$T/fakebin/sbatch-noid" "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/sbD"
[ "$RC" -eq 1 ] && [ "$ERR" = "jepa-launch: $(maybe_queued "$T/fakebin/sbatch-noid exited 0 but printed no job id (it printed 'Submitted batch job 42')" "$T/sbD")" ] \
  && [ -f "$T/sbD/job.sbatch" ] && [ ! -e "$T/sbD/slurm_job" ] \
  && ok "sbatch exits 0 without the --parsable id: run.dir kept, one line says it may be queued" \
  || bad "sbnoid: rc $RC, $(ls "$T/sbD" 2>&1 | tr '\n' ' '): $ERR"
# not run at all, into a directory with a spec.yaml of its own: kept, and why
mkdir -p "$T/sbC" && cp "$SPEC" "$T/sbC/spec.yaml"
run sbkept env JEPA_SBATCH="$T/no-such-sbatch" "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/sbC"
expect_error "slurm into a directory with its own spec.yaml" 2 "cannot run $T/no-such-sbatch" \
  "; $T/sbC kept: it existed before with its own spec.yaml"
[ "$(cat "$T/sbC/state")" = "failed: sbatch" ] && ok "kept, its state says failed: sbatch" || bad "sbC state: $(cat "$T/sbC/state" 2>&1)"

# not run at all, into an empty directory that exists: left empty (its lock
# was taken after the snapshot, and goes with the rest)
mkdir -p "$T/sbE"
run sbempty env JEPA_SBATCH="$T/no-such-sbatch" "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/sbE"
expect_error "slurm into an empty directory, sbatch not found" 2 "cannot run $T/no-such-sbatch"
[ -d "$T/sbE" ] && [ -z "$(ls -A "$T/sbE")" ] && ok "the empty directory is left empty" \
  || bad "sbE left: $(ls -A "$T/sbE" 2>&1 | tr '\n' ' ')"

# ---- 4. refused resumes leave the run directory byte-identical
run r1 env JEPA_DEBUG_STOP_STEP=3 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/r1"
[ "$RC" -eq 75 ] && ok "fixture: 1-rank run stopped after step 3" || bad "r1: rc $RC: $ERR"
before=$(snap "$T/r1")
R1=(--set run.dir="$T/r1" --set resume=auto)
run ra "$TR" "$SPEC" "${SMALL[@]}" "${R1[@]}" --set data.train="$T/d2"
refused "jepa-train: data.train of the same shape and size, other shards" "$T/r1" "$before" "dataset"
run rb "$TR" "$SPEC" "${SMALL[@]}" "${R1[@]}" --set model.width=48
refused "jepa-train: another model.width" "$T/r1" "$before" "model.width"
run rc "$TR" "$SPEC" "${SMALL[@]}" "${R1[@]}" --set train.steps=8
refused "jepa-train: another train.steps" "$T/r1" "$before" "train.steps"
run rd "$TR" "$SPEC" "${SMALL[@]}" "${R1[@]}" --set optim.lr=0.005
refused "jepa-train: another optim.lr" "$T/r1" "$before" "step-00000003.ckpt"
run re "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/r1"
refused "jepa-train: resume none over checkpoints" "$T/r1" "$before" "already holds checkpoints"
run rf "$MPI" -np 3 "$TR" "$SPEC" "${SMALL[@]}" "${R1[@]}"
refused "jepa-train under mpirun -np 3: a world size not dividing the global batch" "$T/r1" "$before" \
  "step-00000003.ckpt: global batch 32 (written by 1 rank) does not divide by 3 ranks"
run rg "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/r1"
refused "jepa-launch run: resume none over checkpoints" "$T/r1" "$before" "already holds checkpoints" "jepa-launch resume"
run rh "$L" run "$SPEC" "${SMALL[@]}" "${R1[@]}" --set optim.lr=0.005
refused "jepa-launch run: another optim.lr" "$T/r1" "$before" "optim.lr" "0.005"
run ri "$L" run "$SPEC" "${SMALL[@]}" "${R1[@]}" --set data.train="$T/d2"
refused "jepa-launch run: another data.train" "$T/r1" "$before" "data.train"
run rj "$L" resume "$T/r1" --np 3
refused "jepa-launch resume --np 3 of a 1-rank checkpoint (global batch 32)" "$T/r1" "$before" \
  "global batch 32 (written by 1 rank) does not divide by 3 ranks"
run rk "$L" slurm "$SPEC" "${SMALL[@]}" --set run.dir="$T/r1"
refused "jepa-launch slurm over checkpoints" "$T/r1" "$before" "already holds checkpoints"
# a damaged newest checkpoint and a dead writer's temp file: the fallback to
# the older one is not a licence to change the directory before the refusal
cp -a "$T/r1" "$T/r1c"
printf '\xff\xff\xff\xff' | dd of="$T/r1c/checkpoints/step-00000003.ckpt" bs=1 seek=300 conv=notrunc status=none
: >"$T/r1c/checkpoints/step-00000004.ckpt.tmp.99999"
bc=$(snap "$T/r1c")
run rm "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/r1c" --set resume=auto --set train.steps=8
[ "$RC" -ne 0 ] && [ "$(snap "$T/r1c")" = "$bc" ] && case "$ERR" in *step-00000002.ckpt*train.steps*) true ;; *) false ;; esac \
  && ok "jepa-train: refused after falling back past a damaged checkpoint: nothing moved or removed" \
  || bad "rm: rc $RC, directory $( [ "$(snap "$T/r1c")" = "$bc" ] && echo same || echo changed): $ERR"
run rn "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/r1c" --set resume=auto
[ "$RC" -eq 0 ] && [ -e "$T/r1c/checkpoints/step-00000003.ckpt.corrupt" ] \
  && [ ! -e "$T/r1c/checkpoints/step-00000004.ckpt.tmp.99999" ] \
  && ok "an accepted resume moves the damaged one aside and removes the temp file" || bad "rn: rc $RC: $ERR"
run rl "$L" resume "$T/r1"
[ "$RC" -eq 0 ] && [ "$(json "$T/r1/summary.json" resumed_from)" = 3 ] && ok "after the refusals the run resumes and finishes" \
  || bad "r1 resume: rc $RC: $ERR"

# ---- 6. a sweep run again into its directory
sweep() { # FILE DIR LRS [EXTRA]
  cat >"$1" <<EOF
base: $SPEC
dir: "$2"
parallel: 1
set: {model.width: 32, model.depth: 2, eval.pool_blocks: 1, model.heads: 2, model.pred_width: 16, model.pred_depth: 1,
      model.pred_heads: 2, train.steps: 4, train.log_every: 2, train.batch_per_rank: 32, max_restarts: 0,
      parallel.threads_per_rank: 1, eval.probe: false, data.train: $T/d1, data.test: $T/d1${4:-}}
grid:
  optim.lr: [$3]
EOF
}
sweep s1.yaml "$T/sw" "0.002, 0.0005"
run s1 "$L" sweep s1.yaml
[ "$RC" -eq 0 ] && [ -s "$T/sw/point-000/summary.json" ] && [ -s "$T/sw/point-001/summary.json" ] \
  && ok "sweep of 2 points" || bad "sweep: rc $RC: $OUT $ERR"
p0=$(snap "$T/sw/point-000")
p1=$(snap "$T/sw/point-001")
run s1again "$L" sweep s1.yaml
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^point-00[01]: finished before .*: skipped$')" = 2 ] \
  && ok "the same sweep again: both finished points skipped, and it says so" || bad "sweep again: rc $RC: $OUT $ERR"
[ "$(snap "$T/sw/point-000")" = "$p0" ] && [ "$(snap "$T/sw/point-001")" = "$p1" ] && ok "finished points byte-identical" \
  || bad "a finished point changed"
all=$(snap "$T/sw")
sweep s2.yaml "$T/sw" "0.005, 0.0005"
run s2 "$L" sweep s2.yaml
refused "a sweep with another lr into the same dir" "$T/sw" "$all" "point 0" "optim.lr=0.002" "0.005"
sweep s3.yaml "$T/sw" "0.002"
run s3 "$L" sweep s3.yaml
refused "a sweep with fewer points into the same dir" "$T/sw" "$all" "point-001" "more points"
run s2dry "$L" sweep s2.yaml --dry-run
refused "the same with --dry-run" "$T/sw" "$all" "point 0"
sweep s4.yaml "$T/sw" "0.002, 0.0005, 0.001"
run s4 "$L" sweep s4.yaml
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c 'skipped$')" = 2 ] && [ -s "$T/sw/point-002/summary.json" ] \
  && ok "a sweep with one point more runs only the new point" || bad "s4: rc $RC: $OUT $ERR"
[ "$(snap "$T/sw/point-000")" = "$p0" ] && [ "$(snap "$T/sw/point-001")" = "$p1" ] && ok "its finished points byte-identical" \
  || bad "s4 changed a finished point"
run res "$L" results "$T/sw"
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c ' done$')" = 3 ] && ok "results: 3 points done" || bad "results: $OUT $ERR"
# an unfinished point (stopped after step 2 of 4) is continued, not restarted
sweep u.yaml "$T/u" "0.002"
JEPA_DEBUG_STOP_STEP=2 run u1 "$L" sweep u.yaml
[ "$RC" -ne 0 ] && [ -e "$T/u/point-000/checkpoints/step-00000002.ckpt" ] && [ ! -e "$T/u/point-000/summary.json" ] \
  && ok "fixture: a sweep point stopped after step 2" || bad "u1: rc $RC: $OUT $ERR"
run u2 "$L" sweep u.yaml
[ "$RC" -eq 0 ] && [ "$(json "$T/u/point-000/summary.json" resumed_from)" = 2 ] \
  && ok "the sweep again continues the unfinished point from step 2" || bad "u2: rc $RC: $OUT $ERR"
# a point whose spec was rewritten after it finished (what re-runs once did):
# no figures (its value is not the sweep's: damaged; launch_damaged.sh has
# a spec only newer than the summary, inconsistent)
# (in the form before resolved specs carried a checksum, which still loads)
sed -i -e '1s/; checksum last$//' -e '/^# end of the resolved spec/d' -e 's/^  lr: 0.002$/  lr: 0.005/' \
  "$T/sw/point-000/spec.resolved.yaml"
run lie "$L" results "$T/sw"
row=$(printf '%s\n' "$OUT" | grep '^point-000 ')
[ "$RC" -eq 1 ] && case "$row" in *" - "*"damaged: spec.resolved.yaml: optim.lr is 0.005"*) true ;; *) false ;; esac \
  && [ "$(printf '%s' "$ERR" | grep -c '')" = 1 ] && ok "results: no figures for a rewritten point, one line, exit 1" \
  || bad "results of a rewritten point: rc $RC [$row] $ERR"

# ---- 2 again, for sweeps and for our own command line (-- ends the options)
FAKE="$T/fake-train" # reads its first argument as jepa-train does: a spec file, never an option
printf '#!/bin/bash\ncase "$1" in -*) echo "fake-train: missing SPEC.yaml" >&2; exit 2 ;; esac\n[ -f "$1" ] || exit 9\n' >"$FAKE"
chmod +x "$FAKE"
sweep ds.yaml "-dash sweep" "0.002, 0.001"
run ds env JEPA_TRAIN_BIN="$FAKE" "$L" sweep ds.yaml
[ "$RC" -eq 0 ] && [ "$(cat "./-dash sweep/point-001/state")" = done ] && ok "dash: a sweep into '-dash sweep' runs its points" \
  || bad "dash sweep: rc $RC: $OUT $ERR"
run dsst "$L" status -- "-dash sweep"
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | tail -1)" = "2 of 2 points finished" ] && ok "dash: status -- '-dash sweep'" \
  || bad "status --: rc $RC: $OUT $ERR"
run dsst2 "$L" status "-dash sweep"
expect_error "dash: without --, one line says how to pass such a path" 2 "unknown option '-dash sweep'" "./-dash sweep" "--"

# ---- 7. output paths get their parents
run mk1 env JEPA_TRAIN_BIN="$FAKE" "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/new/a/b/run"
[ "$RC" -eq 0 ] && [ -s "$T/new/a/b/run/spec.resolved.yaml" ] && ok "run: run.dir's parents made" || bad "mk1: rc $RC $ERR"
run mk2 "$L" slurm "$SPEC" "${SMALL[@]}" --dry-run --set run.dir="$T/new2/a/run"
[ "$RC" -eq 0 ] && [ -s "$T/new2/a/run/job.sbatch" ] && ok "slurm: run.dir's parents made" || bad "mk2: rc $RC $ERR"
sweep mk3.yaml "$T/new3/a/sweep" "0.002"
run mk3 env JEPA_TRAIN_BIN="$FAKE" "$L" sweep mk3.yaml
[ "$RC" -eq 0 ] && [ -s "$T/new3/a/sweep/points.csv" ] && [ -s "$T/new3/a/sweep/point-000/spec.yaml" ] \
  && ok "sweep: dir's parents made" || bad "mk3: rc $RC $OUT $ERR"
: >"$T/afile"
run mk4 "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/afile/run"
expect_error "run.dir under a regular file" 2 "$T/afile"

# ---- SIGTERM to `jepa-launch run`: reported as stopped by signal 15 with how
# to continue (it said "job failed with status 1", mpirun's exit), and that way continues
set -m # a script's background jobs otherwise start with SIGINT ignored
"$L" run "$SPEC" "${SMALL[@]}" --set train.steps=400 --set run.dir="$T/sig" >"$T/sig.out" 2>"$T/sig.err" & pid=$!
set +m
for i in $(seq 600); do
  compgen -G "$T/sig/checkpoints/step-*.ckpt" >/dev/null && break; sleep 0.05
done
kill -TERM "$pid"; wait "$pid"; RC=$?
LAST=$(grep '^jepa-launch: ' "$T/sig.err" | tail -n 1)
# (mpirun, itself signalled, exits 1 where a rank exits 75; jepa-launch
# exits 75, the trainer's "stopped by a signal, resumable")
case "$LAST" in
  "jepa-launch: $T/sig: stopped by signal 15 (SIGTERM; the job exited with status "[0-9]*"); continue it with jepa-launch resume $T/sig")
    [ "$RC" -eq 75 ] && ok "SIGTERM: stopped by signal 15, says how to resume, exit 75" || bad "SIGTERM: exit $RC, not 75" ;;
  *) bad "SIGTERM: rc $RC, '$LAST': $(cat "$T/sig.err")" ;;
esac
grep -q 'job failed' "$T/sig.err" && bad "SIGTERM reported as a failure: $(cat "$T/sig.err")" || ok "SIGTERM: not called a failure"
[ "$(cat "$T/sig/state")" = "stopped signal=15" ] && ok "SIGTERM: state 'stopped signal=15'" || bad "state: $(cat "$T/sig/state")"
run sigr "$L" resume "$T/sig"
[ "$RC" -eq 0 ] && grep -q '"steps": 400,' "$T/sig/summary.json" && ok "jepa-launch resume, as told, finishes the run" \
  || bad "resume after SIGTERM: rc $RC: $ERR"

# ---- SIGTERM/SIGINT to `jepa-launch sweep`: the running points stop
# (resumable, not failed), no point starts after it, one line says what was
# done, failed, stopped and not started, exit 75; status shows them so. A
# fake mpirun: lr 0.009 fails at once (status 3), lr 0.0075 exits 75 (its
# ranks stopped by a signal not ours), the others run until
# signalled (mpirun, signalled, exits 1), or finish when FAKE_FINISH is set
# (or when their lr is not FAKE_HOLD's).
cat >"$T/mpirun-sig" <<'SH'
#!/bin/bash
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} tr=$prev ;; esac; prev=$a; done
echo "$tr" >>"$d/trainers" # the trainer each attempt was given
lr=$(sed -n 's/^  lr: //p' "$d/spec.resolved.yaml")
case "$lr" in 0.009) exit 3 ;; 0.0075) exit 75 ;; esac
if [ -n "${FAKE_FINISH:-}" ] || { [ -n "${FAKE_HOLD:-}" ] && [ "$lr" != "$FAKE_HOLD" ]; }; then
  printf '{"step": 4, "loss": 0.5}\n' >"$d/metrics.jsonl"
  printf '{"objective": "ijepa", "final_loss": 0.5, "probe_acc": -1, "steps": 4, "planned_steps": 4, "stop_reason": "completed", "param_hash": "00000000000000ab"}\n' >"$d/summary.json"
  exit 0
fi
trap 'exit 1' TERM INT
echo "$PPID" >"$d/started" # the point's own jepa-launch
while [ -e "$d/started" ]; do sleep 0.05; done # ends with $T, should a signal never come
exit 1
SH
chmod +x "$T/mpirun-sig"
sigsweep() { # SIG DIR: a 5-point sweep, 2 at a time, SIG once points 1 and 2 run
  local sig=$1 dir=$2 pid i
  printf 'base: %s\ndir: %s\nparallel: 2\nset: {max_restarts: 0, data.train: %s, data.test: %s}\ngrid:\n  optim.lr: [0.009, 0.001, 0.002, 0.003, 0.004]\n' \
    "$SPEC" "$dir" "$T/d1" "$T/d1" >"$dir.yaml"
  set -m
  JEPA_MPIRUN="$T/mpirun-sig" "$L" sweep "$dir.yaml" >"$T/sw.out" 2>"$T/sw.err" & pid=$!
  set +m
  for i in $(seq 500); do [ -e "$dir/point-001/started" ] && [ -e "$dir/point-002/started" ] && break; sleep 0.02; done
  kill -"$sig" "$pid"; wait "$pid"; RC=$?; OUT=$(cat "$T/sw.out"); ERR=$(cat "$T/sw.err")
}
sigsweep TERM "$T/ss"
expect_error "sweep stopped by SIGTERM" 75 \
  "$T/ss.yaml: stopped by signal 15 (SIGTERM): 0 done, 1 failed, 2 stopped, 2 not started; continue it with jepa-launch sweep $T/ss.yaml"
printf '%s\n' "$OUT" | grep -qx 'point-000: failed status=3 (non-finite loss; not restarted), see .*/train.log' \
  && ok "SIGTERM: the point that failed is still failed, said as its state says it" \
  || bad "SIGTERM: point-000 not failed: $OUT"
[ "$(printf '%s\n' "$OUT" | grep -c '^point-00[12]: stopped by a signal (resumable')" = 2 ] \
  && ! printf '%s\n' "$OUT" | grep -q '^point-00[12]: failed' && ok "SIGTERM: both running points stopped, not failed" \
  || bad "SIGTERM: points 1, 2: $OUT"
[ ! -e "$T/ss/point-003/train.log" ] && [ ! -e "$T/ss/point-004/train.log" ] && ! printf '%s\n' "$OUT" | grep -q '^point-00[34]: started' \
  && ok "SIGTERM: no point started after it" || bad "SIGTERM: a later point started: $OUT"
run ssst "$L" status "$T/ss"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^point-000: failed status=3' \
  && [ "$(printf '%s\n' "$OUT" | grep -c '^point-00[12]: stopped signal=15')" = 2 ] \
  && [ "$(printf '%s\n' "$OUT" | grep -c '^point-00[34]: pending')" = 2 ] && [ "$(printf '%s\n' "$OUT" | tail -1)" = "0 of 5 points finished" ] \
  && ok "status: failed, stopped signal=15 (2), pending (2)" || bad "status after SIGTERM: rc $RC: $OUT $ERR"
run ssres "$L" results "$T/ss"
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c 'stopped signal=15$')" = 2 ] && ok "results: the two points stopped signal=15" \
  || bad "results after SIGTERM: rc $RC: $OUT $ERR"
FAKE_FINISH=1 JEPA_MPIRUN="$T/mpirun-sig" run sscont "$L" sweep "$T/ss.yaml"
[ "$RC" -eq 1 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^point-00[1-4]: done$')" = 4 ] && grep -q 'resume=auto' "$T/ss/point-001/launch.log" \
  && ok "the sweep again continues the stopped points (resume=auto) and starts the rest" || bad "sweep continued: rc $RC: $OUT $ERR"
sigsweep INT "$T/si"
expect_error "sweep stopped by SIGINT" 75 "stopped by signal 2 (SIGINT): 0 done, 1 failed, 2 stopped, 2 not started"
# a point stopped by a signal sent to it alone (its own jepa-launch): stopped, not failed; the
# sweep finishes the others, says how to continue it and exits 75
printf 'base: %s\ndir: %s\nparallel: 2\nset: {max_restarts: 0, data.train: %s, data.test: %s}\ngrid:\n  optim.lr: [0.001, 0.002]\n' \
  "$SPEC" "$T/sp" "$T/d1" "$T/d1" >"$T/sp.yaml"
FAKE_HOLD=0.001 JEPA_MPIRUN="$T/mpirun-sig" "$L" sweep "$T/sp.yaml" >"$T/sp.out" 2>"$T/sp.err" & pid=$!
for i in $(seq 500); do [ -s "$T/sp/point-000/started" ] && break; sleep 0.02; done
kill -TERM "$(cat "$T/sp/point-000/started")"; wait "$pid"; RC=$?; OUT=$(cat "$T/sp.out"); ERR=$(cat "$T/sp.err")
expect_error "a point stopped by a signal of its own" 75 "$T/sp.yaml: 1 of 2 points stopped by a signal; continue them with jepa-launch sweep $T/sp.yaml"
printf '%s\n' "$OUT" | grep -q '^point-000: stopped by a signal (resumable' && printf '%s\n' "$OUT" | grep -q '^point-001: done$' \
  && ok "that point stopped (not failed), the other done" || bad "point stopped alone: $OUT"
# the continue command is pasteable: a sweep file and a --set with a space and a quote
# come back shell-quoted, and running the pasted line continues the sweep
mkdir -p "$T/q d" && cp "$T/sp.yaml" "$T/q d/s p.yaml" && sed -i "s|^dir: .*|dir: $T/q d/out|" "$T/q d/s p.yaml"
FAKE_HOLD=0.001 JEPA_MPIRUN="$T/mpirun-sig" "$L" sweep "$T/q d/s p.yaml" --set "slurm.account=it's a b" \
  >"$T/sq.out" 2>"$T/sq.err" & pid=$!
for i in $(seq 500); do [ -s "$T/q d/out/point-000/started" ] && break; sleep 0.02; done
kill -TERM "$(cat "$T/q d/out/point-000/started")"; wait "$pid"; RC=$?; ERR=$(cat "$T/sq.err")
again=${ERR##*continue them with }
[ "$RC" -eq 75 ] && [ "$again" = "jepa-launch sweep '$T/q d/s p.yaml' --set 'slurm.account=it'\\''s a b'" ] \
  && ok "the continue command is shell-quoted" || bad "continue command: rc $RC: $ERR"
FAKE_FINISH=1 JEPA_MPIRUN="$T/mpirun-sig" run sqcont bash -c "${again/jepa-launch/\"\$0\"}" "$L"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^point-000: done$' && ok "the pasted continue command continues the sweep" \
  || bad "pasted continue command: rc $RC: $OUT $ERR"
# --trainer comes back in it too (the pasted line ran the default trainer),
# and a sweep file given after -- that begins with '-' as ./-NAME
mkdir -p "$T/tr x" && printf '#!/bin/sh\nexit 0\n' >"$T/tr x/alt" && chmod +x "$T/tr x/alt"
sed "s|^dir: .*|dir: $T/tq|" "$T/sp.yaml" >"$T/-t s.yaml"
FAKE_HOLD=0.001 JEPA_MPIRUN="$T/mpirun-sig" "$L" sweep --trainer "$T/tr x/alt" -- "-t s.yaml" >"$T/tq.out" 2>"$T/tq.err" & pid=$!
for i in $(seq 500); do [ -s "$T/tq/point-000/started" ] && break; sleep 0.02; done
kill -TERM "$(cat "$T/tq/point-000/started")"; wait "$pid"; RC=$?; ERR=$(cat "$T/tq.err")
again=${ERR##*continue them with }
[ "$RC" -eq 75 ] && [ "$again" = "jepa-launch sweep './-t s.yaml' --trainer '$T/tr x/alt'" ] \
  && ok "the continue command keeps --trainer and ./ before a file that begins with '-'" || bad "continue with --trainer: rc $RC: $ERR"
rm -f "$T/tq/point-000/trainers" # what the pasted line gives, alone
FAKE_FINISH=1 JEPA_MPIRUN="$T/mpirun-sig" run tqcont bash -c "${again/jepa-launch/\"\$0\"}" "$L"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^point-000: done$' && [ "$(tail -1 "$T/tq/point-000/trainers")" = "$T/tr x/alt" ] \
  && ok "the pasted continue command runs the --trainer given" \
  || bad "pasted continue with --trainer: rc $RC, trainer $(tail -1 "$T/tq/point-000/trainers" 2>&1): $OUT $ERR"

# a job that keeps exiting 75 with no signal to the launcher is restarted;
# when its restarts run out the point failed, and state, status, results,
# the sweep's line for it and its summary all say so (the sweep called it
# "stopped by a signal (resumable)" while its state said failed status=75)
printf 'base: %s\ndir: %s\nparallel: 2\nset: {max_restarts: 1, data.train: %s, data.test: %s}\ngrid:\n  optim.lr: [0.0075, 0.001]\n' \
  "$SPEC" "$T/s75" "$T/d1" "$T/d1" >"$T/s75.yaml"
FAKE_FINISH=1 JEPA_MPIRUN="$T/mpirun-sig" run s75 "$L" sweep "$T/s75.yaml"
# stderr: the restart's line, then the summary
[ "$RC" -eq 1 ] && [ "$(printf '%s\n' "$ERR" | tail -1)" = "jepa-launch: $T/s75.yaml: 1 of 2 points failed" ] \
  && ok "a point whose job exited 75 until its restarts ran out: 1 of 2 points failed, exit 1" || bad "sweep of a job's 75: rc $RC: $ERR"
# (the sweep's line said "failed (status 1", launch_run_dir's exit for it)
printf '%s\n' "$OUT" | grep -qx "point-000: failed status=75 restarts=1, see $T/s75/point-000/train.log" \
  && ! printf '%s\n' "$OUT" | grep -q 'stopped by a signal' && [ "$(cat "$T/s75/point-000/state")" = "failed status=75 restarts=1" ] \
  && ok "job's 75, restarts out: the sweep's line says failed status=75 restarts=1, as the state" \
  || bad "job's 75 in a sweep: $OUT $(cat "$T/s75/point-000/state")"
run s75st "$L" status "$T/s75"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^point-000: failed status=75 restarts=1' && [ "$(printf '%s\n' "$OUT" | tail -1)" = "1 of 2 points finished" ] \
  && ok "status: failed status=75 restarts=1" || bad "status after a job's 75: rc $RC: $OUT $ERR"
run s75res "$L" results "$T/s75"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q 'failed status=75 restarts=1$' && ok "results: failed status=75 restarts=1" \
  || bad "results after a job's 75: rc $RC: $OUT $ERR"
JEPA_MPIRUN="$T/mpirun-sig" run r75 "$L" run "$SPEC" --set run.dir="$T/r75" --set max_restarts=0 --set optim.lr=0.0075 \
  --set data.train="$T/d1" --set data.test="$T/d1"
expect_error "run: a job's 75 with no restart left is a failure (exit 1, not 75)" 1 "$T/r75: job failed with status 75"

# ---- sweep --set: every point gets it, after the file's set: and before its
# own values; a bad key or value, run.dir and a varied key are refused in
# one line before anything is written
printf 'base: %s\ndir: %s\nparallel: 2\nset: {max_restarts: 0, train.steps: 4, data.train: %s, data.test: %s}\ngrid:\n  optim.lr: [0.001, 0.002]\n' \
  "$SPEC" "$T/st" "$T/d1" "$T/d1" >"$T/st.yaml"
run stk "$L" sweep "$T/st.yaml" --set nokey=1
expect_error "sweep --set of an unknown key" 2 "sweep --set nokey=1: unknown key"
run stv "$L" sweep "$T/st.yaml" --set train.steps=abc
expect_error "sweep --set of a bad value" 2 "sweep --set train.steps=abc" "abc"
run sta "$L" sweep "$T/st.yaml" --set=optim.lr=0.5
expect_error "sweep --set of a key the grid varies" 2 "sweep --set optim.lr=0.5: optim.lr is varied by $T/st.yaml:6:3 (grid)"
run std "$L" sweep "$T/st.yaml" --set run.dir=elsewhere
expect_error "sweep --set run.dir" 2 "sweep --set run.dir=elsewhere: each point runs in DIR/point-NNN"
[ -e "$T/st" ] && bad "a refused sweep --set left $T/st" || ok "refused --set: nothing written"
# --dry-run shows the --set options with the points (it showed only the
# points' values), and sweep.json records them (sweep.yaml is the file as given)
run stdry "$L" sweep "$T/st.yaml" --dry-run --set train.steps=7 --set model.width=48
[ "$RC" -eq 0 ] && [ "$OUT" = "$(printf 'every point: --set train.steps=7 --set model.width=48\npoint-000 optim.lr=0.001\npoint-001 optim.lr=0.002')" ] \
  && ok "sweep --dry-run: the --set options, then the points" || bad "sweep --dry-run with --set: rc $RC: [$OUT] $ERR"
FAKE_FINISH=1 JEPA_MPIRUN="$T/mpirun-sig" run stok "$L" sweep "$T/st.yaml" --set train.steps=7 --set model.width=48
grep -qx '  "set_options": \["train.steps=7", "model.width=48"\],' "$T/st/sweep.json" && cmp -s "$T/st.yaml" "$T/st/sweep.yaml" \
  && ok "sweep.json records the --set options; sweep.yaml is the file as given" \
  || bad "sweep.json: $(cat "$T/st/sweep.json" 2>&1)"
[ "$RC" -eq 0 ] && for p in 0 1; do
  grep -q '^  steps: 7$' "$T/st/point-00$p/spec.resolved.yaml" && grep -q '^  width: 48$' "$T/st/point-00$p/spec.resolved.yaml" \
    && grep -q "^  lr: 0.00$((p + 1))$" "$T/st/point-00$p/spec.resolved.yaml" || false
done && ok "sweep --set: both points' resolved specs hold train.steps 7 (over the file's 4) and model.width 48" \
  || bad "sweep --set: rc $RC: $OUT $ERR"
run stagain "$L" sweep "$T/st.yaml" --set train.steps=7 --dry-run --set model.width=32
expect_error "the sweep again with another --set" 2 "point 0" "model.width=48, this sweep gives it 32"
# a restart after mpirun was killed (kill -9, the OOM killer) waits for the
# last attempt's rank 0, which lives on for a moment and holds RUN/lock: it
# was restarted at once, refused as a second job (exit 4), and the run
# ended "failed status=4 (inputs refused at setup; not restarted)" (2 of 3
# tries of a new user's kill -9). A fake mpirun makes it certain: attempt 0
# runs the trainer alone in the background, hung at step 3 (a test hook)
# with the lock, dies like a killed mpirun (137), and the orphan is killed
# 3 s later; a restart (resume=auto) runs the trainer as mpirun would.
cat >fakebin/mpirun-orphan <<'EOF2'
#!/bin/bash
while [ $# -gt 0 ] && [ "${1##*/}" != jepa-train ]; do shift; done # mpirun's own options
case " $* " in *resume=auto*) exec "$@" ;; esac
JEPA_DEBUG_HANG_STEP=3 "$@" >/dev/null 2>&1 &
job=$!
for _ in $(seq 600); do [ -s "$ORPHAN_DIR/metrics.jsonl" ] && break; sleep 0.1; done
(sleep "${ORPHAN_S:-3}"; kill -9 "$job") >/dev/null 2>&1 &
exit 137
EOF2
chmod +x fakebin/mpirun-orphan
ORPHAN_DIR="$T/orph" JEPA_MPIRUN="$T/fakebin/mpirun-orphan" run orph "$L" run "$SPEC" --np 1 "${SMALL[@]}" \
  --set run.dir="$T/orph" --set max_restarts=1
[ "$RC" -eq 0 ] && [ "$(cat "$T/orph/state")" = done ] && grep -q "waiting for pid .* which still holds" "$T/orph/launch.log" \
  && ok "a restart waits for the killed attempt's rank 0 to let go of the lock, then finishes" \
  || bad "restart after an orphaned rank 0: rc $RC, state $(cat "$T/orph/state"): $ERR $(cat "$T/orph/launch.log")"
# one that still holds it when the wait ends (shortened to 2 s by a test
# hook): a failed run, exit 1 (it was 2, "a bad command line"), one line
ORPHAN_S=20 JEPA_DEBUG_RESTART_WAIT_S=2 ORPHAN_DIR="$T/orph2" JEPA_MPIRUN="$T/fakebin/mpirun-orphan" run orph2 "$L" run \
  "$SPEC" --np 1 "${SMALL[@]}" --set run.dir="$T/orph2" --set max_restarts=1
[ "$RC" -eq 1 ] && case "$(cat "$T/orph2/state")" in "failed: pid "*" of attempt 0 still holds the lock; not restarted") true ;; *) false ;; esac &&
  printf '%s\n' "$ERR" | grep -q "still holds $T/orph2/lock 2 s after its mpirun ended: not restarted" \
  && ok "a restart whose lock stays held: failed, exit 1, one line" \
  || bad "lock still held: rc $RC, state $(cat "$T/orph2/state"): $ERR"
kill -9 "$(sed -n 's/^failed: pid \([0-9]*\) .*/\1/p' "$T/orph2/state")" 2>/dev/null # the orphan, not left for 20 s
# status of a run whose launcher is gone but whose job still trains (it
# holds RUN/lock): no "resume from step" advice, which resume would refuse
JEPA_DEBUG_HANG_STEP=3 "$TR" "$SPEC" "${SMALL[@]}" --set run.dir="$T/busy" >/dev/null 2>&1 &
job=$!
for _ in $(seq 600); do [ -s "$T/busy/metrics.jsonl" ] && break; sleep 0.1; done
sleep 0 & gone=$!
wait "$gone"
printf 'running pid=%d mpirun=%d attempt=0\n' "$gone" "$gone" >"$T/busy/state"
run bst "$L" status "$T/busy"
case "$RC:$OUT" in "0:busy: stale (launcher pid $gone is gone), step "*", its job still runs (it holds the run's lock)") ok "status of a stale run whose job still trains: no resume advice" ;;
  *) bad "status of a stale run with a live job: rc $RC: $OUT $ERR" ;; esac
kill -9 "$job"; wait "$job" 2>/dev/null
run bst2 "$L" status "$T/busy"
case "$OUT" in *", resume from step "*|*", resume starts over"*) ok "the job gone: where a resume starts again" ;;
  *) bad "status after the job died: $OUT $ERR" ;; esac
# a run.dir that is a symbolic link to nowhere (or lies under one): named
# as the link it is, before anything is made (it said "exists and is not a
# directory", and a --dry-run passed)
ln -s "$T/nowhere" "$T/rdang"
run rdang "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/rdang" --dry-run
expect_error "run.dir a dangling link, --dry-run" 2 "$T/rdang is a symbolic link to $T/nowhere, which does not exist"
run rdang2 "$L" run "$SPEC" "${SMALL[@]}" --set run.dir="$T/rdang/sub"
expect_error "run.dir under a dangling link" 2 "$T/rdang is a symbolic link to $T/nowhere, which does not exist"
[ ! -e "$T/nowhere" ] && ok "nothing made through the dangling run.dir" || bad "made $T/nowhere"
# more --set than a spec takes: one line naming the command or the spec
# file (it said "too many --set", "more than 256 --set overrides")
many=(); for i in $(seq 256); do many+=(--set train.steps=$i); done
run many "$L" run "$SPEC" --dry-run "${many[@]}" --set=train.steps=257
expect_error "run with 257 --set" 2 "run --set train.steps=257: more than 256 --set options"
run many "$L" run "$SPEC" --dry-run "${many[@]}" --np 2
expect_error "run with 256 --set and --np (257 overrides)" 2 "$SPEC: more than 256 --set overrides (257 given)"
finish
