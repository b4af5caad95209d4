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

run tcp timeout 300 "$MPI" -np 2 --mca btl self,tcp "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/b"
[ "$RC" -eq 0 ] && ok "2 ranks over TCP" || bad "np 2 TCP failed (rc $RC): $ERR"
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
[ "$L2" != "$L0" ] && ok "ijepa.crop: other images than the stored ones ($L2 vs $L0)" || bad "crop loss equals the uncropped $L0"

start=$(date +%s)
run fail timeout 120 "$MPI" -np 1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/d" : \
  -np 1 "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/d" --set data.train="$T/no-such-shards"
took=$(( $(date +%s) - start ))
if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then ok "rank 1's bad data path fails the job (rc $RC, ${took}s)"; else bad "rc $RC after ${took}s"; fi
case "$ERR" in *"rank 1"*"$T/no-such-shards"*) ok "the error names rank 1 and the path" ;; *) bad "stderr: $ERR" ;; esac
[ -e "$T/d" ] && bad "a failed job left $T/d" || ok "no run directory after the failure"
finish
