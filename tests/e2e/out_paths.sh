#!/usr/bin/env bash
# Output paths whose parents do not exist yet are made, as mkdir -p (issue 16
# item 7): jepa-shard pack --out, jepa-world gen --out and render --out,
# jepa-train's run.dir, jepa-eval --export. A parent that is a file is
# refused in one line naming it, nothing made. (The launcher's sweep and run
# directories: tests/e2e/launch_reliability.sh.)
. "$(dirname "$0")/lib.sh"

# 64 random 8x8 grey images, labels 0..3
head -c $((64 * 64)) /dev/urandom > "$T/raw"
for i in $(seq 0 63); do printf "\\$(printf '%03o' $((i % 4)))"; done > "$T/lab"
touch "$T/file"

run pack "$B/jepa-shard" pack --raw "$T/raw" --raw-labels "$T/lab" --height 8 --width 8 \
  --out "$T/data/new/train" --quiet
[ "$RC" -eq 0 ] && "$B/jepa-shard" verify "$T/data/new/train" >/dev/null 2>&1 \
  && ok "jepa-shard pack makes data/new/ for data/new/train" || bad "pack into new parents: rc $RC: $ERR"
run packbad "$B/jepa-shard" pack --raw "$T/raw" --height 8 --width 8 --out "$T/file/x/train" --quiet
expect_error "pack under a file" 1 "$T/file" "Not a directory"
[ ! -e "$T/file/x" ] && ok "nothing made under the file" || bad "$T/file/x exists"

run gen "$B/jepa-world" gen --out "$T/w/one/two" --episodes 2 --steps 4 --quiet
[ "$RC" -eq 0 ] && "$B/jepa-shard" verify "$T/w/one/two" >/dev/null 2>&1 \
  && ok "jepa-world gen makes its parents" || bad "world gen: rc $RC: $ERR"
run render "$B/jepa-world" render --out "$T/pics/a/b/strip.pgm" --steps 3
[ "$RC" -eq 0 ] && [ -s "$T/pics/a/b/strip.pgm" ] && ok "jepa-world render makes its parents" \
  || bad "render: rc $RC: $ERR"
run renderbad "$B/jepa-world" render --out "$T/file/strip.pgm" --steps 3
expect_error "render under a file" 1 "$T/file"

TINY=(--set model.img_size=8 --set model.patch=2 --set model.width=16 --set model.depth=1 --set eval.pool_blocks=1
      --set model.heads=2 --set model.pred_width=8 --set model.pred_depth=1 --set model.pred_heads=2
      --set train.steps=2 --set train.minutes=0 --set train.batch_per_rank=8
      --set parallel.threads_per_rank=1 --set eval.probe=false --set eval.knn_k=3
      --set eval.fewlabel=false --set eval.max_iters=10
      --set data.train="$T/data/new/train" --set data.test="$T/data/new/train")
run train "$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${TINY[@]}" --set run.dir="$T/runs/x/y/run"
[ "$RC" -eq 0 ] && [ -s "$T/runs/x/y/run/checkpoint.bin" ] && ok "jepa-train makes run.dir's parents" \
  || bad "train: rc $RC: $ERR"
run export "$B/jepa-eval" "$T/runs/x/y/run" --export "$T/feat/a/b"
[ "$RC" -eq 0 ] && [ -s "$T/feat/a/b/train_features.npy" ] && [ -s "$T/feat/a/b/test_labels.npy" ] \
  && ok "jepa-eval --export makes its parents" || bad "export: rc $RC: $ERR"
run exportbad "$B/jepa-eval" "$T/runs/x/y/run" --export "$T/file/feat"
expect_error "--export under a file" 2 "--export $T/file/feat" "Not a directory"
finish
