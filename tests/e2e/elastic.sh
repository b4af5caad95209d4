#!/usr/bin/env bash
# Elastic determinism and resume on another world size (issue 17), tiny model:
#   - one global batch of 24 at W = 1, 2, 3, 4 ranks (24, 2x12, 3x8, 4x6):
#     the records of each of the first 50 steps, in their global-batch slots
#     (JEPA_DEBUG_DATA_TRACE: a hash per record), are identical; the losses
#     agree within LOSS_TOL (relative) and the final parameters within
#     PARAM_TOL (relative L2): the runs differ only in summation order (the
#     all-reduce's sum of W partial gradients, the mean of W rank losses);
#   - a 2-rank run killed with kill -9 after its step-20 checkpoint, resumed
#     on 1 and on 4 ranks to step 40: the same records as the straight 2-rank
#     run at every step, its losses and final parameters, EMA target and Adam
#     moments within the same tolerances; 5 ranks (24 does not divide by 5)
#     refused in one line naming both numbers, the run directory untouched;
#     `jepa-launch resume RUN_DIR --np 4` resumes it the same way.
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
TR="$B/jepa-train"
SPEC="$S/configs/fmnist-tiny.yaml"
# Tolerances of a summation-order change, measured on this test (2..4 ranks
# against 1 after 50 steps; 1 and 4 ranks after a 2-rank start against the
# 2-rank run): losses at most 1.2e-8 relative; final parameters rel_l2 <= 4e-8
# (max |diff| 1.2e-7, one float32 ulp at 1), EMA target <= 4e-9, Adam m <=
# 4e-7, Adam v <= 8.5e-7 (squared gradients: twice the gradients' relative
# error). The bounds leave ~10-100x room.
LOSS_TOL=1e-6
PARAM_TOL=1e-5
pack_fmnist
G=24
SMALL=(--set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set train.log_every=1
       --set parallel.threads_per_rank=1 --set eval.probe=false "${DATA[@]}")
# records DIR: "STEP SLOT HASH" of every rank's trace, in global order
records() { cat "$1"/rank-*.trace | grep -v loss | sort -u -k1,1n -k2,2n; }
# losses DIR: "STEP LOSS" per step from rank 0's trace
losses() { grep ' loss ' "$1/rank-0.trace" | awk '{print $1, $3}' | sort -u -k1,1n; }
# max_rel A B: the largest |a - b| / |a| over the steps both list
max_rel() { join <(losses "$1") <(losses "$2") | awk '{d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > m) m = d; n++}
  END {if (n == 0) print "none"; else printf "%.3g %d\n", m, n}'; }
# params_close DESC A.ckpt B.ckpt: every buffer within PARAM_TOL
params_close() {
  local out
  out=$("$B/ckpt-diff" "$2" "$3" 2>&1) || { bad "$1: ckpt-diff: $out"; return; }
  if echo "$out" | awk -v t=$PARAM_TOL '$5 + 0 > t + 0 || $5 != $5 + 0 {b = 1} END {exit b}'; then
    ok "$1: within $PARAM_TOL ($(echo "$out" | awk '{printf "%s %s; ", $1, $5}'))"
  else bad "$1: $out"; fi
}
within() { awk -v x="$1" -v t="$2" 'BEGIN {exit !(x != "none" && x + 0 <= t + 0)}'; }
# std_rel A B: the largest relative difference of the logged target_std
# (5 significant digits: a global-batch figure agrees to ~1e-5)
stds() { sed -n 's/.*"step": \([0-9]*\),.*"target_std": \([0-9.e+-]*\).*/\1 \2/p' "$1/metrics.jsonl" | sort -u -k1,1n; }
std_rel() { join <(stds "$1") <(stds "$2") | awk '{d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > m) m = d; n++}
  END {if (n == 0) print "none"; else printf "%.3g %d\n", m, n}'; }

# ---- the same global batches at 1, 2, 3, 4 ranks
for W in 1 2 3 4; do
  mkdir -p "$T/tr$W"
  run w$W timeout 300 "$MPI" -np $W -x JEPA_DEBUG_DATA_TRACE="$T/tr$W" "$TR" "$SPEC" "${SMALL[@]}" \
    --set train.steps=50 --set train.batch_per_rank=$((G / W)) --set run.dir="$T/w$W"
  [ "$RC" -eq 0 ] && ok "$W rank(s) x $((G / W)): 50 steps" || bad "$W ranks failed (rc $RC): $ERR"
done
NREC=$(records "$T/tr1" | grep -c '')
[ "$NREC" -eq $((50 * G)) ] && ok "1 rank: 50 steps x $G records traced" || bad "1 rank traced $NREC records"
for W in 2 3 4; do
  if cmp -s <(records "$T/tr1") <(records "$T/tr$W"); then ok "$W ranks: the same records in the same slots at every step as 1 rank"
  else bad "$W ranks: records differ from 1 rank: $(diff <(records "$T/tr1") <(records "$T/tr$W") | head -n 3 | tr '\n' ' ')"; fi
  read -r m n <<<"$(max_rel "$T/tr1" "$T/tr$W")"
  within "$m" $LOSS_TOL && [ "$n" -eq 50 ] && ok "$W ranks: losses of 50 steps within $LOSS_TOL of 1 rank (max relative $m)" \
    || bad "$W ranks: loss max relative difference $m over $n steps (tolerance $LOSS_TOL)"
  params_close "$W ranks: final state against 1 rank" "$T/w1/checkpoint.bin" "$T/w$W/checkpoint.bin"
  read -r m n <<<"$(std_rel "$T/w1" "$T/w$W")"
  within "$m" 5e-5 && [ "$n" -eq 50 ] && ok "$W ranks: target_std of 50 steps is the global batch's (max relative $m)" \
    || bad "$W ranks: target_std max relative difference $m over $n steps (the ranks' mean, not the global batch's?)"
done
grep -q "\"images_seen\": $((50 * G))," "$T/w3/summary.json" \
  && ok "3 ranks: images_seen 50 x $G" || bad "3 ranks: summary $(cat "$T/w3/summary.json")"

# ---- 2 ranks killed at step 20, resumed on 1 and on 4 ranks to step 40
RUN40=(--set train.steps=40 --set checkpoint.every_steps=20)
mkdir -p "$T/trs"
run s2 timeout 300 "$MPI" -np 2 -x JEPA_DEBUG_DATA_TRACE="$T/trs" "$TR" "$SPEC" "${SMALL[@]}" "${RUN40[@]}" \
  --set train.batch_per_rank=12 --set run.dir="$T/s2"
[ "$RC" -eq 0 ] && ok "2 ranks: straight run of 40 steps" || bad "2-rank straight run failed (rc $RC): $ERR"
mkdir -p "$T/trk"
"$MPI" -np 2 -x JEPA_DEBUG_HANG_STEP=20 -x JEPA_DEBUG_DATA_TRACE="$T/trk" "$TR" "$SPEC" "${SMALL[@]}" "${RUN40[@]}" \
  --set train.batch_per_rank=12 --set run.dir="$T/k2" >"$T/k2.out" 2>"$T/k2.err" &
MP=$!
victim=""
for i in $(seq 1200); do # rank 1 hangs before step 21, once step 20's checkpoint is durable
  if [ "$(cat "$T/k2/latest" 2>/dev/null)" = "checkpoints/step-00000020.ckpt" ]; then
    for p in $(pgrep -P "$MP"); do
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
    done
    break
  fi
  kill -0 "$MP" 2>/dev/null || break
  sleep 0.05
done
[ -n "$victim" ] && kill -9 "$victim"
wait "$MP"; krc=$?
[ -n "$victim" ] && [ "$krc" -ne 0 ] && [ ! -e "$T/k2/summary.json" ] \
  && ok "kill -9 of rank 1 (pid $victim) after the step-20 checkpoint ends the job (rc $krc)" \
  || bad "kill: victim '$victim', rc $krc: $(tail -n 2 "$T/k2.err")"
BEFORE=$(cd "$T/k2" && sha256sum latest checkpoints/*)
run k5 timeout 300 "$MPI" -np 5 "$TR" "$SPEC" "${SMALL[@]}" "${RUN40[@]}" --set train.batch_per_rank=12 \
  --set run.dir="$T/k2" --set resume=auto
case "$RC:$ERR" in 0:*) bad "5 ranks: resume accepted" ;;
  *"step-00000020.ckpt: global batch 24 (written by 2 ranks) does not divide by 5 ranks"*) ok "5 ranks refused in one line naming 24 and 5" ;;
  *) bad "5 ranks: rc $RC: $ERR" ;; esac
[ "$(cd "$T/k2" && sha256sum latest checkpoints/*)" = "$BEFORE" ] && [ ! -e "$T/k2/summary.json" ] \
  && ok "the refused resume left the run directory as it was" || bad "the refused resume changed $T/k2"
for W in 1 4; do
  cp -r "$T/k2" "$T/k2w$W"; cp -r "$T/trk" "$T/trk$W"
  run r$W timeout 300 "$MPI" -np $W -x JEPA_DEBUG_DATA_TRACE="$T/trk$W" "$TR" "$SPEC" "${SMALL[@]}" "${RUN40[@]}" \
    --set train.batch_per_rank=12 --set run.dir="$T/k2w$W" --set resume=auto
  [ "$RC" -eq 0 ] && ok "resume on $W rank(s) to step 40" || bad "resume on $W ranks failed (rc $RC): $ERR"
  case "$ERR" in *"global batch 24: $W ranks of $((G / W)) (the checkpoint's 2 ranks of 12)"*) ok "$W rank(s): $((G / W)) records each, said once" ;;
    *) bad "$W ranks: stderr $ERR" ;; esac
  grep -q '"resumed_from": 20' "$T/k2w$W/summary.json" && grep -q "\"ranks\": $W" "$T/k2w$W/summary.json" \
    && ok "$W rank(s): summary resumed_from 20, ranks $W" || bad "$W ranks: summary $(cat "$T/k2w$W/summary.json")"
  if cmp -s <(records "$T/trs") <(records "$T/trk$W"); then ok "2 ranks to 20 + $W to 40: the straight run's records at all 40 steps"
  else bad "2 + $W ranks: records differ: $(diff <(records "$T/trs") <(records "$T/trk$W") | head -n 3 | tr '\n' ' ')"; fi
  read -r m n <<<"$(max_rel "$T/trs" "$T/trk$W")"
  within "$m" $LOSS_TOL && [ "$n" -eq 40 ] && ok "2 + $W ranks: losses within $LOSS_TOL of the straight run (max relative $m)" \
    || bad "2 + $W ranks: loss max relative difference $m over $n steps"
  params_close "2 + $W ranks: final state against the straight 2-rank run" "$T/s2/checkpoint.bin" "$T/k2w$W/checkpoint.bin"
done
# the launcher: jepa-launch resume RUN_DIR --np 4 takes the new rank count
# (the run's own directory: its spec.resolved.yaml names it)
run rl "$B/jepa-launch" resume "$T/k2" --np 4
[ "$RC" -eq 0 ] && grep -q '"ranks": 4' "$T/k2/summary.json" && grep -q '"resumed_from": 20' "$T/k2/summary.json" \
  && ok "jepa-launch resume --np 4 of the 2-rank checkpoint finishes at 4 ranks from step 20" \
  || bad "jepa-launch resume --np 4: rc $RC: $(printf '%s' "$ERR" | tail -n 3)"
params_close "jepa-launch resume --np 4: final state against the straight 2-rank run" "$T/s2/checkpoint.bin" "$T/k2/checkpoint.bin"
finish
