#!/usr/bin/env bash
# LeJEPA (objective: lejepa) end to end on Fashion-MNIST with a tiny model:
# the run exits 0 with the objective's metrics (emb_std, sigreg, inv) on
# every line, a summary and the probe; jepa-eval on the run reproduces the
# probe; resuming the run under objective ijepa, and bad lejepa keys, are
# refused in one line, leaving nothing behind.
. "$(dirname "$0")/lib.sh"
SPEC="$S/configs/fmnist-lejepa.yaml"
SMALL=(--set model.width=32 --set model.depth=2 --set model.heads=2 --set train.steps=20
       --set train.batch_per_rank=32 --set train.log_every=5 --set parallel.threads_per_rank=1
       --set lejepa.proj_hidden=64 --set lejepa.proj_dim=16 --set sigreg.directions=64
       --set eval.max_iters=50 --set eval.pool_blocks=1)
pack_fmnist
SMALL+=("${DATA[@]}")

json() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }
metric() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p"; }

run a "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a"
[ "$RC" -eq 0 ] && ok "lejepa run exits 0" || bad "lejepa run failed (rc $RC): $ERR"
LAST=$(printf '%s\n' "$OUT" | tail -n 1)
case "$LAST" in "probe_acc 0."[0-9][0-9][0-9][0-9]) ok "last line is '$LAST'" ;; *) bad "last line '$LAST'" ;; esac
printf '%s\n' "$ERR" | grep -q "lejepa encoder features" && ok "evaluation names the lejepa encoder" \
  || bad "no 'lejepa encoder features' line: $ERR"

M="$T/a/metrics.jsonl"
N=$(grep -c '' "$M" 2>/dev/null || echo 0)
[ "$N" -eq 5 ] && ok "5 metric lines (step 1 and every 5)" || bad "$N metric lines, want 5"
for k in loss emb_std sigreg inv grad_norm; do
  [ "$(grep -c "\"$k\": " "$M")" -eq "$N" ] && ok "every metric line has $k" || bad "metric $k missing"
done
# the figures are real: finite, emb_std and sigreg > 0 and in range
GOOD=$(awk '{ print }' "$M" | while read -r l; do
  e=$(printf '%s' "$l" | metric emb_std); s=$(printf '%s' "$l" | metric sigreg)
  awk -v e="$e" -v s="$s" 'BEGIN { exit !(e + 0 > 0 && e + 0 < 1e3 && s + 0 > 0 && s + 0 < 1e6) }' && echo y
done | grep -c y)
[ "$GOOD" -eq "$N" ] && ok "emb_std and sigreg finite and > 0 on all lines" || bad "bad emb_std/sigreg on $((N - GOOD)) lines"
# loss = (1 - lambda) inv + lambda sigreg (obj_lejepa.c): on step 1's line,
# the one whose logged loss is a single step's (later lines average theirs)
L1=$(head -n 1 "$M"); LAM=$(sed -n '/^sigreg:/,/^[a-z]/s/^  weight: *//p' "$T/a/spec.resolved.yaml")
if awk -v l="$(printf '%s' "$L1" | metric loss)" -v i="$(printf '%s' "$L1" | metric inv)" \
       -v g="$(printf '%s' "$L1" | metric sigreg)" -v w="$LAM" 'BEGIN {
     want = (1 - w) * i + w * g; d = l - want; if (d < 0) d = -d
     exit !(w > 0 && i > 0 && g > 0 && d <= 2e-5 * (1 + want)) }'; then
  ok "step 1: loss = (1 - $LAM) inv + $LAM sigreg"
else bad "step 1: loss is not (1 - lambda) inv + lambda sigreg: lambda '$LAM', $L1"; fi

for f in spec.yaml spec.resolved.yaml summary.json checkpoint.bin; do
  [ -s "$T/a/$f" ] && ok "run dir has $f" || bad "run dir lacks $f"
done
[ "$(json "$T/a/summary.json" objective)" = lejepa ] && ok "summary names objective lejepa" \
  || bad "summary objective '$(json "$T/a/summary.json" objective)'"
for k in final_loss emb_std probe_acc param_hash; do
  [ -n "$(json "$T/a/summary.json" $k)" ] && ok "summary has $k" || bad "summary lacks $k"
done
ACC=$(json "$T/a/summary.json" probe_acc)
[ "probe_acc $ACC" = "$LAST" ] && ok "summary probe_acc matches stdout" || bad "summary $ACC vs '$LAST'"
# the launcher's curves plot LeJEPA's collapse watch (emb_std), not I-JEPA's
run plot "$B/jepa-launch" plot "$T/a"
[ "$RC" -eq 0 ] && [ -s "$T/a/plots/curves.png" ] && grep -q "'embedding std (collapse watch)'" "$T/a/plots/curves.gp" \
  && ok "jepa-launch plot: curves.png with emb_std" || bad "plot rc $RC: $ERR"

run eval "$B/jepa-eval" "$T/a" --set parallel.threads_per_rank=1
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | tail -n 1)" = "$LAST" ] && ok "jepa-eval reproduces $LAST" \
  || bad "jepa-eval gave '$(printf '%s\n' "$OUT" | tail -n 1)' (rc $RC), training said '$LAST': $ERR"

# the checkpoint belongs to a lejepa run: an ijepa resume of it is refused
cp "$T/a/summary.json" "$T/summary.before"
run ij "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/a" --set objective=ijepa --set resume=auto
expect_error "resume under objective ijepa refused" 4 "objective lejepa" "objective ijepa"
cmp -s "$T/a/summary.json" "$T/summary.before" && ok "refused resume left the run alone" \
  || bad "refused resume changed summary.json"

# bad lejepa keys: one line naming the key, no run directory
run ls "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/ls" --set lejepa.local_size=10
expect_error "local_size not a multiple of the patch" 2 "lejepa.local_size: 10"
[ -e "$T/ls" ] && bad "refused run left $T/ls" || ok "refused run wrote nothing"
run sc "$B/jepa-train" "$SPEC" "${SMALL[@]}" --set run.dir="$T/sc" --set aug.local_scale_min=0.5
expect_error "local scale range reversed" 2 "aug.local_scale_min: 0.5" "aug.local_scale_max"

finish
