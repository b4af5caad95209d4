#!/usr/bin/env bash
# jepa-eval: the image evaluation's figures, --export (.npy, anywhere on the
# line) and --pixels, and bad input: missing run, corrupt / truncated /
# foreign checkpoint, bad flags and --export DIR (exit 2), --pixels of a
# world-model spec, eval.precision: bf16 (run, or refused without
# AVX512_BF16); SIGINT/SIGTERM said in one line, from startup on.
. "$(dirname "$0")/lib.sh"
EV="$B/jepa-eval"

run usage "$EV"
expect_error "no arguments" 2 "missing RUN_DIR"

run norun "$EV" "$T/no-such-run"
expect_error "missing run directory" 2 "$T/no-such-run/spec.resolved.yaml"
run evrd "$EV" --random "$S/configs/fmnist-tiny.yaml" --set run.dir="$T/elsewhere"
expect_error "--set run.dir (jepa-eval writes no run directory)" 2 "--set run.dir=$T/elsewhere" "writes no run directory"

# --pixels with a world-model spec: raw-pixel probing needs labelled images,
# said in one line before the data is read (it said "the probe needs u8
# images" of the world data, or that data/tworoom did not exist, exit 1)
"$B/jepa-world" gen --out "$T/wd" --episodes 20 --steps 8 --quiet || bad "jepa-world gen failed"
run pxw "$EV" --pixels "$S/configs/world-tworoom.yaml" --set data.train="$T/wd" --set data.test="$T/wd"
expect_error "--pixels of a world spec refused" 2 "--pixels $S/configs/world-tworoom.yaml: objective world" \
  "raw-pixel probing needs labelled images"
run pxw2 "$EV" --pixels "$S/configs/world-tworoom.yaml" --set data.train="$T/no-such"
expect_error "--pixels of a world spec refused before its data is looked at" 2 "objective world" "labelled images"

# a real (tiny, 2-step) run to corrupt
RD="$T/run"
pack_fmnist

# SIGINT / SIGTERM while --export writes (the pixels of Fashion-MNIST:
# 60000 x 784 features, seconds of writing) leave nothing of it: neither
# its staging directory nor the directories it made (one that was there
# stays as it was); one line, the signal's status. Stopped before it writes,
# it has made no directory at all.
PXF=(--pixels "$S/configs/fmnist-tiny.yaml" "${DATA[@]}")
expect_stopped "--export" INT 130 "$T/exn/sub/.export-*/*" "--export $T/exn/sub" "$EV" "${PXF[@]}" --export "$T/exn/sub"
[ -e "$T/exn" ] && bad "SIGINT: --export left $(find "$T/exn" | tr '\n' ' ')" || ok "SIGINT: --export left no file, no directory"
mkdir "$T/exo" && touch "$T/exo/theirs"
expect_stopped "--export" TERM 143 "$T/exo/.export-*/*" "--export $T/exo" "$EV" "${PXF[@]}" --export "$T/exo"
[ "$(ls -A "$T/exo")" = theirs ] && ok "SIGTERM: the existing export directory as it was" ||
  bad "SIGTERM: --export left $(ls -A "$T/exo" | tr '\n' ' ')"
# stopped before the export: one line too (it died without a word), then
# the signal's status. The evaluation waits 30 s first (a test hook): the
# pixels' export could be written within the second (it was, on a fast
# machine with the data cached)
set -m; JEPA_DEBUG_SLOW_EVAL=30 "$EV" "${PXF[@]}" --export "$T/exe/sub" >/dev/null 2>"$T/exe.err" & pid=$!; set +m
sleep 1; kill -INT "$pid"; wait "$pid"; RC=$?; ERR=$(cat "$T/exe.err")
expect_error "SIGINT before the export" 130 "jepa-eval: interrupted by SIGINT: no figures, nothing written for --export $T/exe/sub"
[ ! -e "$T/exe" ] && ok "SIGINT before the export: no directory" || bad "SIGINT before the export: left $(find "$T/exe" | tr '\n' ' ')"
set -m; "$EV" "${PXF[@]}" >/dev/null 2>"$T/ext.err" & pid=$!; set +m
sleep 1; kill -TERM "$pid"; wait "$pid"; RC=$?; ERR=$(cat "$T/ext.err")
expect_error "SIGTERM during the evaluation, no --export" 143 "jepa-eval: interrupted by SIGTERM: no figures"
# stopped during startup (MPI_Init, the spec, the data check: the first
# half second, before its handlers were in place): the same one line (it
# died without a word), nothing made for --export, the signal's status.
# Singleton MPI's orted, cut off mid-init, may add its own line: ours
# counted alone (stderr appended to: the two write at their own offsets)
for d in 0.05 0.2; do
  for sig in INT TERM; do
    rm -f "$T/exs.err"
    set -m; "$EV" "${PXF[@]}" --export "$T/exs/sub" >/dev/null 2>>"$T/exs.err" & pid=$!; set +m
    for i in $(seq 5000); do [ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$EV")" ] && break; sleep 0.001; done
    sleep "$d"; kill -"$sig" "$pid"; wait "$pid"; RC=$?
    want="jepa-eval: interrupted by SIG$sig: no figures, nothing written for --export $T/exs/sub"
    mine=$(tr -d '\0' <"$T/exs.err" | grep '^jepa-eval')
    [ "$RC" -eq $((128 + $(kill -l "$sig"))) ] && [ "$mine" = "$want" ] && [ ! -e "$T/exs" ] \
      && ok "SIG$sig ${d}s after exec: one line, exit $RC, no --export directory" \
      || bad "SIG$sig ${d}s after exec: rc $RC: [$(tr -d '\0' <"$T/exs.err")]"
  done
done
"$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${DATA[@]}" --set run.dir="$RD" --set train.steps=2 \
  --set model.width=16 --set model.depth=1 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=8 \
  --set model.pred_depth=1 --set model.pred_heads=2 --set eval.probe=false \
  --set parallel.threads_per_rank=1 >/dev/null 2>&1 || bad "tiny training run failed"
CK="$RD/checkpoint.bin"
[ -s "$CK" ] && ok "checkpoint written" || bad "no checkpoint"
cp "$CK" "$T/good.bin"

# every figure of the image evaluation, and the features as .npy
FAST=(--set eval.max_iters=5 --set eval.knn_k=5)
run export "$EV" "$RD" --export "$T/exp" "${FAST[@]}"
[ "$RC" -eq 0 ] && ok "jepa-eval --export exits 0" || bad "jepa-eval --export: rc $RC: $ERR"
# one stderr line says what was written and where; stdout is the figures alone
L=$(printf '%s\n' "$ERR" | grep -c "^eval: exported train/test features and labels (60000 x 16, 10000 x 16) to $T/exp/{train,test}_{features,labels}.npy$")
[ "$L" -eq 1 ] && ok "--export: one line names the shapes and $T/exp" || bad "--export: $L 'eval: exported' lines: $ERR"
case "$OUT" in *exported*) bad "--export line on stdout: $OUT" ;; *) ok "--export line not on stdout" ;; esac
for k in knn_acc probe1pct_acc probe10pct_acc; do
  printf '%s\n' "$OUT" | grep -q "^$k 0\.[0-9]\{4\}$" && ok "prints $k" || bad "no $k line: $OUT"
done
case "$(printf '%s\n' "$OUT" | tail -n 1)" in "probe_acc 0."[0-9][0-9][0-9][0-9]) ok "probe_acc last" ;; *) bad "last line: $OUT" ;; esac
# the weight decay each probe chose: one of the default grid's values, as printed
for k in probe_wd probe1pct_wd probe10pct_wd; do
  v=$(printf '%s\n' "$OUT" | sed -n "s/^$k //p")
  case "$v" in 0.1000|0.0100|0.0010|0.0001|1e-05|0.0000) ok "prints $k ($v)" ;; *) bad "$k '$v': $OUT" ;; esac
done
# 5 iterations do not converge: said in a figure and in one warning naming the key
printf '%s\n' "$OUT" | grep -q '^probe_converged 0.0000$' && ok "probe_converged 0 at eval.max_iters=5" ||
  bad "no 'probe_converged 0.0000' line: $OUT"
case "$ERR" in *"warning: eval: the probe's fit"*"stopped at eval.max_iters"*) ok "warning names eval.max_iters" ;;
  *) bad "no capped-fit warning: $ERR" ;; esac
npy_shape() { head -c 128 "$1" | tr -cd "[:print:]" | sed -n "s/.*'shape': (\([0-9, ]*\)).*/\1/p"; }
[ "$(npy_shape "$T/exp/train_features.npy")" = "60000, 16" ] && ok "train_features.npy is (60000, 16)" ||
  bad "train_features.npy shape '$(npy_shape "$T/exp/train_features.npy")'"
[ "$(npy_shape "$T/exp/test_labels.npy")" = "10000," ] && ok "test_labels.npy is (10000,)" ||
  bad "test_labels.npy shape '$(npy_shape "$T/exp/test_labels.npy")'"
head -c 6 "$T/exp/test_features.npy" | grep -aq NUMPY && ok "test_features.npy has NumPy's magic" || bad "test_features.npy magic"
[ -z "$(ls -A "$T/exp" | grep '^\.')" ] && ok "no staging directory left in the export" || bad "left: $(ls -A "$T/exp")"
# figures written to a full disk are lost: one line, exit 1 (it exited 0)
expect_full "jepa-eval RUN" jepa-eval "$EV" "$RD" "${FAST[@]}"
# an export never replaces files, and a refused run leaves no directory behind
cp "$T/exp/test_labels.npy" "$T/tl.before"
run again "$EV" "$RD" --export "$T/exp" "${FAST[@]}"
expect_error "--export over an earlier export: refused before any work, a bad argument" 2 "$T/exp/train_features.npy" "already there"
# --export DIR anywhere on the line (before the run, it was read as RUN_DIR
# '--export'; between --random and its spec, as the spec)
run expfirst "$EV" --export "$T/exp" "$RD" "${FAST[@]}"
expect_error "--export DIR before RUN_DIR: the same refusal" 2 "$T/exp/train_features.npy" "already there"
run expmid "$EV" --random --export "$T/exp" "$S/configs/fmnist-tiny.yaml" "${DATA[@]}" "${FAST[@]}"
expect_error "--random --export DIR SPEC: the same refusal" 2 "$T/exp/train_features.npy" "already there"
cmp -s "$T/exp/test_labels.npy" "$T/tl.before" && ok "the earlier export unchanged" || bad "the earlier export changed"
run forexp "$EV" "$RD" --export "$T/ne/sub" --set model.pred_depth=2
expect_error "--export with a checkpoint of another config" 1 "$CK"
[ ! -e "$T/ne" ] && ok "the directories --export made are gone after the refusal" || bad "left $T/ne"
run noexp "$EV" "$RD" --export
expect_error "--export without a directory" 2 "--export needs a directory"
run twoexp "$EV" "$RD" --export "$T/e1" --export "$T/e2"
expect_error "--export twice: refused" 2 "--export given twice ($T/e1, then $T/e2)"
[ ! -e "$T/e1" ] && [ ! -e "$T/e2" ] && ok "no directory after --export twice" || bad "--export twice left a directory"
run twomodes "$EV" --random "$S/configs/fmnist-tiny.yaml" --pixels "$S/configs/fmnist-tiny.yaml"
expect_error "--random with --pixels: refused" 2 "--pixels: one mode per call"
run noprobe "$EV" "$RD" --set eval.probe=false
expect_error "--set eval.probe=false: refused, jepa-eval always evaluates" 2 "--set eval.probe=false" "always evaluates"
# missing parents are made, as mkdir -p (e2e_out_paths); a parent that is a file is not
touch "$T/afile"
run badexp "$EV" "$RD" --export "$T/afile/dir" "${FAST[@]}"
expect_error "--export under a file: refused before any work, a bad argument" 2 "$T/afile" "Not a directory"
# raw pixels through the same evaluation, on a small set (the full 784-pixel
# probe takes minutes): lib.sh's mkpix
export LC_ALL=C
mkdir -p "$T/px" && mkpix 600 "$T/px.raw" "$T/px.lab" && mkpix 200 "$T/pxt.raw" "$T/pxt.lab"
"$B/jepa-shard" pack --raw "$T/px.raw" --height 28 --width 28 --raw-labels "$T/px.lab" --out "$T/px/train" --quiet &&
  "$B/jepa-shard" pack --raw "$T/pxt.raw" --height 28 --width 28 --raw-labels "$T/pxt.lab" --out "$T/px/test" \
    --split test --quiet || bad "packing the pixel set failed"
run pixels "$EV" --pixels "$S/configs/fmnist-tiny.yaml" --set data.train="$T/px/train" \
  --set data.test="$T/px/test" --set eval.max_iters=20 --set eval.knn_k=5
case "$RC:$(printf '%s\n' "$OUT" | tail -n 1)" in "0:probe_acc "[01].[0-9][0-9][0-9][0-9]) ok "jepa-eval --pixels prints probe_acc" ;;
  *) bad "jepa-eval --pixels: rc $RC: $OUT $ERR" ;; esac
PX=$(printf '%s\n' "$OUT" | sed -n 's/^knn_acc //p')
run pixexp "$EV" --export "$T/pxe" --pixels "$S/configs/fmnist-tiny.yaml" --set data.train="$T/px/train" \
  --set data.test="$T/px/test" --set eval.max_iters=20 --set eval.knn_k=5
[ "$RC" -eq 0 ] && [ "$(npy_shape "$T/pxe/train_features.npy")" = "600, 784" ] && [ "$(npy_shape "$T/pxe/test_labels.npy")" = "200," ] \
  && ok "--export DIR before --pixels SPEC exports the pixels" || bad "--export first: rc $RC: $ERR"
run pixgrid "$EV" --pixels "$S/configs/fmnist-tiny.yaml" --set data.train="$T/px/train" \
  --set data.test="$T/px/test" --set eval.max_iters=20 --set eval.knn_k=5 --set eval.wd_min=0.1 --set eval.wd_zero=false
printf '%s\n' "$OUT" | grep -q '^probe_wd 0.1000$' && ok "a one-value grid (eval.wd_min 0.1, no 0) prints probe_wd 0.1000" ||
  bad "one-value grid: rc $RC: $OUT $ERR"
awk -v a="$PX" 'BEGIN { exit !(a > 0.9) }' && ok "pixels separate the brightness bands (kNN $PX)" ||
  bad "pixel kNN $PX on separable data"
# eval.precision: bf16 (bfloat16 products in the features' encoder): where
# the CPU has no AVX512_BF16 (JEPA_DEBUG_NO_BF16=1 says so here), jepa-eval
# and jepa-train refuse in one line before any work, and jepa-train makes
# no run directory; a value outside the enum is a bad argument
PXS=(--set data.train="$T/px/train" --set data.test="$T/px/test" --set eval.max_iters=20 --set eval.knn_k=5
  --set model.width=32 --set model.depth=2 --set model.heads=2 --set eval.pool_blocks=1)
run bf16no env JEPA_DEBUG_NO_BF16=1 "$EV" --random "$S/configs/fmnist-tiny.yaml" "${PXS[@]}" --set eval.precision=bf16
expect_error "eval.precision: bf16 without AVX512_BF16: jepa-eval refuses" 1 "jepa-eval: eval.precision: bf16: " "AVX512_BF16" "use fp32"
run bf16tr env JEPA_DEBUG_NO_BF16=1 "$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${PXS[@]}" --set eval.precision=bf16 \
  --set run.dir="$T/bf16run" --set train.steps=2
expect_error "eval.precision: bf16 without AVX512_BF16: jepa-train refuses before training" 4 "jepa-train: eval.precision: bf16: "
[ ! -e "$T/bf16run" ] && ok "the refused jepa-train made no run directory" || bad "left $T/bf16run: $(ls -A "$T/bf16run")"
run bf16bad "$EV" --random "$S/configs/fmnist-tiny.yaml" --set eval.precision=fp16
expect_error "eval.precision=fp16: a bad argument naming the key" 2 "--set eval.precision=fp16" "fp32, bf16"
run bf16 "$EV" --random "$S/configs/fmnist-tiny.yaml" "${PXS[@]}" --set eval.precision=bf16
case "$ERR" in
  *"this CPU has no AVX512_BF16"*|*"this build has no AVX-512"*)
    expect_error "eval.precision: bf16 on this machine (no bfloat16 products): refused" 1 "eval.precision: bf16: " ;;
  *) case "$RC:$(printf '%s\n' "$OUT" | tail -n 1)" in
       "0:probe_acc "[01].[0-9][0-9][0-9][0-9]) ok "eval.precision: bf16 evaluates (probe_acc printed)" ;;
       *) bad "eval.precision: bf16: rc $RC: $OUT $ERR" ;; esac
     case "$ERR" in *"features (600 x 32 + 200 x 32, bf16 products)"*) ok "the features line says bf16 products" ;;
       *) bad "no 'bf16 products' in the features line: $ERR" ;; esac ;;
esac
# more than 10 classes (any pack holds up to 256): the probes take the
# data's class count (it was a fixed 10: "knn: test label 10 at row 10 >=
# nclass 10", exit 1, after a whole training). 20 classes, two per band;
# 2 ranks too (rank 1 scores kNN and the few-label probes)
awk 'BEGIN { for (i = 0; i < 600; i++) printf "%c", i % 20 }' > "$T/px20.lab"
awk 'BEGIN { for (i = 0; i < 200; i++) printf "%c", i % 20 }' > "$T/pxt20.lab"
"$B/jepa-shard" pack --raw "$T/px.raw" --height 28 --width 28 --raw-labels "$T/px20.lab" --out "$T/px20/train" --quiet &&
  "$B/jepa-shard" pack --raw "$T/pxt.raw" --height 28 --width 28 --raw-labels "$T/pxt20.lab" --out "$T/px20/test" \
    --split test --quiet || bad "packing the 20-class set failed"
C20=(--set data.train="$T/px20/train" --set data.test="$T/px20/test" --set eval.max_iters=20 --set eval.knn_k=5)
for np in 1 2; do
  run px20 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 "${JEPA_MPIEXEC:-mpirun}" -np $np "$EV" --pixels "$S/configs/fmnist-tiny.yaml" "${C20[@]}"
  case "$RC:$(printf '%s\n' "$OUT" | tail -n 1)" in "0:probe_acc "[01].[0-9][0-9][0-9][0-9]) ok "--pixels of 20 classes, $np rank(s)" ;;
    *) bad "--pixels of 20 classes, $np rank(s): rc $RC: $ERR" ;; esac
done
run rnd20 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 "${JEPA_MPIEXEC:-mpirun}" -np 2 "$EV" --random "$S/configs/fmnist-tiny.yaml" "${C20[@]}" \
  --set model.width=32 --set model.depth=2 --set model.heads=2 --set eval.pool_blocks=1
printf '%s\n' "$OUT" | grep -q '^knn_acc 0\.[0-9]' && [ "$RC" -eq 0 ] && ok "--random of 20 classes, 2 ranks: kNN and probes" ||
  bad "--random of 20 classes: rc $RC: $ERR"
# class folders: a split that lacks a class folder shifts every label
# after it (as torchvision's ImageFolder does): refused in one line naming
# the label and both names (it scored 0.0000 against the wrong classes);
# one that lacks only the last class is the same labelling, and evaluates
k=0
for c in ant bee cat; do
  mkdir -p "$T/cf/tr/$c"; [ "$c" = cat ] || mkdir -p "$T/cf/ok/$c"; [ "$c" = ant ] || mkdir -p "$T/cf/te/$c"
  for i in 1 2 3 4 5 6 7 8 9 10; do k=$((k + 1)); "$B/png-mk" "$T/cf/tr/$c/$i.png" grey 8 8 "$k" || bad "png-mk"
    [ "$c" = cat ] || cp "$T/cf/tr/$c/$i.png" "$T/cf/ok/$c/"; [ "$c" = ant ] || cp "$T/cf/tr/$c/$i.png" "$T/cf/te/$c/"; done
done
for sp in tr te ok; do "$B/jepa-shard" pack --image-dir "$T/cf/$sp" --class-dirs --out "$T/cf/$sp.d" --quiet || bad "pack $sp"; done
CF=(--set model.img_size=8 --set eval.max_iters=5 --set eval.knn_k=3 --set eval.fewlabel=false --set data.train="$T/cf/tr.d")
run cfbad "$EV" --pixels "$S/configs/fmnist-tiny.yaml" "${CF[@]}" --set data.test="$T/cf/te.d"
expect_error "test split without the first class folder: refused" 1 \
  "data.test $T/cf/te.d: label 0 is class 'bee', in data.train ($T/cf/tr.d) 'ant': the splits' class folders differ"
run cfok "$EV" --pixels "$S/configs/fmnist-tiny.yaml" "${CF[@]}" --set data.test="$T/cf/ok.d"
[ "$RC" -eq 0 ] && ok "test split without the last class folder: evaluated" || bad "without the last class: rc $RC: $ERR"
run nopix "$EV" --pixels
expect_error "--pixels without a spec" 2 "--pixels needs SPEC.yaml"

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

# a FIFO where a checkpoint, RUN/latest or a shard is read: refused in one
# line naming it, not waited on (a FIFO's blocking open waits for a writer
# forever, SIGTERM ignored: timeout -k's exit 124 or 137 is that hang)
mkfifo "$CK"
run ckfifo timeout -k 5 20 "$EV" "$RD"
expect_error "checkpoint.bin a FIFO: refused, not waited on" 1 "$CK: not a regular file"
rm -f "$CK" && mkfifo "$RD/latest"
run latestfifo timeout -k 5 20 "$EV" "$RD"
expect_error "no checkpoint.bin, RUN/latest a FIFO: refused, not waited on" 1 "$RD/latest: not a regular file"
rm -f "$RD/latest"
cp -r "$T/px/train" "$T/pxf" && rm "$T/pxf/shard-00000.jshard" && mkfifo "$T/pxf/shard-00000.jshard"
run pxfifo timeout -k 5 20 "$EV" --pixels "$S/configs/fmnist-tiny.yaml" --set data.train="$T/pxf" --set data.test="$T/px/test" \
  --export "$T/pxfe"
expect_error "--pixels, a FIFO shard: refused, not waited on" 1 "$T/pxf/shard-00000.jshard: not a regular file"
[ ! -e "$T/pxfe" ] && ok "--pixels with a FIFO shard: nothing exported" || bad "--pixels with a FIFO shard made $T/pxfe"

finish
