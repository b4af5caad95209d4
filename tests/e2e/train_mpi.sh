#!/usr/bin/env bash
# jepa-train as an MPI program: 2 ranks over shared memory and over TCP, the
# blocking and bucketed all-reduce end bitwise equal, and a rank that fails
# (a data path bad on rank 1 only) ends the whole job promptly, naming itself.
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
pack_fmnist
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=12 --set train.log_every=4
       --set train.batch_per_rank=32 --set parallel.threads_per_rank=1 --set eval.probe=false
       --set parallel.check_every=4 "${DATA[@]}")
# many small buckets (10 KB of a ~150 KB gradient), so buckets really leave
# early from the backward hooks before blocking is compared with them
SMALL+=(--set parallel.bucket_mb=0.01)
SPEC="$S/configs/fmnist-tiny.yaml"
json() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }

run np2 timeout 300 "$MPI" -np 2 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a"
[ "$RC" -eq 0 ] && ok "2 ranks, shared memory" || bad "np 2 failed (rc $RC): $ERR"
[ "$(json "$T/a/summary.json" ranks)" = 2 ] && ok "summary says 2 ranks" || bad "summary ranks"
[ "$(json "$T/a/summary.json" images_seen)" = 768 ] && ok "images_seen = 12 x 2 x 32" || bad "images_seen $(json "$T/a/summary.json" images_seen)"
[ "$(printf '%s\n' "$OUT" | grep -c '^steps 12$')" = 1 ] && ok "rank 0 alone prints results" || bad "stdout: $OUT"

case "$ERR" in *$'\r'step*) bad "a progress display on a pipe: $ERR" ;; *) ok "no progress display on a pipe" ;; esac

# JEPA_PROGRESS=1 (what the scripts and jepa-launch set when their stderr is
# a terminal): rank 0 alone draws it, under mpirun too
run tcp env JEPA_PROGRESS=1 timeout 300 "$MPI" -np 2 --mca btl self,tcp "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b"
[ "$RC" -eq 0 ] && ok "2 ranks over TCP" || bad "np 2 TCP failed (rc $RC): $ERR"
[ "$(printf '%s' "$ERR" | tr '\r' '\n' | grep -c '^step 12/12  loss ')" = 1 ] \
  && ok "JEPA_PROGRESS=1: rank 0's progress display under mpirun" || bad "progress: $(printf '%s' "$ERR" | tr '\r' '\n')"
HA=$(json "$T/a/summary.json" param_hash); HB=$(json "$T/b/summary.json" param_hash)
[ -n "$HA" ] && [ "$HA" = "$HB" ] && ok "shared memory and TCP end bitwise equal ($HA)" || bad "$HA vs $HB"

run blk timeout 300 "$MPI" -np 2 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/c" \
  --set parallel.blocking_allreduce=true
HC=$(json "$T/c/summary.json" param_hash)
[ "$RC" -eq 0 ] && [ "$HC" = "$HA" ] && ok "blocking and bucketed all-reduce end bitwise equal" || bad "blocking $HC vs $HA (rc $RC)"

# ijepa.crop keys each view by the image's place in the global batch: 2 ranks
# x 32 see the views of 1 rank x 64, so step 1 (before any update) logs the
# same loss; a view keyed by the rank's own index would differ
run crop2 timeout 300 "$MPI" -np 2 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/e" \
  --set ijepa.crop=true --set train.steps=1
run crop1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/f" --set ijepa.crop=true \
  --set train.steps=1 --set train.batch_per_rank=64
first() { head -n 1 "$1/metrics.jsonl" | sed 's/.*"loss": \([0-9.e-]*\),.*/\1/'; }
L2=$(first "$T/e"); L1=$(first "$T/f"); L0=$(first "$T/a")
[ -n "$L2" ] && [ "$L2" = "$L1" ] && ok "ijepa.crop: 2 x 32 and 1 x 64 see the same views (step-1 loss $L2)" \
  || bad "ijepa.crop step-1 loss: 2 ranks '$L2', 1 rank '$L1'"
[ -n "$L2" ] && [ -n "$L0" ] && [ "$L2" != "$L0" ] && ok "ijepa.crop: other images than the stored ones ($L2 vs $L0)" \
  || bad "crop step-1 loss '$L2' vs the uncropped '$L0'"

# jepa-eval at 2 ranks: rank 1 scores kNN and the few-label probes while
# rank 0 fits the full probe; every figure equals the 1-process one (the
# *_s lines are seconds)
FAST=(--set eval.max_iters=20 --set eval.knn_k=5 --set parallel.threads_per_rank=1)
figs() { printf '%s\n' "$OUT" | grep -v '_s '; }
run ev1 "$B/jepa-eval" "$T/a" "${FAST[@]}"
E1=$(figs)
run ev2 timeout 300 "$MPI" -np 2 "$B/jepa-eval" "$T/a" "${FAST[@]}"
E2=$(figs)
case "$E1" in *knn_acc*probe1pct_acc*probe10pct_acc*probe_acc*) ok "jepa-eval prints every figure" ;;
  *) bad "jepa-eval: $E1 $ERR" ;; esac
[ "$RC" -eq 0 ] && [ "$E1" = "$E2" ] && ok "jepa-eval: 2 ranks print the figures of 1" ||
  bad "jepa-eval 2 ranks (rc $RC): '$E2' against '$E1': $ERR"
export LC_ALL=C
# labels 40% random, so the figures differ from one another and from 1
mkdir -p "$T/px" && mkpix 600 "$T/px.raw" "$T/px.lab" 0.4 && mkpix 200 "$T/pxt.raw" "$T/pxt.lab" 0.4
"$B/jepa-shard" pack --raw "$T/px.raw" --height 28 --width 28 --raw-labels "$T/px.lab" --out "$T/px/train" --quiet &&
  "$B/jepa-shard" pack --raw "$T/pxt.raw" --height 28 --width 28 --raw-labels "$T/pxt.lab" --out "$T/px/test" \
    --split test --quiet || bad "packing the pixel set failed"
PXD=(--set data.train="$T/px/train" --set data.test="$T/px/test")
run px1 "$B/jepa-eval" --pixels "$SPEC" "${PXD[@]}" "${FAST[@]}"
P1=$(figs)
run px2 timeout 300 "$MPI" -np 2 "$B/jepa-eval" --pixels "$SPEC" "${PXD[@]}" "${FAST[@]}"
P2=$(figs)
[ "$RC" -eq 0 ] && [ -n "$P1" ] && [ "$P1" = "$P2" ] && ok "jepa-eval --pixels: 2 ranks print the figures of 1" ||
  bad "--pixels 2 ranks (rc $RC): '$P2' against '$P1': $ERR"
[ "$(printf '%s\n' "$P1" | grep '_acc ' | sort -u -k2 | wc -l)" -ge 3 ] && ! printf '%s\n' "$P1" | grep -q '_acc 1.0000' \
  && ok "--pixels on noisy labels: the accuracies differ and none is 1 ($(printf '%s\n' "$P1" | grep '_acc ' | tr '\n' ' '))" \
  || bad "--pixels figures do not discriminate: $P1"
printf '%s\n' "$ERR" | grep -q '^eval: knn .* on rank 1)$' && ok "the log says rank 1 scored kNN" || bad "no 'on rank 1' kNN line: $ERR"
# a failure on rank 1 (kNN's k above the 600 training rows) is told once, by rank 0
run pxk timeout 300 "$MPI" -np 2 "$B/jepa-eval" --pixels "$SPEC" "${PXD[@]}" "${FAST[@]}" --set eval.knn_k=1000
case "$RC:$ERR" in 1:*"knn: k=1000"*) ok "rank 1's kNN failure: exit 1, rank 0 names it" ;;
  *) bad "knn_k 1000 at 2 ranks: rc $RC: $ERR" ;; esac
[ "$(printf '%s\n' "$ERR" | grep -c 'knn: k=1000')" = 1 ] && ok "said once" || bad "said $(printf '%s\n' "$ERR" | grep -c 'knn: k=1000') times: $ERR"

# jepa-eval's errors at 2 ranks: one line each, not one per rank
once() { [ "$(printf '%s\n' "$ERR" | grep -c "$1")" = 1 ]; }
run evmiss timeout 120 "$MPI" -np 2 "$B/jepa-eval" "$T/no-such-run"
[ "$RC" -ne 0 ] && once "^jepa-eval: .*$T/no-such-run" && ok "jepa-eval -np 2, a missing run: said once" \
  || bad "missing run at 2 ranks: rc $RC: $ERR"
run evdata timeout 120 "$MPI" -np 2 "$B/jepa-eval" --pixels "$SPEC" --set data.train="$T/no-such-data"
[ "$RC" -ne 0 ] && once "^jepa-eval: .*$T/no-such-data" && ok "jepa-eval -np 2, a missing data set: said once" \
  || bad "missing data at 2 ranks: rc $RC: $ERR"
# a data path only rank 1 cannot read (another node's disk, say): every rank
# stops, rank 1 names it, nobody waits in a collective (timeout: a hang)
run evrank1 timeout 120 "$MPI" -np 1 "$B/jepa-eval" --pixels "$SPEC" "${PXD[@]}" "${FAST[@]}" : \
  -np 1 "$B/jepa-eval" --pixels "$SPEC" "${PXD[@]}" "${FAST[@]}" --set data.train="$T/no-such-data"
[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && once "^jepa-eval: rank 1: .*$T/no-such-data" \
  && ok "jepa-eval, rank 1's data missing: one line naming rank 1, rc $RC" || bad "rank 1's data: rc $RC: $ERR"
# the same for a spec check only rank 1 fails, in jepa-train (cli_load_spec)
run trrank1 timeout 120 "$MPI" -np 1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/g" : \
  -np 1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/g" --set optim.lrr=1
[ "$RC" -eq 2 ] && once "^jepa-train: rank 1: --set optim.lrr=1: unknown key" && [ ! -e "$T/g" ] \
  && ok "jepa-train, a spec only rank 1 rejects: exit 2, one line naming rank 1, nothing created" \
  || bad "rank 1's spec: rc $RC: $ERR"
mkdir -p "$T/trunc" && cp "$T/a/spec.resolved.yaml" "$T/trunc/" && head -c 5000 "$T/a/checkpoint.bin" >"$T/trunc/checkpoint.bin"
run evtrunc timeout 120 "$MPI" -np 2 "$B/jepa-eval" "$T/trunc"
[ "$RC" -ne 0 ] && once "^jepa-eval: .*$T/trunc/checkpoint.bin" && ok "jepa-eval -np 2, a truncated checkpoint: said once" \
  || bad "truncated checkpoint at 2 ranks: rc $RC: $ERR"

# --export under mpirun, stopped while rank 0 writes it. mpirun turns a
# SIGINT or SIGTERM into SIGTERM to every rank (about a second later, so
# the test sends that SIGTERM itself, at a known moment) and SIGKILLs what
# is left about a second after: rank 0 removes its staging directory and
# the directories it made in time, and says so once; no rank dies first
# (which would get rank 0 killed at once)
set -m
"$MPI" -np 2 "$B/jepa-eval" --pixels "$SPEC" "${DATA[@]}" --export "$T/exm/sub" >/dev/null 2>"$T/exm.err" & mp=$!
set +m
for i in $(seq 1500); do compgen -G "$T/exm/sub/.export-*/*" >/dev/null && break; sleep 0.02; done
compgen -G "$T/exm/sub/.export-*/*" >/dev/null || bad "mpirun --export: no staging file appeared"
kill -TERM $(pgrep -P "$mp"); wait "$mp"; RC=$?; ERR=$(cat "$T/exm.err")
[ "$RC" -ne 0 ] && once "^jepa-eval: --export $T/exm/sub: interrupted by SIGTERM: nothing written$" \
  && ok "mpirun --export stopped by SIGTERM: rank 0 says so once (rc $RC)" || bad "mpirun --export: rc $RC: $ERR"
[ -e "$T/exm" ] && bad "mpirun --export left $(find "$T/exm" | tr '\n' ' ')" || ok "mpirun --export left no file, no directory"

start=$(date +%s)
run fail timeout 120 "$MPI" -np 1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/d" : \
  -np 1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/d" --set data.train="$T/no-such-shards"
took=$(( $(date +%s) - start ))
if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then ok "rank 1's bad data path fails the job (rc $RC, ${took}s)"; else bad "rc $RC after ${took}s"; fi
case "$ERR" in *"rank 1"*"$T/no-such-shards"*) ok "the error names rank 1 and the path" ;; *) bad "stderr: $ERR" ;; esac
[ -e "$T/d" ] && bad "a failed job left $T/d" || ok "no run directory after the failure"
finish
