#!/usr/bin/env bash
# The collapse watch: a run driven to collapse (lr 10, no warm-up: target_std
# 0.72 -> 0.01 by step 10) says so in one warning line naming the step, the
# statistic, its value and its start, records the step in summary.json and
# still trains to the end (exit 0); a healthy short run says nothing
# (collapse_warning_step null); a collapsed run stopped and resumed records
# the step its first part warned at (the watch replays metrics.jsonl).
. "$(dirname "$0")/lib.sh"
TR="$B/jepa-train"
SPEC="$S/configs/fmnist-tiny.yaml"
pack_fmnist
SHORT=(--set train.steps=40 --set train.minutes=0 --set eval.probe=false --set train.batch_per_rank=32
       --set parallel.threads_per_rank=1)
HOT=(--set optim.lr=10 --set optim.warmup_frac=0)
field() { sed -n 's/^ *"collapse_warning_step": \(.*\),$/\1/p' "$1/summary.json"; }

run hot "$TR" "$SPEC" "${DATA[@]}" "${SHORT[@]}" "${HOT[@]}" --set run.dir="$T/hot"
W=$(printf '%s\n' "$ERR" | grep -c 'warning: .*collaps')
L=$(printf '%s\n' "$ERR" | grep 'warning: .*collaps')
[ "$RC" -eq 0 ] && ok "collapsing run trains to the end (exit 0)" || bad "collapsing run: exit $RC: $ERR"
[ "$W" -eq 1 ] && ok "one warning line: $L" || bad "$W warning lines, want 1: $ERR"
case "$L" in *"step 10: target_std 0.0"*"its value at step 1 (0.7"*) ok "it names step, statistic, value and start" ;;
  *) bad "warning lacks step 10 / target_std / value / start: $L" ;; esac
[ "$(field "$T/hot")" = 10 ] && ok "summary.json collapse_warning_step 10" \
  || bad "summary.json collapse_warning_step '$(field "$T/hot")', want 10"
grep -q '"steps": 40,' "$T/hot/summary.json" && ok "all 40 steps trained" || bad "not 40 steps: $(cat "$T/hot/summary.json")"

run calm "$TR" "$SPEC" "${DATA[@]}" "${SHORT[@]}" --set run.dir="$T/calm"
[ "$RC" -eq 0 ] && ok "healthy run exits 0" || bad "healthy run: exit $RC: $ERR"
case "$ERR" in *collaps*) bad "healthy run warned: $ERR" ;; *) ok "healthy run: no warning" ;; esac
[ "$(field "$T/calm")" = null ] && ok "healthy run: collapse_warning_step null" \
  || bad "healthy run: collapse_warning_step '$(field "$T/calm")', want null"

# stopped after step 20 (exit 75, checkpoint), resumed: no second warning,
# the first part's step recorded, parameters as the straight run's
run part env JEPA_DEBUG_STOP_STEP=20 "$TR" "$SPEC" "${DATA[@]}" "${SHORT[@]}" "${HOT[@]}" --set run.dir="$T/res"
[ "$RC" -eq 75 ] && ok "stopped at step 20 (exit 75)" || bad "stop at 20: exit $RC: $ERR"
run rest "$TR" "$SPEC" "${DATA[@]}" "${SHORT[@]}" "${HOT[@]}" --set run.dir="$T/res" --set resume=auto
case "$ERR" in *collaps*) bad "the resumed part warned again: $ERR" ;; *) ok "the resumed part: no second warning" ;; esac
[ "$(field "$T/res")" = 10 ] && ok "resumed run: collapse_warning_step 10" \
  || bad "resumed run: collapse_warning_step '$(field "$T/res")', want 10"
h() { sed -n 's/.*"param_hash": "\(.*\)".*/\1/p' "$1/summary.json"; }
[ -n "$(h "$T/res")" ] && [ "$(h "$T/res")" = "$(h "$T/hot")" ] && ok "resumed run: parameters as the straight run's" \
  || bad "param_hash $(h "$T/res") vs straight $(h "$T/hot")"
finish
