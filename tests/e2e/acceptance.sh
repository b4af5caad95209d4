#!/usr/bin/env bash
# Learning acceptance (label `long`, ~15 min on 2 cores): the tiny config
# trained for 10 minutes must probe at least 2 points above the same probe
# on the randomly initialised encoder.
. "$(dirname "$0")/lib.sh"
SPEC="$S/configs/fmnist-tiny.yaml"
pack_fmnist
run rand "$B/jepa-eval" --random "$SPEC" "${DATA[@]}"
RAND=$(printf '%s\n' "$OUT" | tail -n 1 | sed -n 's/^probe_acc //p')
[ -n "$RAND" ] && ok "random-init probe $RAND" || bad "random-init probe failed: $ERR"
run train "$B/jepa-train" "$SPEC" "${DATA[@]}" --set run.dir="$T/run" --set train.minutes=10
ACC=$(printf '%s\n' "$OUT" | tail -n 1 | sed -n 's/^probe_acc //p')
[ -n "$ACC" ] && ok "10-minute probe $ACC" || bad "training failed: $ERR"
awk -v a="$ACC" -v r="$RAND" 'BEGIN { exit !(a >= r + 0.02) }' \
  && ok "trained $ACC >= random $RAND + 0.02" || bad "trained $ACC < random $RAND + 0.02"
finish
