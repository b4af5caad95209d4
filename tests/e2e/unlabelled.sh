#!/usr/bin/env bash
# Self-supervised training needs no labels (issue 16, item 1): PGM and PPM
# directories packed without a labels file train, 1 and 3 channels, I-JEPA
# and LeJEPA; only the probe needs labels, on its own data, and says so
# before training (skipped by jepa-train, refused by jepa-eval), never after.
. "$(dirname "$0")/lib.sh"

# mkimgs DIR N SIZE P5|P6 [LABELS]: N SIZExSIZE images, grey (P5) or RGB (P6);
# class i%2 is brighter on the left, so a probe has something to find.
# LABELS: also write 'NAME LABEL' lines there.
mkimgs() {
  local dir=$1 n=$2 w=$3 kind=$4 lab=${5:-} c=1 i k v s o
  [ "$kind" = P6 ] && c=3
  mkdir -p "$dir"
  for ((i = 0; i < n; i++)); do
    s=""
    for ((k = 0; k < w * w * c; k++)); do
      v=$(( (k * 37 + i * 101) % 97 + ((k / c % w < w / 2) == (i % 2) ? 120 : 0) ))
      printf -v o '\\%03o' "$v"
      s+=$o
    done
    printf "$kind\n$w $w\n255\n$s" > "$dir/im$i.$( [ $c = 3 ] && echo ppm || echo pgm)"
    [ -n "$lab" ] && echo "im$i.$( [ $c = 3 ] && echo ppm || echo pgm) $((i % 2))" >> "$lab"
  done
}
json() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }

mkimgs "$T/grey" 24 16 P5
mkimgs "$T/rgb" 24 16 P6
mkimgs "$T/rgbl" 24 16 P6 "$T/rgbl.lab"
mkimgs "$T/small" 8 8 P5 "$T/small.lab"
for d in grey rgb; do
  run pack "$B/jepa-shard" pack --pnm-dir "$T/$d" --out "$T/ds-$d" --quiet
  [ "$RC" -eq 0 ] && ok "pack $d without labels" || bad "pack $d: $ERR"
done
run pack "$B/jepa-shard" pack --pnm-dir "$T/rgbl" --labels "$T/rgbl.lab" --out "$T/ds-rgbl" --quiet
run pack "$B/jepa-shard" pack --pnm-dir "$T/small" --labels "$T/small.lab" --out "$T/ds-small" --quiet

TINY=(--set model.img_size=16 --set model.patch=4 --set model.width=16 --set model.depth=1 --set eval.pool_blocks=1
      --set model.heads=2 --set model.pred_width=8 --set model.pred_depth=1 --set model.pred_heads=2
      --set train.steps=4 --set train.batch_per_rank=8 --set train.log_every=2
      --set parallel.threads_per_rank=1 --set eval.max_iters=20 --set eval.knn_k=3)
SPEC="$S/configs/fmnist-tiny.yaml"
LJ=(--set objective=lejepa --set lejepa.local_size=8 --set lejepa.global_views=2
    --set lejepa.local_views=2 --set lejepa.proj_hidden=16 --set lejepa.proj_dim=8)

# grey, no labels anywhere, probe on (the default): trains, skips the probe in one line
run grey "$B/jepa-train" "$SPEC" "${TINY[@]}" --set data.train="$T/ds-grey" \
  --set data.test="$T/ds-grey" --set run.dir="$T/run-grey"
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^steps 4$')" -eq 1 ] \
  && ok "unlabelled grey images train (4 steps)" || bad "grey: rc $RC: $ERR"
[ "$(printf '%s\n' "$ERR" | grep -c 'has no class labels.*the probe is skipped')" -eq 1 ] \
  && ok "one line says the probe is skipped" || bad "no skip line: $ERR"
[ "$(json "$T/run-grey/summary.json" probe_acc)" = -1 ] && ok "summary: probe_acc -1" \
  || bad "summary probe_acc $(json "$T/run-grey/summary.json" probe_acc)"

# RGB, no labels, model.channels 3: I-JEPA and LeJEPA
for o in ijepa lejepa; do
  extra=(); [ $o = lejepa ] && extra=("${LJ[@]}")
  run rgb "$B/jepa-train" "$SPEC" "${TINY[@]}" "${extra[@]}" --set model.channels=3 \
    --set data.train="$T/ds-rgb" --set data.test="$T/ds-rgb" --set run.dir="$T/run-rgb-$o"
  [ "$RC" -eq 0 ] && [ -s "$T/run-rgb-$o/checkpoint.bin" ] \
    && ok "$o: unlabelled RGB images train with model.channels 3" || bad "$o rgb: rc $RC: $ERR"
done
# RGB with labels: the probe runs on 3-channel features
run rgbl "$B/jepa-train" "$SPEC" "${TINY[@]}" --set model.channels=3 \
  --set data.train="$T/ds-rgbl" --set data.test="$T/ds-rgbl" --set run.dir="$T/run-rgbl"
LAST=$(printf '%s\n' "$OUT" | tail -n 1)
[ "$RC" -eq 0 ] && case "$LAST" in "probe_acc "[01].*) true ;; *) false ;; esac \
  && ok "labelled RGB: $LAST" || bad "labelled rgb: rc $RC, last '$LAST': $ERR"
# 24 images: 1% of the labels is 2, too few to hold out a validation row:
# that figure is skipped in one line after training, the others reported
printf '%s\n' "$ERR" | grep -q "eval: probe1pct skipped: its 2 labels leave 0 validation rows" \
  && ! printf '%s\n' "$OUT" | grep -q probe1pct_acc && printf '%s\n' "$OUT" | grep -q '^knn_acc ' \
  && ok "a few-label probe too small for a validation row: skipped, said" || bad "fewlabel on 24 images: $ERR"
# the probe itself too small to hold out a row: refused before training
run tiny "$B/jepa-train" "$SPEC" "${TINY[@]}" --set model.img_size=8 --set model.patch=2 \
  --set data.train="$T/ds-small" --set data.test="$T/ds-small" --set eval.val_frac=0.05 --set run.dir="$T/run-tiny"
expect_error "probe with no validation row" 4 "data.train $T/ds-small" "8 images leave 0 validation rows"
[ ! -e "$T/run-tiny" ] && ok "refused before the run directory" || bad "run-tiny was created"
run rgbl1 "$B/jepa-train" "$SPEC" "${TINY[@]}" --set data.train="$T/ds-rgbl" \
  --set data.test="$T/ds-rgbl" --set run.dir="$T/run-rgbl1"
expect_error "3-channel data, model.channels 1" 4 "$T/ds-rgbl" "3x16x16" "1x16x16"

# a mid-run evaluation needs labels as much as the final one
run every "$B/jepa-train" "$SPEC" "${TINY[@]}" --set eval.probe=false --set eval.every_steps=2 \
  --set data.train="$T/ds-grey" --set data.test="$T/ds-grey" --set run.dir="$T/run-every"
[ "$RC" -eq 0 ] && ! grep -q probe_acc "$T/run-every/metrics.jsonl" \
  && ok "eval.every_steps on unlabelled data: skipped, run completes" || bad "every: rc $RC: $ERR"

# the probe's test set of another shape: refused before training, nothing written
run shape "$B/jepa-train" "$SPEC" "${TINY[@]}" --set data.train="$T/ds-rgbl" \
  --set model.channels=3 --set data.test="$T/ds-small" --set run.dir="$T/run-shape"
expect_error "probe test set of another shape" 4 "data.test" "$T/ds-small" "1x8x8" "3x16x16"
[ ! -e "$T/run-shape" ] && ok "no run directory after the refusal" || bad "run-shape was created"

# jepa-eval: the probe is all it does, so unlabelled data is refused up front
run ev "$B/jepa-eval" "$T/run-grey" --export "$T/exp"
expect_error "jepa-eval on unlabelled data" 1 "$T/ds-grey" "has no class labels"
[ ! -e "$T/exp" ] && ok "jepa-eval refused before creating --export" || bad "$T/exp created"
run px "$B/jepa-eval" --pixels "$SPEC" --set data.train="$T/ds-rgbl" --set data.test="$T/ds-grey"
expect_error "jepa-eval --pixels on an unlabelled test set" 1 "$T/ds-grey"
run rnd "$B/jepa-eval" --random "$SPEC" "${TINY[@]}" --set data.train="$T/ds-grey" --set data.test="$T/ds-grey"
expect_error "jepa-eval --random on unlabelled data" 1 "data.train" "$T/ds-grey" "has no class labels"
finish
