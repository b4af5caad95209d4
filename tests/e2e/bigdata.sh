#!/usr/bin/env bash
# Data larger than memory (issue 17 §0): no rank holds a whole data set.
# Pixel statistics come from the manifest (or one streaming pass for an
# older, version 1 manifest), the probe streams its images and keeps only
# features, so a rank's peak RSS follows the features, not the pixels.
#   bigdata.sh        two 128x128 sets of 1,000 and 8,000 records (16 vs 131
#                     MB of pixels): train 3 steps at 2 ranks and probe; each
#                     rank's peak RSS may grow by < 24 MB (the features are
#                     0.5 MB; loading the set would add >= 115 MB); ~30 s
#   bigdata.sh long   a 256x256 set of 3.1 GB of pixels against a 1 GB cap
#                     per rank: trains and probes at 2 ranks, then jepa-eval
#                     --random on it as a version 1 manifest (streaming
#                     statistics pass); the data is deleted at the end
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
MODE="${1:-small}"
TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then echo "SKIP: $TIME (GNU time) is needed for peak RSS"; exit 77; fi
SPEC="$S/configs/fmnist-tiny.yaml"
# a tiny encoder: an 8x8 grid of patches whatever the side
tiny() { # SIDE
  echo --set model.img_size="$1" --set model.patch=$(($1 / 8)) --set lejepa.local_size=$(($1 / 4)) \
    --set model.width=16 --set model.depth=1 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=8 \
    --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=3 --set train.minutes=0 \
    --set train.batch_per_rank=16 --set parallel.threads_per_rank=1 --set data.shuffle_buffer=256 \
    --set data.prefetch=2 --set eval.max_iters=30 --set eval.fewlabel=false
}
# rss_of PREFIX: the largest peak RSS (KB) of the ranks' files
rss_of() { cat "$1".* 2>/dev/null | sed -n 's/^maxrss_kb \([0-9]*\)$/\1/p' | sort -n | tail -n 1; }
ranks_of() { cat "$1".* 2>/dev/null | grep -c '^maxrss_kb '; }

# train_probe NAME SIDE DATA_DIR: 2 ranks, 3 steps, the probe; RC, $T/NAME.err,
# peak RSS in $T/NAME.rss.RANK
train_probe() {
  "$MPI" -np 2 "$S/tests/e2e/with_rss.sh" "$TIME" "$T/$1.rss" "$B/jepa-train" "$SPEC" $(tiny "$2") \
    --set run.dir="$T/run-$1" --set data.train="$3/train" --set data.test="$3/test" \
    >"$T/$1.out" 2>"$T/$1.err"
  RC=$?
}

if [ "$MODE" = small ]; then
  for n in 1000 8000; do
    "$B/shard-mkbig" "$T/d$n/train" $n 128 1 64 >/dev/null &&
      "$B/shard-mkbig" "$T/d$n/test" 500 128 1 64 test >/dev/null || bad "making the $n-record set failed"
  done
  grep -q '"pixel_stats": {"count": 131072000,' "$T/d8000/train/manifest.json" &&
    ok "the packer wrote pixel_stats (manifest version 4)" || bad "no pixel_stats in the manifest"
  train_probe small "128" "$T/d1000"
  [ "$RC" -eq 0 ] || bad "1,000 records: rc $RC: $(tail -n 3 "$T/small.err")"
  train_probe big "128" "$T/d8000"
  [ "$RC" -eq 0 ] || bad "8,000 records: rc $RC: $(tail -n 3 "$T/big.err")"
  A=$(rss_of "$T/small.rss"); Bk=$(rss_of "$T/big.rss")
  [ "$(ranks_of "$T/big.rss")" = 2 ] && ok "each rank's peak RSS measured" || bad "rank RSS files: $(cat "$T"/big.rss.*)"
  echo "peak RSS per rank: 1,000 records (16 MB of pixels) ${A} KB, 8,000 records (131 MB) ${Bk} KB"
  [ -n "$A" ] && [ -n "$Bk" ] && [ $((Bk - A)) -lt 24576 ] &&
    ok "8x the pixels: peak RSS +$((Bk - A)) KB (< 24 MB; the pixels grew by 115 MB)" ||
    bad "peak RSS grew from ${A:-?} to ${Bk:-?} KB"
  P=$(sed -n 's/^probe_acc //p' "$T/big.out")
  case "$P" in 0.[5-9]*|1.*) ok "the streamed probe pairs features with their labels (probe_acc $P)" ;;
    *) bad "probe_acc '$P' (labels misaligned?)" ;; esac
  finish
  exit
fi

# long: ~3.1 GB of pixels (48,000 records of 256x256), 1 GB per rank
CAP_KB=1048576
D="$T/big"
"$B/shard-mkbig" "$D/train" 48000 256 1 32 >/dev/null &&
  "$B/shard-mkbig" "$D/test" 2000 256 1 32 test >/dev/null || bad "making the 3 GB set failed"
RAW=$(( (48000 + 2000) * (65536 + 1) ))
echo "data set: $RAW bytes raw ($(du -sh "$D" | cut -f1) on disk)"
t0=$(date +%s)
train_probe long 256 "$D"
[ "$RC" -eq 0 ] && ok "trained 3 steps and probed 3.1 GB of pixels at 2 ranks ($(( $(date +%s) - t0 )) s)" ||
  bad "long run: rc $RC: $(tail -n 3 "$T/long.err")"
cat "$T"/long.rss.* | while read -r _ kb; do echo "rank peak RSS $kb KB against $RAW bytes of data"; done
R=$(rss_of "$T/long.rss")
[ -n "$R" ] && [ "$R" -lt "$CAP_KB" ] && ok "every rank's peak RSS (max $R KB) under 1 GB with 3.1 GB of pixels" ||
  bad "peak RSS ${R:-?} KB"
grep -q '^probe_acc 0\.[5-9]' "$T/long.out" && ok "probe_acc $(sed -n 's/^probe_acc //p' "$T/long.out")" ||
  bad "probe: $(cat "$T/long.out")"
# the same data as a version 1 manifest: statistics by a streaming pass
M="$D/train/manifest.json"
# (what an older build wrote: no pixel_stats, no crc32 member)
sed -i -e '/"pixel_stats"/d' -e '/^  "crc32": /d' -e 's/^  \],$/  ]/' -e 's/"version": 4/"version": 1/' "$M"
"$MPI" -np 2 "$S/tests/e2e/with_rss.sh" "$TIME" "$T/v1.rss" "$B/jepa-eval" --random "$SPEC" $(tiny 256) \
  --set data.train="$D/train" --set data.test="$D/test" >"$T/v1.out" 2>"$T/v1.err"
RC=$?
R=$(rss_of "$T/v1.rss")
[ "$RC" -eq 0 ] && [ -n "$R" ] && [ "$R" -lt "$CAP_KB" ] &&
  ok "version 1 manifest: streaming statistics pass and probe, peak RSS $R KB" ||
  bad "version 1 manifest: rc $RC, RSS ${R:-?} KB: $(tail -n 3 "$T/v1.err")"
rm -rf "$D"
finish
