#!/usr/bin/env bash
# How long a run is, and saying so (issue 16 item 8, issue 13's time budget):
# - a time budget survives a load at start: the first steps are slowed by a
#   test hook; the re-plans (10%, 50%) bring the run to within 15% of its
#   budget, where the up-front plan alone (JEPA_DEBUG_NO_REPLAN) ends early;
# - a train.minutes cap that cuts a train.steps run short says so in one
#   line and in summary.json (planned_steps, stop_reason "budget");
# - a re-planned schedule resumes exactly: interrupted after its re-plan and
#   resumed, a run ends bitwise where a straight run of that plan ends.
. "$(dirname "$0")/lib.sh"
json() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }

# 256 random 16x16 grey images
head -c $((256 * 256)) /dev/urandom > "$T/raw"
"$B/jepa-shard" pack --raw "$T/raw" --height 16 --width 16 --out "$T/ds" --quiet >/dev/null \
  || bad "packing the test images failed"
TINY=(--set model.img_size=16 --set model.patch=4 --set model.width=16 --set model.depth=1 --set eval.pool_blocks=1
      --set model.heads=2 --set model.pred_width=8 --set model.pred_depth=1 --set model.pred_heads=2
      --set train.batch_per_rank=8 --set train.log_every=10 --set parallel.threads_per_rank=1
      --set eval.probe=false --set data.train="$T/ds" --set data.test="$T/ds")
SPEC="$S/configs/fmnist-tiny.yaml"

# a load during the first second (each step 30 ms slower), an 18 s budget
BUDGET=18
run slow env JEPA_DEBUG_SLOW_START=1:30 "$B/jepa-train" "$SPEC" "${TINY[@]}" \
  --set train.minutes=0.3 --set train.steps=0 --set run.dir="$T/slow"
TS=$(json "$T/slow/summary.json" train_s)
[ "$RC" -eq 0 ] && awk -v t="$TS" -v b=$BUDGET 'BEGIN { exit !(t > 0.85 * b && t < 1.15 * b) }' \
  && ok "slow start: trained ${TS}s of a ${BUDGET}s budget (within 15%)" \
  || bad "slow start: rc $RC, trained ${TS:-?}s of ${BUDGET}s: $ERR"
printf '%s\n' "$ERR" | grep -q "re-planned after [0-9]* steps" && ok "one line says the re-plan" \
  || bad "no re-plan line: $ERR"
R=$(json "$T/slow/summary.json" replan_step); F=$(json "$T/slow/summary.json" plan_first_steps)
P=$(json "$T/slow/summary.json" planned_steps); N=$(json "$T/slow/summary.json" steps)
K=$(json "$T/slow/summary.json" replans); W=$(json "$T/slow/summary.json" stop_reason)
[ "${R:-0}" -gt 0 ] && [ "${K:-0}" -ge 1 ] && [ "$P" -gt $((2 * F)) ] \
  && ok "summary: up-front plan $F steps, $K re-plan(s), the last after step $R, to $P; ran $N ($W)" \
  || bad "summary plan: up-front $F, $K re-plans, last at $R, planned $P, steps $N"

# the same without the re-plan (the up-front plan alone): the run ends early
run noreplan env JEPA_DEBUG_SLOW_START=1:30 JEPA_DEBUG_NO_REPLAN=1 "$B/jepa-train" "$SPEC" "${TINY[@]}" \
  --set train.minutes=0.3 --set train.steps=0 --set run.dir="$T/noreplan"
TN=$(json "$T/noreplan/summary.json" train_s)
[ "$RC" -eq 0 ] && awk -v t="$TN" -v b=$BUDGET 'BEGIN { exit !(t < 0.85 * b) }' \
  && ok "without the re-plan the same start ends early (${TN}s of ${BUDGET}s)" \
  || bad "no-replan run: rc $RC, ${TN:-?}s (the test's slow start did not mislead the first plan)"

# a cap that cuts a fixed step count short
run cap "$B/jepa-train" "$SPEC" "${TINY[@]}" --set train.steps=1000000 --set train.minutes=0.03 \
  --set run.dir="$T/cap"
N=$(json "$T/cap/summary.json" steps)
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$ERR" | grep -c "train.minutes cap (0.03 min) reached after $N of 1000000 planned steps")" -eq 1 ] \
  && ok "the cap says so in one line ($N of 1000000 steps)" || bad "cap line: rc $RC: $ERR"
[ "$(json "$T/cap/summary.json" stop_reason)" = budget ] && [ "$(json "$T/cap/summary.json" planned_steps)" = 1000000 ] \
  && ok "summary: stop_reason budget, planned_steps 1000000" || bad "cap summary: $(cat "$T/cap/summary.json")"
run status "$B/jepa-launch" status "$T/cap"
case "$OUT" in *"truncated: train.minutes cap, $N of 1000000 steps"*) ok "jepa-launch status: truncated" ;;
  *) bad "jepa-launch status: $OUT $ERR" ;; esac
run done "$B/jepa-train" "$SPEC" "${TINY[@]}" --set train.steps=20 --set train.minutes=0 --set run.dir="$T/done"
[ "$RC" -eq 0 ] && [ "$(json "$T/done/summary.json" stop_reason)" = completed ] && [ "$(json "$T/done/summary.json" planned_steps)" = 20 ] \
  && ! printf '%s\n' "$ERR" | grep -q "cap" && ok "a complete run: stop_reason completed, planned_steps 20, no cap line" \
  || bad "complete run: rc $RC: $(cat "$T/done/summary.json")"

# exact resume of a re-planned schedule (plan forced by the test hook: first
# plan 40 steps, re-planned after 10 to 60): stop at 30, resume, compare
PLAN=(env JEPA_DEBUG_PLAN=40:10:60)
run straight "${PLAN[@]}" "$B/jepa-train" "$SPEC" "${TINY[@]}" --set train.minutes=5 --set train.steps=0 \
  --set run.dir="$T/straight"
[ "$RC" -eq 0 ] && [ "$(json "$T/straight/summary.json" steps)" = 60 ] && [ "$(json "$T/straight/summary.json" replan_step)" = 10 ] \
  && ok "forced plan: 40 steps re-planned after 10 to 60" || bad "straight: rc $RC: $ERR"
run part env JEPA_DEBUG_STOP_STEP=30 "${PLAN[@]}" "$B/jepa-train" "$SPEC" "${TINY[@]}" --set train.minutes=5 \
  --set train.steps=0 --set run.dir="$T/resumed"
printf '%s\n' "$ERR" | grep -q "stopped by signal [0-9]* after step 30 of 60" && ok "interrupted at step 30 of 60" \
  || bad "interrupt: rc $RC: $ERR"
run rest "${PLAN[@]}" "$B/jepa-train" "$SPEC" "${TINY[@]}" --set train.minutes=5 --set train.steps=0 \
  --set run.dir="$T/resumed" --set resume=auto
HS=$(json "$T/straight/summary.json" param_hash); HR=$(json "$T/resumed/summary.json" param_hash)
[ "$RC" -eq 0 ] && [ -n "$HS" ] && [ "$HS" = "$HR" ] && [ "$(json "$T/resumed/summary.json" replan_step)" = 10 ] \
  && ok "resumed after the re-plan: bitwise the straight run ($HS)" || bad "resume: rc $RC, $HS vs $HR: $ERR"
sed 's/, "img_per_s.*//' "$T/straight/metrics.jsonl" > "$T/ls"
sed 's/, "img_per_s.*//' "$T/resumed/metrics.jsonl" > "$T/lr"
[ "$(grep -c '"lr"' "$T/ls")" -eq 7 ] && cmp -s "$T/ls" "$T/lr" && ok "metrics (lr, wd, ema, loss) identical after the resume" || bad "metrics differ"
# lr, wd and EMA do not jump at the re-plan (logged at steps 1, 10, 20):
# the wd ramp's step 10 -> 20 change is at most twice its 1 -> 10 change
awk -F'"wd": ' 'NR <= 3 { split($2, a, ","); w[NR] = a[1] }
  END { exit !(w[3] - w[2] > 0 && w[3] - w[2] <= 2 * (w[2] - w[1]) * 10 / 9 + 1e-9) }' "$T/ls" \
  && ok "wd continuous across the re-plan" || bad "wd jumps at the re-plan: $(head -n 3 "$T/ls")"
run fixed "$B/jepa-train" "$SPEC" "${TINY[@]}" --set train.steps=60 --set train.minutes=0 --set run.dir="$T/fixed"
HF=$(json "$T/fixed/summary.json" param_hash)
[ -n "$HF" ] && [ "$HF" != "$HS" ] && ok "the re-planned schedule differs from a fixed 60-step one" \
  || bad "re-planned and fixed runs agree ($HF): the re-plan changed nothing"
finish
