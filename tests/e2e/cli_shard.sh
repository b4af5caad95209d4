#!/usr/bin/env bash
# jepa-shard end to end: pack the three kinds of source, verify/info/cat the
# result, and every failure path: one clear line naming the file/flag/value,
# a non-zero exit, no output directory (or half dataset) left behind.
. "$(dirname "$0")/lib.sh"
JS="$B/jepa-shard"
FM="${JEPA_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
IMG="$FM/t10k-images-idx3-ubyte.gz"
LAB="$FM/t10k-labels-idx1-ubyte.gz"
D="$T/test"

# --- usage errors: exit 2, one line naming the flag/value
run usage "$JS"
expect_error "no arguments" 2 "missing COMMAND"
run unknown "$JS" frobnicate
expect_error "unknown command" 2 "frobnicate"
run noout "$JS" pack --idx-images "$IMG"
expect_error "pack without --out" 2 "--out"
run twosrc "$JS" pack --idx-images "$IMG" --raw "$T/x" --out "$D"
expect_error "two sources" 2 "exactly one source"
run level "$JS" pack --idx-images "$IMG" --out "$D" --level 40
expect_error "level out of range" 2 "--level 40" "[1, 22]"
run rps "$JS" pack --idx-images "$IMG" --out "$D" --records-per-shard 0
expect_error "records per shard zero" 2 "--records-per-shard 0"
run rpsw "$JS" pack --idx-images "$IMG" --out "$D" --records-per-frame lots
expect_error "records per frame not a number" 2 "--records-per-frame lots" "not a whole number"
run split "$JS" pack --idx-images "$IMG" --out "$D" --split "a/b"
expect_error "bad split name" 2 "split name 'a/b'"
run flag "$JS" pack --idx-images "$IMG" --out "$D" --frobnicate
expect_error "unknown flag" 2 "--frobnicate"
run rawdims "$JS" pack --raw "$T/x" --out "$D"
expect_error "raw without dimensions" 2 "--height"
run catidx "$JS" cat "$D"
expect_error "cat without --index" 2 "--index"

# --- bad input: exit 1, naming the file; no output directory
run missing "$JS" pack --idx-images "$T/nope.gz" --out "$D"
expect_error "missing input" 1 "$T/nope.gz" "No such file"
printf 'not an idx file at all' > "$T/junk.idx"
run junk "$JS" pack --idx-images "$T/junk.idx" --out "$D"
expect_error "corrupt input" 1 "$T/junk.idx" "bad magic"
run badlab "$JS" pack --idx-images "$IMG" --idx-labels "$FM/train-labels-idx1-ubyte.gz" --out "$D"
expect_error "label count differs" 1 "60000 labels" "10000 images"
if [ -e "$D" ]; then bad "a failed pack left $D behind"; else ok "no output after failures"; fi

# --- Fashion-MNIST test split: pack, verify, info, cat
run pack "$JS" pack --idx-images "$IMG" --idx-labels "$LAB" --out "$D" --split test --level 3
if [ "$RC" -eq 0 ] && [ -z "$ERR" ] && printf '%s' "$OUT" | grep -q "packed 10000 records into 3 shards"; then
  ok "pack t10k (no progress noise off a terminal)"
else
  bad "pack t10k: rc $RC out '$OUT' err '$ERR'"
fi
run verify "$JS" verify "$D"
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "ok: 3 shards, 40 frames, 10000 records"; then
  ok "verify sound dataset"; else bad "verify: rc $RC $OUT $ERR"; fi
run info "$JS" info "$D"
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "split        test" &&
   printf '%s' "$OUT" | grep -q "28x28x1 u8" && printf '%s' "$OUT" | grep -q "10 classes" &&
   printf '%s' "$OUT" | grep -Eq "ratio        [0-9.]+"; then
  ok "info"; else bad "info: rc $RC $OUT $ERR"; fi
# record 1234's bytes equal the IDX file's
gzip -dc "$IMG" | tail -c +$((16 + 1234 * 784 + 1)) | head -c 784 > "$T/want.raw"
"$B/jepa-shard" cat "$D" --index 1234 --format raw > "$T/got.raw"
if cmp -s "$T/want.raw" "$T/got.raw"; then ok "cat raw = IDX bytes"; else bad "cat raw differs"; fi
want_label=$(gzip -dc "$LAB" | tail -c +$((8 + 1234 + 1)) | head -c 1 | od -An -tu1 | tr -d ' ')
run cat "$JS" cat "$D" --index 1234
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | head -1 | grep -q "record 1234 of 10000: shard-00000.jshard frame 4 .* label $want_label\$" &&
   [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 29 ]; then ok "cat text"; else bad "cat text: $OUT"; fi
run catrange "$JS" cat "$D" --index 10000
expect_error "cat out of range" 1 "record 10000 out of range"
run catfmt "$JS" cat "$D" --index 1 --format png
expect_error "cat bad format" 2 "--format png"

# --- refuses to overwrite; leaves the existing directory alone
run again "$JS" pack --idx-images "$IMG" --out "$D"
expect_error "output exists" 1 "$D" "not empty"
[ -f "$D/manifest.json" ] && ok "existing dataset untouched" || bad "existing dataset damaged"

# --- raw arrays and a PGM directory
seq 0 3000 | head -c 12000 > "$T/raw.bin"           # 1000 records of 3x4x1
head -c 1000 /dev/zero | tr '\0' '\3' > "$T/raw.lab"
run raw "$JS" pack --raw "$T/raw.bin" --height 3 --width 4 --raw-labels "$T/raw.lab" \
  --out "$T/raw" --records-per-shard 300 --records-per-frame 7 --level 19
if [ "$RC" -eq 0 ] && "$JS" verify "$T/raw" >/dev/null 2>&1; then ok "pack raw"; else bad "pack raw: $ERR"; fi
"$JS" cat "$T/raw" --index 999 --format raw | cmp -s - <(tail -c 12 "$T/raw.bin") &&
  ok "raw record bytes" || bad "raw record bytes"
run rawbad "$JS" pack --raw "$T/raw.bin" --height 7 --width 7 --out "$T/raw2"
expect_error "raw size not a multiple" 1 "$T/raw.bin" "not a whole number"
mkdir "$T/pgm"
printf 'P5\n2 2\n255\n\001\002\003\004' > "$T/pgm/a.pgm"
printf 'P5\n2 2\n255\n\005\006\007\010' > "$T/pgm/b.pgm"
printf 'a.pgm 0\nb.pgm 1\n' > "$T/pgm.lab"
run pgm "$JS" pack --pnm-dir "$T/pgm" --labels "$T/pgm.lab" --out "$T/pgmds"
if [ "$RC" -eq 0 ] && "$JS" cat "$T/pgmds" --index 1 | grep -q "label 1"; then ok "pack pgm dir"; else bad "pack pgm: $ERR"; fi
printf 'P5\n3 2\n255\n\001\002\003\004\005\006' > "$T/pgm/c.pgm"
run pgmbad "$JS" pack --pnm-dir "$T/pgm" --out "$T/pgmds2"
expect_error "pgm sizes differ" 1 "$T/pgm/c.pgm" "all must match"

# --- corruption: one line per problem naming the shard file and offset
cp -r "$D" "$T/c"
printf '\xff' | dd of="$T/c/shard-00001.jshard" bs=1 seek=5000 conv=notrunc status=none
run flip "$JS" verify "$T/c"
expect_error "flipped frame byte" 1 "$T/c/shard-00001.jshard: offset " "checksum mismatch"
printf '\xff' | dd of="$T/c/shard-00002.jshard" bs=1 seek=130000 conv=notrunc status=none
run flip2 "$JS" verify "$T/c"
if [ "$RC" -eq 1 ] && [ "$(printf '%s\n' "$ERR" | grep -c 'offset ')" -eq 2 ] &&
   printf '%s' "$OUT" | grep -q "2 problems"; then ok "two problems, two lines"; else bad "flip2: $ERR"; fi
run readflip "$JS" cat "$T/c" --index 4100
expect_error "cat through a corrupt frame" 1 "shard-00001.jshard: offset" "frame"
rm -r "$T/c"; cp -r "$D" "$T/c"
printf 'X' | dd of="$T/c/shard-00000.jshard" bs=1 seek=20 conv=notrunc status=none
run hdr "$JS" verify "$T/c"
expect_error "flipped header byte" 1 "$T/c/shard-00000.jshard: offset 124" "header checksum"
run hdrinfo "$JS" info "$T/c"
expect_error "info on a corrupt header" 1 "shard-00000.jshard" "offset"
rm -r "$T/c"; cp -r "$D" "$T/c"
truncate -s 100000 "$T/c/shard-00002.jshard"
run trunc "$JS" verify "$T/c"
expect_error "truncated shard" 1 "$T/c/shard-00002.jshard: offset 100000" "truncated"
rm "$T/c/manifest.json"
run nomani "$JS" verify "$T/c"
expect_error "no manifest" 1 "$T/c/manifest.json" "not a dataset directory"

if ls -a "$T" | grep -q '\.partial-'; then bad "staging directories left in $T"; else ok "no staging directories left"; fi
finish
