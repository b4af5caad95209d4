#!/usr/bin/env bash
# jepa-eval on bad input: missing run, corrupt / truncated / foreign checkpoint.
. "$(dirname "$0")/lib.sh"
EV="$B/jepa-eval"

run usage "$EV"
expect_error "no arguments" 2 "missing RUN_DIR"

run norun "$EV" "$T/no-such-run"
expect_error "missing run directory" 2 "$T/no-such-run/spec.resolved.yaml"

# a real (tiny, 2-step) run to corrupt
RD="$T/run"
pack_fmnist
"$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${DATA[@]}" --set run.dir="$RD" --set train.steps=2 \
  --set model.width=16 --set model.depth=1 --set model.heads=2 --set model.pred_width=8 \
  --set model.pred_depth=1 --set model.pred_heads=2 --set eval.probe=false \
  --set parallel.threads_per_rank=1 >/dev/null 2>&1 || bad "tiny training run failed"
CK="$RD/checkpoint.bin"
[ -s "$CK" ] && ok "checkpoint written" || bad "no checkpoint"
cp "$CK" "$T/good.bin"

head -c 1000 "$T/good.bin" > "$CK"
run trunc "$EV" "$RD"
expect_error "truncated checkpoint" 1 "$CK" "truncated"

cp "$T/good.bin" "$CK"
printf '\xff' | dd of="$CK" bs=1 seek=2000 conv=notrunc status=none
run flip "$EV" "$RD"
expect_error "flipped byte" 1 "$CK" "checksum"

printf 'XXXX' | dd of="$CK" bs=1 seek=0 conv=notrunc status=none
run magic "$EV" "$RD"
expect_error "bad magic" 1 "$CK" "magic"

cp "$T/good.bin" "$CK"
run foreign "$EV" "$RD" --set model.pred_depth=2
expect_error "checkpoint of another config" 1 "$CK"

rm -f "$CK"
run unfinished "$EV" "$RD" --set eval.max_iters=5
case "$RC:$ERR" in 0:*"checkpoint.bin absent"*"step-00000002.ckpt"*) ok "no checkpoint.bin: the one RUN/latest names is probed" ;;
  *) bad "no checkpoint.bin: rc $RC: $ERR" ;; esac

rm -f "$RD/latest"
run missing "$EV" "$RD"
expect_error "missing checkpoint" 1 "$CK"

finish
