#!/usr/bin/env bash
# Learning acceptance (label `long`, ~15 min on 2 cores; issue 13): the
# quickstart config trained for its 10-minute budget must probe above raw
# pixels (the same whitened logistic-regression probe on the 784 pixels) and
# its kNN (k = 20, cosine) must beat the randomly initialised encoder's by 5
# points. Every figure comes from the same evaluation; nothing is selected on
# the test split. bench/learning.sh measures the same over three seeds.
. "$(dirname "$0")/lib.sh"
SPEC="$S/configs/fmnist-tiny.yaml"
pack_fmnist
val() { printf '%s\n' "$OUT" | sed -n "s/^$1 \([0-9.e+-]*\)$/\1/p" | tail -n 1; }
run pixels "$B/jepa-eval" --pixels "$SPEC" "${DATA[@]}"
PIX=$(val probe_acc)
[ -n "$PIX" ] && ok "raw-pixel probe $PIX" || bad "raw-pixel probe failed: $ERR"
run rand "$B/jepa-eval" --random "$SPEC" "${DATA[@]}"
RKNN=$(val knn_acc)
[ -n "$RKNN" ] && ok "random-init kNN $RKNN" || bad "random-init evaluation failed: $ERR"
run train "$B/jepa-train" "$SPEC" "${DATA[@]}" --set run.dir="$T/run" --set train.minutes=10
ACC=$(val probe_acc) KNN=$(val knn_acc)
[ -n "$ACC" ] && [ -n "$KNN" ] && ok "10-minute probe $ACC, kNN $KNN" || bad "training failed: $ERR"
awk -v a="$ACC" -v p="$PIX" 'BEGIN { exit !(a > p) }' \
  && ok "trained probe $ACC > raw pixels $PIX" || bad "trained probe $ACC <= raw pixels $PIX"
awk -v a="$KNN" -v r="$RKNN" 'BEGIN { exit !(a >= r + 0.05) }' \
  && ok "trained kNN $KNN >= random $RKNN + 0.05" || bad "trained kNN $KNN < random $RKNN + 0.05"
finish
