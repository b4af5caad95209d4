#!/usr/bin/env bash
# jepa-world end to end: gen a small Two-Room set, verify it with jepa-shard,
# check its schema and that its bytes agree with jepa-world render, bitwise
# reproducibility from the seed, and every bad flag (a flag given twice,
# limits, a data set larger than the free space): one clear line naming the
# flag/value, a non-zero exit, no dataset left behind; SIGTERM/SIGINT leave
# no staging directory. render's format follows --out's extension (.pgm,
# .png; anything else refused up front; a .png's decoded pixels = the .pgm's),
# a PNG wider than libpng's default row limit included.
. "$(dirname "$0")/lib.sh"
JW="$B/jepa-world"
JS="$B/jepa-shard"
D="$T/ds"

# --- help and info
run help "$JW" --help
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "gen    --out DIR --episodes N"; then ok "--help"; else bad "--help: $RC $OUT"; fi
run info "$JW" info --set door_width=0.3
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "observation  (1, 32, 32) u8" &&
   printf '%s' "$OUT" | grep -Eq "door_width += 0.3 "; then ok "info"; else bad "info: $RC $OUT $ERR"; fi
expect_full "info" jepa-world "$JW" info # it exited 0
# the substeps of a full-length step: ceil(max_action / min(radius / 2, 0.9 wall)), 0.06 / 0.025 -> 3, 0.06 / 0.0005 -> 120
run infos "$JW" info --set radius=0.001
printf '%s' "$OUT" | grep -q "^step work    120 substeps a full-length step" && "$JW" info | grep -q "^step work    3 substeps" &&
  ok "info: the substeps of a step" || bad "info step work: $OUT"

# --- usage errors: exit 2, one line naming the flag/value
run nocmd "$JW"
expect_error "no command" 2 "missing COMMAND"
run badcmd "$JW" frobnicate
expect_error "unknown command" 2 "frobnicate"
run noout "$JW" gen --episodes 5
expect_error "gen without --out" 2 "--out"
run noeps "$JW" gen --out "$D"
expect_error "gen without --episodes" 2 "--episodes"
run eps0 "$JW" gen --out "$D" --episodes 0
expect_error "zero episodes" 2 "--episodes 0" "out of range"
run epsx "$JW" gen --out "$D" --episodes lots
expect_error "episodes not a number" 2 "--episodes lots" "not a whole number"
run steps1 "$JW" gen --out "$D" --episodes 5 --steps 1
expect_error "one step" 2 "--steps 1" "[2, 65535]"
run seedneg "$JW" gen --out "$D" --episodes 5 --seed -3
expect_error "negative seed" 2 "--seed -3"
run level "$JW" gen --out "$D" --episodes 5 --level 40
expect_error "level out of range" 2 "--level 40"
run size "$JW" gen --out "$D" --episodes 5 --size 3
expect_error "size out of range" 2 "--size 3" "out of range"
run sizef "$JW" gen --out "$D" --episodes 5 --size 32.5
expect_error "size not whole" 2 "--size 32.5" "not a whole number"
run setk "$JW" gen --out "$D" --episodes 5 --set nosuch=1
expect_error "unknown parameter" 2 "--set nosuch=1" "unknown parameter 'nosuch'"
run setv "$JW" gen --out "$D" --episodes 5 --set radius=big
expect_error "parameter not a number" 2 "--set radius=big" "'big' is not a number"
run door "$JW" gen --out "$D" --episodes 5 --set door_width=2
expect_error "door outside the arena" 2 "door_width 2" "leaves the arena"
# parameters that were time bombs (accepted, then a step or a state drawn at a crawl)
run substeps "$JW" gen --out "$T/lim" --episodes 5 --set radius=1e-6 --set wall=1e-6 --set max_action=0.9
expect_error "more than 2^20 substeps a step" 2 "max_action 0.9" "1.8e+06 substeps" "at most 1048576"
run tight "$JW" gen --out "$T/lim" --episodes 5 --set wall=0.8 --set radius=0.0499999 --set door_width=0.05
expect_error "under 1/1000 of the arena free" 2 "wall 0.8, door_width 0.05, radius 0.0499999 leave" "at least 0.001"
[ -e "$T/lim" ] && bad "a refused world wrote $T/lim" || ok "nothing written for refused parameters"
run world "$JW" gen --out "$D" --episodes 5 --world mazes
expect_error "unknown world" 2 "--world mazes" "tworoom"
run flag "$JW" gen --out "$D" --episodes 5 --frobnicate
expect_error "unknown flag" 2 "--frobnicate"
run val "$JW" gen --out "$D" --episodes 5 --steps
expect_error "flag without value" 2 "--steps needs a value"
run split "$JW" gen --out "$D" --episodes 5 --split a/b
expect_error "bad split" 2 "split name 'a/b'"
# missing parents are made, as mkdir -p (e2e_out_paths); a parent that is a file is not
touch "$T/afile"
run parent "$JW" gen --out "$T/afile/dir" --episodes 5
expect_error "parent directory is a file" 1 "$T/afile" "Not a directory"
run rzoom "$JW" render --out "$T/f.pgm" --zoom 0
expect_error "render zoom 0" 2 "--zoom 0"
run rout "$JW" render
expect_error "render without --out" 2 "--out"
# a setting given twice is a mistake to say, not an override to apply silently
run twice "$JW" gen --out "$D" --episodes 4 --episodes 5
expect_error "--episodes twice" 2 "--episodes 5" "already given as --episodes 4"
run twosp "$JW" gen --out "$D" --episodes 4 --size 16 --set size=32
expect_error "--size and --set size=" 2 "--set size=32" "already given by --size 16"
run twoset "$JW" info --set radius=0.04 --set radius=0.05
expect_error "--set radius twice" 2 "--set radius=0.05" "--set radius=0.04"
run twow "$JW" gen --out "$D" --episodes 4 --world tworoom --world tworoom
expect_error "--world twice" 2 "--world tworoom: already given"
run twoz "$JW" render --out "$T/z.pgm" --zoom 1 --zoom 2
expect_error "render --zoom twice" 2 "--zoom 2" "already given as --zoom 1"
[ -e "$T/z.pgm" ] && bad "render wrote despite --zoom twice" || ok "render wrote nothing"
# shard/'s limits named by the options that pass them
run rec "$JW" gen --out "$D" --episodes 1 --steps 100 --size 1024
expect_error "an episode over the record limit" 2 "--steps 100" "--size 1024" "67108864" "at most --steps 63"
run recd "$JW" gen --out "$D" --episodes 1 --steps 65535
expect_error "default size, too many steps" 2 "--steps 65535" "1x32x32 frames" "at most --steps"
run frm "$JW" gen --out "$D" --episodes 1 --steps 60 --set size=1024
expect_error "a frame over the frame limit" 2 "--frame-records 16 (the default)" "--set size=1024" \
  "at most --frame-records 4"
run shards "$JW" gen --out "$D" --episodes 1048577 --steps 2 --size 4 --shard-records 1
expect_error "more shards than a data set holds" 2 "--episodes 1048577 with --shard-records 1" \
  "at least --shard-records 2"
# a data set that cannot fit the free space is refused before anything is written
run space "$JW" gen --out "$D" --episodes 99999999999 --shard-records 268435456
expect_error "--episodes beyond the free space" 2 "--episodes 99999999999: about" "TB of shards" \
  "measured on the first 16" "free on $T"
# the shape is checked before the space (which pays for a compressed sample)
run order "$JW" gen --out "$D" --episodes 99999999999
expect_error "too many shards and too little space: the shape is said" 2 \
  "--episodes 99999999999 with --shard-records 1024 (the default)" "at least --shard-records"
case "$ERR" in *"free on"*) bad "the space check ran before the shape check: $ERR" ;; esac
# a filesystem that reports no size (f_blocks 0: tmpfs size=0, FUSE, /proc
# here) has unknown free space, not none: gen goes on to the writer
if [ "$(stat -f -c %b /proc 2>/dev/null)" = 0 ]; then
  run nosize "$JW" gen --out /proc/jepa-world-test/d --episodes 1
  expect_error "no free-space check on a filesystem without a size" 1 \
    "cannot create directory /proc/jepa-world-test"
  case "$ERR" in *"free on"*) bad "refused for space on a filesystem without a size: $ERR" ;; esac
fi
if [ -e "$D" ] || ls -a "$T" | grep -q partial; then bad "a failed gen left output behind"; else ok "no output after failures"; fi

# --- a small set: 3 shards, verified, schema as documented
run gen "$JW" gen --out "$D" --episodes 150 --steps 12 --seed 7 --shard-records 64 --frame-records 8
if [ "$RC" -eq 0 ] && [ -z "$ERR" ] &&
   printf '%s' "$OUT" | grep -Eq "generated 150 episodes of tworoom \(T=12, 1x32x32 frames, seed 7\) into .*: 3 shards" &&
   printf '%s' "$OUT" | grep -Eq "[0-9.]+% of episodes cross between regions; [0-9.]+ s"; then
  ok "gen summary"; else bad "gen: rc $RC out '$OUT' err '$ERR'"; fi
run verify "$JS" verify "$D"
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "ok: 3 shards, 19 frames, 150 records"; then
  ok "jepa-shard verify"; else bad "verify: $RC $OUT $ERR"; fi
run info "$JS" info "$D"
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "frames u8 \[12,1,32,32\] (12288 bytes at offset 0)" &&
   printf '%s' "$OUT" | grep -q "actions f32 \[11,2\] (88 bytes at offset 12288)" &&
   printf '%s' "$OUT" | grep -q "state f32 \[12,2\] (96 bytes at offset 12376)"; then
  ok "schema frames/actions/state"; else bad "shard info: $OUT $ERR"; fi

# --- the shard's frame 0 of episode 100 is what render draws for it
"$JS" cat "$D" --index 100 --format raw > "$T/rec.raw" 2>"$T/err"
"$JW" render --out "$T/e100.pgm" --seed 7 --episode 100 --steps 1 --zoom 1
if [ "$(stat -c %s "$T/rec.raw")" -eq 12472 ] &&
   cmp -s <(head -c 1024 "$T/rec.raw") <(tail -c 1024 "$T/e100.pgm") &&
   head -c 13 "$T/e100.pgm" | cmp -s - <(printf 'P5\n32 32\n255\n'); then
  ok "record bytes = render of (seed, episode)"; else bad "record vs render differ: $(cat "$T/err")"; fi
run e101 "$JW" render --out "$T/e101.pgm" --seed 7 --episode 101 --steps 1 --zoom 1
if [ "$RC" -ne 0 ] || [ "$(stat -c %s "$T/e101.pgm" 2>/dev/null)" != $((13 + 1024)) ]; then
  bad "render of episode 101: rc $RC: $ERR"
elif cmp -s <(head -c 1024 "$T/rec.raw") <(tail -c 1024 "$T/e101.pgm"); then
  bad "episodes 100 and 101 start alike"; else ok "episodes differ"; fi
run strip "$JW" render --out "$T/strip.pgm" --seed 7 --episode 3 --steps 5 --zoom 2
if [ "$RC" -eq 0 ] && head -c 14 "$T/strip.pgm" | cmp -s - <(printf 'P5\n320 64\n255\n') &&
   [ "$(stat -c %s "$T/strip.pgm")" -eq $((14 + 320 * 64)) ]; then ok "render strip"; else bad "render strip: $ERR"; fi

# --- the format follows --out's extension, in any case: .png is the same
# strip as an 8-bit grey PNG (it was a PGM named .png), made through mkdir -p
run spng "$JW" render --out "$T/png/sub/strip.PNG" --seed 7 --episode 3 --steps 5 --zoom 2
# the signature, then IHDR: length 13, "IHDR", width 320, height 64, depth 8, colour type 0 (grey)
HD=$(od -An -tx1 -N 26 "$T/png/sub/strip.PNG" 2>/dev/null | tr -d ' \n')
[ "$RC" -eq 0 ] && [ "$HD" = "89504e470d0a1a0a0000000d4948445200000140000000400800" ] && [ -z "$ERR" ] &&
  ok "render .PNG: a PNG, 320 x 64, 8-bit grey" || bad "render .PNG (rc $RC): header $HD: $ERR"
# its pixels, decoded by libpng, are the .pgm strip's byte for byte; and
# png-cmp tells another episode's strip of the same size apart
if "$B/png-cmp" "$T/png/sub/strip.PNG" "$T/strip.pgm" 2>"$T/err.cmp"; then
  ok "render .PNG: the same pixels as the .pgm"; else bad "render .PNG pixels: $(cat "$T/err.cmp")"; fi
"$JW" render --out "$T/strip4.pgm" --seed 7 --episode 4 --steps 5 --zoom 2
"$B/png-cmp" "$T/png/sub/strip.PNG" "$T/strip4.pgm" 2>"$T/err.cmp"
[ $? -eq 1 ] && grep -q "differ at row" "$T/err.cmp" && ok "png-cmp: another episode differs" ||
  bad "png-cmp did not tell episodes 3 and 4 apart: $(cat "$T/err.cmp")"
ls "$T/png/sub" | grep -q tmp && bad "render .PNG left $(ls "$T/png/sub")" || ok "render .PNG: no temporary file left"
# anything else refused before any work (the world's parameters unread),
# one line naming the path, exit 2, nothing written (no directory made)
for o in "$T/nope/x.jpg" "$T/nope/strip" "$T/nope.png/strip" "$T/nope/x.pgm.bak"; do
  run bext "$JW" render --out "$o" --set nonesuch=1
  expect_error "render --out $o refused" 2 "--out $o: not a .pgm or .png file name"
done
[ -e "$T/nope" ] || [ -e "$T/nope.png" ] && bad "a refused render wrote $(ls -d "$T"/nope*)" || ok "refused renders wrote nothing"
# a strip wider than libpng's default limit of 1,000,000 pixels a row (1024
# steps x 64 x zoom 16: 1,048,576 x 1024): its IHDR written, then SIGTERM
# (the whole would take about 10 s) leaves nothing
set -m
"$JW" render --out "$T/rpng/long.png" --steps 1024 --size 64 --zoom 16 2>"$T/err.png" & pid=$!
set +m
f=""
for i in $(seq 1500); do
  f=$(compgen -G "$T/rpng/long.png.tmp-*") && [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -ge 26 ] && break; f=""; sleep 0.02
done
HD=$([ -n "$f" ] && od -An -tx1 -N 26 "$f" | tr -d ' \n')
kill -TERM "$pid"; wait "$pid"; RC=$?; ERR=$(cat "$T/err.png")
[ "$HD" = "89504e470d0a1a0a0000000d4948445200100000000004000800" ] && ok "a 1,048,576-pixel-wide PNG strip: its IHDR" ||
  bad "the wide PNG strip's header: '$HD': $ERR"
expect_error "render .png stopped by SIGTERM" 143 "$T/rpng/long.png: interrupted by SIGTERM" "nothing written"
[ -e "$T/rpng" ] && bad "SIGTERM: the PNG render left $(find "$T/rpng")" || ok "SIGTERM: the PNG render left nothing"

# --- bitwise reproducible from the seed; another seed differs
"$JW" gen --out "$T/again" --episodes 150 --steps 12 --seed 7 --shard-records 64 --frame-records 8 --quiet
if diff -r "$D" "$T/again" >/dev/null; then ok "same seed: identical files"; else bad "same seed differs"; fi
run other "$JW" gen --out "$T/other" --episodes 150 --steps 12 --seed 8 --shard-records 64 --frame-records 8 --quiet
if [ "$RC" -ne 0 ] || [ ! -s "$T/other/shard-00000.jshard" ]; then bad "gen --seed 8: rc $RC: $ERR"
elif cmp -s "$D/shard-00000.jshard" "$T/other/shard-00000.jshard"; then bad "seeds 7 and 8 agree"; else ok "other seed differs"; fi
# a prefix of a larger set is the same episodes (episode e depends on (seed, e) only)
"$JW" gen --out "$T/more" --episodes 200 --steps 12 --seed 7 --shard-records 64 --frame-records 8 --quiet
if cmp -s "$D/shard-00000.jshard" "$T/more/shard-00000.jshard"; then ok "episodes independent of the set size"; else bad "first shard changed with --episodes"; fi

# --- refuses to overwrite; a killed gen leaves no dataset
run again "$JW" gen --out "$D" --episodes 5
expect_error "output exists" 1 "$D" "not empty"
"$JS" verify "$D" >/dev/null && ok "existing dataset untouched" || bad "existing dataset damaged"
# SIGTERM and SIGINT stop gen cleanly: staging directory removed, one line,
# the signal's exit status (lib.sh's expect_interrupted).
expect_interrupted gen TERM 143 term "$JW" gen --out "$T/term" --episodes 2000000 --quiet
expect_interrupted gen INT 130 int "$JW" gen --out "$T/int" --episodes 2000000 --quiet
expect_interrupted gen HUP 129 hup "$JW" gen --out "$T/hup" --episodes 2000000 --quiet
# render too, while it writes its temporary file: nothing of it is left,
# neither the file nor the directories it made (an existing one stays)
BIG=(--steps 128 --size 256 --zoom 4)
expect_stopped render INT 130 "$T/rnew/sub/big.pgm.tmp-*" "$T/rnew/sub/big.pgm" \
  "$JW" render --out "$T/rnew/sub/big.pgm" "${BIG[@]}"
[ -e "$T/rnew" ] && bad "SIGINT: render left $(find "$T/rnew")" || ok "SIGINT: render left no file, no directory"
mkdir "$T/rold"
expect_stopped render TERM 143 "$T/rold/big.pgm.tmp-*" "$T/rold/big.pgm" "$JW" render --out "$T/rold/big.pgm" "${BIG[@]}"
[ -d "$T/rold" ] && [ -z "$(ls -A "$T/rold")" ] && ok "SIGTERM: render left its existing directory empty" ||
  bad "SIGTERM: render left $(ls -A "$T/rold" 2>&1)"
"$JW" gen --out "$T/killed" --episodes 2000000 --quiet & pid=$!
staged=0
for i in $(seq 200); do # killed while writing: its staging directory holds a shard
  ls "$T"/.killed.partial-*/ 2>/dev/null | grep -q jshard && { staged=1; break; }; sleep 0.05
done
kill -9 $pid; wait $pid 2>/dev/null; rc=$?
if [ "$staged" -ne 1 ] || [ "$rc" -ne 137 ]; then bad "gen not killed while writing (staged $staged, status $rc)"
elif [ -e "$T/killed" ]; then bad "killed gen left $T/killed"; else ok "killed gen leaves no dataset"; fi
finish
