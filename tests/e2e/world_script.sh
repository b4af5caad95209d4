#!/usr/bin/env bash
# scripts/world.sh as a new user meets it, in a copy of the source tree's
# scripts/ and configs/ under $T (the script works where it lives, so the
# data it generates stays out of the source tree):
#   - --help and -h print the usage on stdout and exit 0, and nothing runs:
#     a fake build directory's jepa-world/jepa-train record any call, and no
#     data/ or runs/ appears (--help used to start generating data);
#   - an unknown argument, and --set without key=value: one line naming it,
#     exit 2, nothing run or made; --set=key=value (one word) is taken as jepa-train takes it;
#   - a real run, shortened (3 steps of a tiny model at 2 ranks): it generates
#     data/tworoom/train and test (whole, verified, no staging left), exits
#     0, ends with pos_r2 and writes a world summary.json (about 10 s).
. "$(dirname "$0")/lib.sh"
W="$T/src"
mkdir -p "$W" "$T/fake" && cp -r "$S/scripts" "$S/configs" "$W/" || { bad "cannot copy the scripts"; finish; exit 1; }
for p in jepa-shard jepa-world jepa-train; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$p" "$T" >"$T/fake/$p" && chmod +x "$T/fake/$p"
done
nothing_ran() { # DESC
  [ ! -e "$T/calls" ] && [ ! -e "$W/data" ] && [ ! -e "$W/runs" ] && ok "$1: nothing run or made" \
    || bad "$1: ran $(cat "$T/calls" 2>/dev/null | tr '\n' ';') made $(ls "$W" | tr '\n' ' ')"
}

for h in --help -h; do
  run help env JEPA_BUILD="$T/fake" bash "$W/scripts/world.sh" "$h"
  [ "$RC" -eq 0 ] && [ -z "$ERR" ] && case "$OUT" in "usage: scripts/world.sh [--set key=value ...]"*) true ;; *) false ;; esac \
    && printf '%s\n' "$OUT" | grep -q -- '-h, --help' \
    && ok "world.sh $h: usage on stdout, exit 0" || bad "world.sh $h: rc $RC, out '$OUT', err '$ERR'"
  nothing_ran "world.sh $h"
done
run help2 env JEPA_BUILD="$T/fake" bash "$W/scripts/world.sh" --set train.steps=3 --help
[ "$RC" -eq 0 ] && case "$OUT" in usage:*) true ;; *) false ;; esac && ok "--help after a --set: usage, exit 0" \
  || bad "--set ... --help: rc $RC: $OUT $ERR"
nothing_ran "--help after a --set"

run bad env JEPA_BUILD="$T/fake" bash "$W/scripts/world.sh" --bogus
expect_error "world.sh --bogus refused" 2 "world.sh: unknown argument '--bogus'" "--set key=value" "--help"
nothing_ran "world.sh --bogus"
run bad2 env JEPA_BUILD="$T/fake" bash "$W/scripts/world.sh" --set train.steps
expect_error "world.sh --set without =value refused" 2 "world.sh: --set needs key=value, got 'train.steps'"
nothing_ran "world.sh --set train.steps"

# a data/tworoom/train or test that is there and is no data set (no
# manifest.json) is not the script's to replace: one line, exit 2, nothing
# run or touched (it was deleted: rm -rf data/tworoom/train)
mkdir -p "$W/data/tworoom/train" && echo precious >"$W/data/tworoom/train/notes.txt"
run notds env JEPA_BUILD="$T/fake" bash "$W/scripts/world.sh"
expect_error "world.sh: data/tworoom/train a directory of other files" 2 \
  "world.sh: data/tworoom/train exists and is not a jepa-shard data set (no manifest.json)"
[ ! -e "$T/calls" ] && [ "$(cat "$W/data/tworoom/train/notes.txt" 2>/dev/null)" = precious ] \
  && [ "$(ls -A "$W/data/tworoom" | tr '\n' ' ')" = "train " ] && [ "$(ls -A "$W/data/tworoom/train")" = notes.txt ] \
  && ok "data/tworoom/train untouched, nothing run" || bad "ran $(cat "$T/calls" 2>/dev/null) left $(ls -AR "$W/data" | tr '\n' ' ')"
rm -rf "$W/data" && mkdir -p "$W/data/tworoom" && echo precious >"$W/data/tworoom/test"
run notds2 env JEPA_BUILD="$T/fake" bash "$W/scripts/world.sh"
expect_error "world.sh: data/tworoom/test a regular file" 2 "world.sh: data/tworoom/test exists and is not a jepa-shard data set"
[ ! -e "$T/calls" ] && [ "$(cat "$W/data/tworoom/test")" = precious ] && [ "$(ls -A "$W/data/tworoom")" = test ] \
  && ok "data/tworoom/test untouched, nothing run" || bad "ran $(cat "$T/calls" 2>/dev/null) left $(ls -A "$W/data/tworoom" | tr '\n' ' ')"
rm -rf "$W/data" "$T/calls"

# ---- a real run, shortened
SMALL=(--set model.width=16 --set model.depth=1 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --set world.embed_dim=16
       --set sigreg.directions=32 --set train.batch_per_rank=8 --set=train.steps=3 --set train.minutes=0
       --set run.dir="$T/run")
run real env JEPA_BUILD="$B" bash "$W/scripts/world.sh" "${SMALL[@]}"
[ "$RC" -eq 0 ] && ok "world.sh, 3 steps: exit 0" || bad "world.sh run: rc $RC: $ERR"
for sp in train test; do
  "$B/jepa-shard" verify "$W/data/tworoom/$sp" >/dev/null 2>&1 && ok "data/tworoom/$sp generated and verifies" \
    || bad "data/tworoom/$sp missing or damaged"
done
ls -a "$W/data/tworoom" | grep -q '\.gen-' && bad "staging left: $(ls -a "$W/data/tworoom")" || ok "no staging directory left"
case "$(printf '%s\n' "$OUT" | tail -n 1)" in "pos_r2 "*) ok "last line: pos_r2" ;; *) bad "last line: $(printf '%s\n' "$OUT" | tail -n 1)" ;; esac
grep -q '"objective": "world"' "$T/run/summary.json" 2>/dev/null && grep -q '"steps": 3,' "$T/run/summary.json" \
  && grep -q '"ranks": 2,' "$T/run/summary.json" && ok "summary.json: world, 3 steps, 2 ranks" \
  || bad "summary.json: $(cat "$T/run/summary.json" 2>&1)"
finish
