#!/usr/bin/env bash
# The README's quickstart command line, shortened: scripts/quickstart.sh
# (packs data/fmnist in the source tree once, as the README says, then 2
# ranks of its config) for 3 steps instead of 10 minutes, with the full
# closing evaluation at fewer probe iterations. Checks that it trains the
# objective the README names and that its last lines are the evaluation's
# figures, probe_acc last.
. "$(dirname "$0")/lib.sh"
run qs env JEPA_BUILD="$B" bash "$S/scripts/quickstart.sh" --set train.steps=3 \
  --set train.minutes=0 --set eval.max_iters=20 --set run.dir="$T/qs"
if [ "$RC" -eq 0 ]; then ok "quickstart, 3 steps: exit 0"; else bad "quickstart: exit $RC: $ERR"; fi
LAST=$(printf '%s\n' "$OUT" | tail -n 1)
case "$LAST" in "probe_acc 0."*) ok "last line: $LAST" ;; *) bad "last line '$LAST', want probe_acc" ;; esac
for k in knn_acc probe1pct_acc probe10pct_acc; do
  printf '%s\n' "$OUT" | grep -q "^$k 0\." && ok "prints $k" || bad "no $k line: $OUT"
done
# one verdict line on stderr against the README's figures, from summary.json
# (3 steps: it may well say no); stdout still ends with probe_acc
sj() { sed -n "s/^ *\"$1\": \([0-9.]*\),\{0,1\}$/\1/p" "$T/qs/summary.json"; }
V=$(printf '%s\n' "$ERR" | grep '^quickstart: ')
NV=$(printf '%s\n' "$ERR" | grep -c '^quickstart: ')
WANT="quickstart: linear probe $(sj probe_acc) > raw pixels 0.8463: (yes|no); kNN $(sj knn_acc) >= untrained 0.5972 \+ 0.05: (yes|no) => (pass|not passed .*)"
[ "$NV" -eq 1 ] && printf '%s\n' "$V" | grep -Eqx "$WANT" && ok "verdict line: $V" \
  || bad "$NV verdict lines, want 1 matching '$WANT': $ERR"
grep -q '"objective": "ijepa"' "$T/qs/summary.json" && grep -q '"steps": 3,' "$T/qs/summary.json" \
  && grep -q '"ranks": 2,' "$T/qs/summary.json" \
  && ok "summary.json: ijepa, 3 steps, 2 ranks" || bad "summary.json: $(cat "$T/qs/summary.json")"
# the exit status stays the trainer's; a run refused or without figures
# gets no pass/fail verdict
run qsbad env JEPA_BUILD="$B" bash "$S/scripts/quickstart.sh" --set train.steps=0 --set train.minutes=0 \
  --set run.dir="$T/qsbad"
[ "$RC" -eq 2 ] && ! printf '%s\n' "$ERR" | grep -q '^quickstart: ' && ok "refused spec: exit 2, no verdict" \
  || bad "refused spec: exit $RC (want 2): $ERR"
run qsnp env JEPA_BUILD="$B" bash "$S/scripts/quickstart.sh" --set train.steps=2 --set train.minutes=0 \
  --set eval.probe=false --set=run.dir="$T/qsnp" # one word: the verdict reads it too
[ "$RC" -eq 0 ] && printf '%s\n' "$ERR" | grep -qx "quickstart: no verdict: $T/qsnp/summary.json has no .*" \
  && ok "eval.probe=false: exit 0, 'no verdict' line" || bad "eval.probe=false: exit $RC: $ERR"
# the configs that run the quickstart through jepa-launch (2 ranks; Slurm)
# train what it trains: every key that decides the trajectory equal to the
# quickstart's resolved spec (a fake trainer: only the run directory is made)
tkeys() { # seed, objective and the model/optim/schedule/mask/loss sections
  awk '/^[a-z_]+:$/ {sec=$1; next} /^[a-z_]+: / {sec=""} /^(seed|objective): / {print}
       /^  / && sec ~ /^(model|init|optim|ema|mask|loss|aug|lejepa|sigreg):$/ {print sec $0}' "$1"
}
printf '#!/bin/sh\nexit 0\n' >"$T/fake-train" && chmod +x "$T/fake-train"
for c in fmnist-2rank fmnist-slurm; do
  run "cfg-$c" env -C "$S" JEPA_TRAIN_BIN="$T/fake-train" "$B/jepa-launch" run "$S/configs/$c.yaml" --set run.dir="$T/$c"
  d=$(diff <(tkeys "$T/qs/spec.resolved.yaml") <(tkeys "$T/$c/spec.resolved.yaml") 2>&1)
  [ "$RC" -eq 0 ] && [ -s "$T/$c/spec.resolved.yaml" ] && [ -z "$d" ] \
    && ok "configs/$c.yaml trains the quickstart's settings" || bad "configs/$c.yaml: rc $RC $ERR: $d"
done
finish
