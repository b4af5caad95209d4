#!/usr/bin/env bash
# jepa-shard end to end: pack the three kinds of source (PNG folders included), verify/info/cat the
# result and a record (v2) dataset, and every failure path: one clear line naming the file/flag/value,
# a non-zero exit, no output directory (or half dataset) left behind, SIGTERM/SIGINT included.
# Also the bench programs' arguments (bench-shard, bench-eval, bench-extract).
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
# Fashion-MNIST's test split: pixel mean 0.2868, std 0.3524 on the 0..1 scale
if printf '%s' "$OUT" | grep -Eq "^pixels       mean 0\.2868[0-9]* std 0\.3524[0-9]* "; then
  ok "info gives the manifest's pixel statistics"; else bad "info pixel statistics: $OUT"; fi
expect_full "info" jepa-shard "$JS" info "$D" # it exited 0
# record 1234's bytes equal the IDX file's
gzip -dc "$IMG" | tail -c +$((16 + 1234 * 784 + 1)) | head -c 784 > "$T/want.raw"
"$B/jepa-shard" cat "$D" --index 1234 --format raw > "$T/got.raw"
if cmp -s "$T/want.raw" "$T/got.raw"; then ok "cat raw = IDX bytes"; else bad "cat raw differs"; fi
expect_full "cat --format raw" jepa-shard "$JS" cat "$D" --index 1234 --format raw
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
run labdir "$JS" pack --pnm-dir "$T/pgm" --labels "$T/pgm" --out "$T/pgmds3"
expect_error "--labels names a directory" 1 "$T/pgm: cannot open the labels file: Is a directory"
run rawlabdir "$JS" pack --raw "$T/raw.bin" --height 3 --width 4 --raw-labels "$T/pgm" --out "$T/raw3"
expect_error "--raw-labels names a directory" 1 "$T/pgm: cannot read: Is a directory"
[ ! -e "$T/pgmds3" ] && [ ! -e "$T/raw3" ] && ok "nothing packed from a directory of labels" ||
  bad "a pack with a directory for labels left output"
# --- an input that is a FIFO (or a device) is refused before it is opened
# for reading: a FIFO's blocking open waits for a writer forever. One line
# naming it, exit 1, nothing written (timeout -k's 124 or 137: the hang)
mkfifo "$T/fifo"
fifo_refused() { # DESC NAME CMD...: CMD names $T/NAME, a FIFO
  local desc=$1 name=$2; shift 2
  run "$name" timeout -k 5 20 "$@" --out "$T/fifo-out"
  expect_error "$desc: a FIFO refused, not waited on" 1 "$T/$name: not a regular file"
  [ ! -e "$T/fifo-out" ] || { bad "$desc: $T/fifo-out written"; rm -rf "$T/fifo-out"; }
}
ln -s fifo "$T/rawf"
fifo_refused "--raw" rawf "$JS" pack --raw "$T/rawf" --height 3 --width 4
ln -s fifo "$T/rawlabf"
fifo_refused "--raw-labels" rawlabf "$JS" pack --raw "$T/raw.bin" --height 3 --width 4 --raw-labels "$T/rawlabf"
ln -s fifo "$T/idxf"
fifo_refused "--idx-images" idxf "$JS" pack --idx-images "$T/idxf"
ln -s fifo "$T/idxlabf"
fifo_refused "--idx-labels" idxlabf "$JS" pack --idx-images "$IMG" --idx-labels "$T/idxlabf"
ln -s fifo "$T/pgmlabf"
fifo_refused "--labels" pgmlabf "$JS" pack --pnm-dir "$T/pgm" --labels "$T/pgmlabf"
cp -r "$T/pgm" "$T/pgmf" && mkfifo "$T/pgmf/z.pgm"
fifo_refused "a *.pgm in --pnm-dir" pgmf/z.pgm "$JS" pack --pnm-dir "$T/pgmf"
run rawzero timeout -k 5 20 "$JS" pack --raw /dev/zero --height 3 --width 4 --out "$T/fifo-out"
expect_error "--raw /dev/zero" 1 "/dev/zero: not a regular file"
for f in shard-00001.jshard manifest.json; do
  rm -rf "$T/f" && cp -r "$D" "$T/f" && rm "$T/f/$f" && mkfifo "$T/f/$f"
  for c in verify info "cat --index 0"; do
    run "fifo-$c" timeout -k 5 20 "$JS" $c "$T/f"
    [ "$RC" -eq 1 ] && [ "$(printf '%s\n' "$ERR" | grep -c "$T/f/$f: not a regular file")" = 1 ] \
      && ok "$c: $f a FIFO refused, not waited on" || bad "$c with $f a FIFO: rc $RC: $ERR"
  done
done
rm -rf "$T/f"

printf 'P5\n3 2\n255\n\001\002\003\004\005\006' > "$T/pgm/c.pgm"
run pgmbad "$JS" pack --pnm-dir "$T/pgm" --out "$T/pgmds2"
expect_error "pgm sizes differ" 1 "$T/pgm/c.pgm" "all must match"

# --- PNG images (png-mk writes them with libpng, and the bytes pack must
# store): torchvision's ImageFolder layout and a flat directory
PM="$B/png-mk"
IF="$T/folder"
mkdir -p "$IF/cat" "$IF/dog" "$IF/Bird"
"$PM" "$IF/Bird/b0.png" rgb 5 4 1 "$T/want0.raw" && "$PM" "$IF/cat/c0.png" palette 5 4 2 "$T/want1.raw" &&
  "$PM" "$IF/cat/c1.png" rgba 5 4 3 "$T/want2.raw" && "$PM" "$IF/dog/d0.png" rgb 5 4 4 "$T/want3.raw" ||
  bad "png-mk failed"
echo "not an image" > "$IF/cat/notes.txt" # skipped, as ImageFolder skips it
run ifpack "$JS" pack --image-dir "$IF" --class-dirs --out "$T/ifds" --records-per-frame 3
[ "$RC" -eq 0 ] && [ -z "$ERR" ] && printf '%s' "$OUT" | grep -q "packed 4 records" &&
  "$JS" verify "$T/ifds" >/dev/null 2>&1 && ok "pack --image-dir --class-dirs" || bad "ifpack: rc $RC $OUT $ERR"
same=0
for i in 0 1 2 3; do "$JS" cat "$T/ifds" --index $i --format raw | cmp -s - "$T/want$i.raw" && same=$((same + 1)); done
[ "$same" = 4 ] && ok "ImageFolder round trip: every record = the PNG's pixels (palette expanded, alpha dropped)" ||
  bad "ImageFolder round trip: $same of 4 records equal"
labs=$(for i in 0 1 2 3; do "$JS" cat "$T/ifds" --index $i | head -1 | sed 's/.*, label //'; done | tr '\n' ';')
[ "$labs" = "0 (Bird);1 (cat);1 (cat);2 (dog);" ] && ok "labels = class folders in byte order, named by cat" ||
  bad "ImageFolder labels: $labs"
run ifinfo "$JS" info "$T/ifds"
printf '%s\n' "$OUT" | grep -qx "classes      0 Bird, 1 cat, 2 dog" && printf '%s' "$OUT" | grep -q "4x5x3 u8" &&
  printf '%s\n' "$OUT" | grep -q "^manifest     version 5, crc32 " && grep -q '^  "classes": \["Bird", "cat", "dog"\],$' "$T/ifds/manifest.json" &&
  ok "info and the manifest (version 5) name the classes" || bad "ifinfo: $OUT"
run ifgrey "$JS" pack --image-dir "$IF" --class-dirs --channels 1 --out "$T/ifgrey" --quiet
[ "$RC" -eq 0 ] && "$JS" info "$T/ifgrey" | grep -q "4x5x1 u8" && ok "--channels 1" || bad "ifgrey: $ERR"
mkdir "$T/flatpng"
"$PM" "$T/flatpng/x.png" grey 7 3 5 "$T/wantx.raw" && "$PM" "$T/flatpng/y.png" grey16 7 3 6 "$T/wanty.raw"
printf 'y.png 1\nx.png 0\n' > "$T/flatpng.lab"
run flatpng "$JS" pack --pnm-dir "$T/flatpng" --labels "$T/flatpng.lab" --out "$T/flatds" --quiet
[ "$RC" -eq 0 ] && "$JS" cat "$T/flatds" --index 1 --format raw | cmp -s - "$T/wanty.raw" &&
  "$JS" cat "$T/flatds" --index 0 --format raw | cmp -s - "$T/wantx.raw" &&
  "$JS" cat "$T/flatds" --index 1 | head -1 | grep -q "label 1$" && ok "flat PNGs through --pnm-dir (16-bit scaled)" ||
  bad "flatpng: rc $RC $ERR"
"$JS" cat "$T/flatds" --index 0 --format pgm > "$T/x.pgm"
"$B/png-cmp" "$T/flatpng/x.png" "$T/x.pgm" && ok "cat --format pgm = the PNG by libpng's simplified API" ||
  bad "png-cmp x.png"
# bad usage: exit 2, one line
run ifu1 "$JS" pack --idx-images "$IMG" --class-dirs --out "$T/ifbad"
expect_error "--class-dirs without --image-dir" 2 "--class-dirs needs --image-dir"
run ifu2 "$JS" pack --image-dir "$IF" --class-dirs --labels "$T/flatpng.lab" --out "$T/ifbad"
expect_error "--labels with --class-dirs" 2 "--labels and --class-dirs"
run ifu3 "$JS" pack --image-dir "$IF" --channels 2 --out "$T/ifbad"
expect_error "--channels 2 with --image-dir" 2 "--channels 2" "1 (grey) or 3 (RGB)"
run ifu4 "$JS" pack --image-dir "$IF" --pnm-dir "$IF" --out "$T/ifbad"
expect_error "--image-dir and --pnm-dir" 2 "--pnm-dir given twice" "other name"
# bad input: exit 1, one line naming the file, nothing at --out
if_refused() { # DESC DIR PATTERN...: pack DIR --class-dirs fails so
  local desc=$1 dir=$2; shift 2
  run ifbad "$JS" pack --image-dir "$dir" --class-dirs --out "$T/ifbad"
  expect_error "$desc" 1 "$@"
  [ ! -e "$T/ifbad" ] || { bad "$desc: $T/ifbad written"; rm -rf "$T/ifbad"; }
}
fresh() { rm -rf "$T/ifb" && cp -r "$IF" "$T/ifb"; }
fresh; printf '\x41' | dd of="$T/ifb/dog/d0.png" bs=1 seek=40 conv=notrunc status=none
if_refused "a corrupt PNG" "$T/ifb" "$T/ifb/dog/d0.png: bad PNG: "
fresh; truncate -s 60 "$T/ifb/cat/c1.png"
if_refused "a truncated PNG" "$T/ifb" "$T/ifb/cat/c1.png: bad PNG: truncated"
fresh; echo "hello" > "$T/ifb/cat/c2.png"
if_refused "a text file named .png" "$T/ifb" "$T/ifb/cat/c2.png: offset 0: not a PNG file"
fresh; mkdir "$T/ifb/empty"
if_refused "an empty class folder" "$T/ifb" "$T/ifb/empty: an empty class folder"
fresh; "$PM" "$T/ifb/dog/d1.png" rgb 6 4 9
if_refused "a PNG of another size" "$T/ifb" "$T/ifb/dog/d1.png: 4x6x3" "$T/ifb/Bird/b0.png is 4x5x3: all must match"
fresh; "$PM" "$T/ifb/dog/d1.png" grey 5 4 9
if_refused "a grey PNG among RGB" "$T/ifb" "$T/ifb/dog/d1.png: 4x5x1" "--channels 1 or 3 converts"
fresh; mkdir "$T/ifb/"c{000..255}
if_refused "too many classes" "$T/ifb" "$T/ifb: 259 class folders, at most 256"
fresh; mkfifo "$T/ifb/cat/z.png"
fifo_refused "a *.png in --image-dir --class-dirs" ifb/cat/z.png "$JS" pack --image-dir "$T/ifb" --class-dirs
rm -rf "$T/ifb"

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
# an empty DIR is refused as empty, naming the argument (it was read as
# "/manifest.json": cannot open)
for c in info verify "cat --index 0"; do
  # shellcheck disable=SC2086
  run emptydir "$JS" ${c%% *} '' $( [ "$c" = "${c#* }" ] || echo "${c#* }")
  expect_error "$c ''" 2 "jepa-shard: ${c%% *}: DIR is empty ('')"
  case "$ERR" in *manifest*) bad "$c '': read as /manifest.json: $ERR" ;; esac
done

# --- the manifest's own checksum (manifest version 4): a plausible edit of
# its numbers (a tester's: the test split's pixel sum, which nothing else
# pins) is refused by every reader in one line; verify says which number.
if tail -n 2 "$D/manifest.json" | head -n 1 | grep -Eq '^  "crc32": "[0-9a-f]{8}"$' &&
   [ "$(python3 -c 'import sys, zlib; b = open(sys.argv[1], "rb").read(); print("%08x" % zlib.crc32(b[:-22]))' "$D/manifest.json")" = \
     "$(tail -c 12 "$D/manifest.json" | head -c 8)" ]; then
  ok "manifest ends with the CRC-32 (zlib) of the bytes before its last 22"; else bad "manifest crc32: $(tail -n 3 "$D/manifest.json")"; fi
CRC=$(tail -c 12 "$D/manifest.json" | head -c 8)
run verify4 "$JS" verify "$D"
[ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "verified; manifest version 4, crc32 $CRC\$" &&
  ok "verify reports the manifest's checksum" || bad "verify4: rc $RC $OUT $ERR"
run info4 "$JS" info "$D"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -qx "manifest     version 4, crc32 $CRC" &&
  ok "info shows the manifest's checksum" || bad "info4: rc $RC $OUT"
rm -rf "$T/sum"; cp -r "$D" "$T/sum"
sed -i 's/"sum": 573469082/"sum": 673469082/' "$T/sum/manifest.json"
grep -q '"sum": 673469082' "$T/sum/manifest.json" || bad "the sed found no sum to change"
run suminfo "$JS" info "$T/sum"
expect_error "info on an edited pixel sum" 1 "$T/sum/manifest.json: checksum mismatch (crc32 says $CRC" \
  "the manifest is damaged (jepa-shard verify $T/sum says more)"
run sumcat "$JS" cat "$T/sum" --index 0
expect_error "cat on an edited pixel sum" 1 "$T/sum/manifest.json: checksum mismatch"
run sumverify "$JS" verify "$T/sum"
if [ "$RC" -eq 1 ] && [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 2 ] &&
   printf '%s\n' "$ERR" | head -n 1 | grep -q "$T/sum/manifest.json: checksum mismatch (crc32 says $CRC, its bytes give [0-9a-f]\{8\}): the manifest is damaged\$" &&
   printf '%s\n' "$ERR" | tail -n 1 | grep -q "pixel_stats (count 7840000, sum 673469082, sum_sq [0-9]*) differ from the data's (7840000, 573469082," &&
   printf '%s' "$OUT" | grep -q "2 problems"; then
  ok "verify: the checksum, then the number that is wrong"; else bad "sumverify: rc $RC $OUT $ERR"; fi
# jepa-train on that split without the probe (which verifies its sets):
# it normalised with mean 0.3369 / std 0.3050 instead of 0.2868 / 0.3524 and
# exited 0; now one line, exit 4, no run directory
run sumtrain "$B/jepa-train" "$S/configs/fmnist-tiny.yaml" --set data.train="$T/sum" --set data.test="$D" \
  --set eval.probe=false --set train.steps=1 --set train.minutes=0 --set parallel.threads_per_rank=1 \
  --set run.dir="$T/sumrun"
expect_error "jepa-train on a split whose pixel sum was edited" 4 "$T/sum/manifest.json: checksum mismatch"
[ ! -e "$T/sumrun" ] && ok "no run directory for the refused run" || bad "$T/sumrun made: $(ls -A "$T/sumrun")"
# a manifest as earlier builds wrote it (version 3, no crc32) still opens
sed -e '/^  "crc32": /d' -e 's/^  \],$/  ]/' -e 's/"version": 4,/"version": 3,/' "$D/manifest.json" >"$T/sum/manifest.json"
run v3info "$JS" info "$T/sum"
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -qx "manifest     version 3, no checksum of its own (packed by an older build)" &&
  printf '%s' "$OUT" | grep -Eq "^pixels       mean 0\.2868[0-9]* std 0\.3524[0-9]* " &&
  ok "a version 3 manifest (no checksum) still opens" || bad "v3info: rc $RC $OUT $ERR"
run v3verify "$JS" verify "$T/sum"
[ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "manifest version 3, no checksum of its own" &&
  ok "verify says a version 3 manifest has no checksum" || bad "v3verify: rc $RC $OUT $ERR"
rm -rf "$T/sum"

# --- record (format version 2) datasets: info, cat, verify, corruption.
# shard-mkv2 (a test-only tool) writes the world-model schema: frames u8
# [4,1,3,3], actions f32 [3,2], state f32 [4,2]; record i has actions[t][k] =
# i + t/4 + k/8 and state[t][k] = -(i + t/2) - k.
W="$T/world"
"$B/shard-mkv2" "$W" 23 4 3 10 4 || bad "shard-mkv2 failed"
run v2verify "$JS" verify "$W"
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "ok: 3 shards, 7 frames, 23 records"; then
  ok "verify v2"; else bad "verify v2: rc $RC $OUT $ERR"; fi
run v2info "$JS" info "$W"
if [ "$RC" -eq 0 ] && printf '%s' "$OUT" | grep -q "schema       3 fields, 92 bytes per record" &&
   printf '%s' "$OUT" | grep -qx "field        frames u8 \[4,1,3,3\] (36 bytes at offset 0)" &&
   printf '%s' "$OUT" | grep -qx "field        actions f32 \[3,2\] (24 bytes at offset 36)" &&
   printf '%s' "$OUT" | grep -qx "field        state f32 \[4,2\] (32 bytes at offset 60)" &&
   printf '%s' "$OUT" | grep -q "raw          2116 bytes"; then
  ok "info v2 lists the fields"; else bad "info v2: rc $RC $OUT $ERR"; fi
run v2cat "$JS" cat "$W" --index 17
want_cat="record 17 of 23: shard-00001.jshard frame 1 (offset 623) record 3
frames u8 [4,1,3,3]:
  [0,0,0] 17 0 0"
want_act="actions f32 [3,2]:
  [0] 17 17.125
  [1] 17.25 17.375
  [2] 17.5 17.625
state f32 [4,2]:
  [0] -17 -18
  [1] -17.5 -18.5
  [2] -18 -19
  [3] -18.5 -19.5"
if [ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | head -3)" = "$want_cat" ] &&
   [ "$(printf '%s\n' "$OUT" | tail -9)" = "$want_act" ]; then
  ok "cat v2 prints every field"; else bad "cat v2: rc $RC $OUT $ERR"; fi
"$JS" cat "$W" --index 17 --format raw > "$T/rec17.raw"
if [ "$(stat -c %s "$T/rec17.raw")" -eq 92 ] &&
   [ "$(od -An -tu4 -N4 "$T/rec17.raw" | tr -d ' ')" = 17 ] &&
   [ "$(od -An -tf4 -j36 -N8 "$T/rec17.raw" | tr -s ' ' | sed 's/^ //')" = "17 17.125" ]; then
  ok "cat v2 raw = the record's bytes, fields concatenated"; else bad "cat v2 raw"; fi
run v2pgm "$JS" cat "$W" --index 1 --format pgm
expect_error "cat v2 as pgm" 2 "--format pgm" "3 fields, not images"
run v2range "$JS" cat "$W" --index 23
expect_error "cat v2 out of range" 1 "record 23 out of range"
run v2gen "$B/shard-mkv2" "$T/world-nan" 23 4 3 10 4 17
run v2nan "$JS" verify "$T/world-nan"
expect_error "verify finds a NaN behind sound checksums" 1 "$T/world-nan/shard-00001.jshard: offset " \
  "frame 1: record 17: field 'actions' element [1,1] is NaN"
run v2nancat "$JS" cat "$T/world-nan" --index 17
expect_error "cat of the NaN record" 1 "record 17: field 'actions'"
run v2nanok "$JS" cat "$T/world-nan" --index 3
[ "$RC" -eq 0 ] && ok "other records still read" || bad "cat index 3: $ERR"
cp -r "$W" "$T/wc"
printf '\x41' | dd of="$T/wc/shard-00000.jshard" bs=1 seek=200 conv=notrunc status=none
run v2table "$JS" verify "$T/wc"
expect_error "flipped field table byte" 1 "$T/wc/shard-00000.jshard: offset 128" "field table checksum"
run v2tinfo "$JS" info "$T/wc"
expect_error "info on a corrupt field table" 1 "shard-00000.jshard: offset 128"
cp "$W/shard-00000.jshard" "$T/wc/"
truncate -s 250 "$T/wc/shard-00001.jshard"
run v2trunc "$JS" verify "$T/wc"
expect_error "v2 shard cut inside its field table" 1 "$T/wc/shard-00001.jshard: offset 250" \
  "truncated" "field table ends at 320"

# SIGTERM and SIGINT stop a pack cleanly: the staging directory removed, one
# line, the signal's exit status (16 MB of noise at level 19: seconds of
# work; lib.sh's expect_interrupted).
head -c 16777216 /dev/urandom > "$T/noise.raw"
NOISE=(pack --raw "$T/noise.raw" --height 64 --width 64 --level 19 --quiet)
expect_interrupted pack TERM 143 bigo "$JS" "${NOISE[@]}" --out "$T/bigo"
expect_interrupted pack INT 130 bigi "$JS" "${NOISE[@]}" --out "$T/bigi"
expect_interrupted pack HUP 129 bigh "$JS" "${NOISE[@]}" --out "$T/bigh"

if ls -a "$T" | grep -q '\.partial-'; then bad "staging directories left in $T"; else ok "no staging directories left"; fi
# a flag given twice is a mistake, not an override
run twiceout "$B/jepa-shard" pack --idx-images "$T/nope.gz" --out "$T/A" --out "$T/B"
expect_error "pack --out given twice" 2 "--out given twice"
[ ! -e "$T/A" ] && [ ! -e "$T/B" ] && ok "nothing packed" || bad "a directory was made"
run twiceidx "$B/jepa-shard" cat "$T/anydir" --index 1 --index 2
expect_error "cat --index given twice" 2 "--index given twice"
# scripts/pack-fmnist.sh: a wrong or failing jepa-shard binary never removes
# a split that is there (it packs beside it and moves in only when whole)
PF="$T/pfm"
bash "$S/scripts/pack-fmnist.sh" "$PF" "$B/jepa-shard" >/dev/null 2>&1 || bad "pack-fmnist.sh failed"
run pfnobin bash "$S/scripts/pack-fmnist.sh" "$PF" "$T/no-such-jepa-shard"
expect_error "pack-fmnist.sh: missing binary named" 2 "$T/no-such-jepa-shard" "no jepa-shard program"
: >"$PF/train/shard-00000.jshard" # a damaged split: repacked, but by a binary that fails
run pffail bash "$S/scripts/pack-fmnist.sh" "$PF" /bin/false
expect_error "pack-fmnist.sh: a failing pack said" 1 "packing $PF/train with /bin/false failed"
[ -n "$(ls "$PF/train"/*.jshard 2>/dev/null)" ] && ok "the damaged split is still there after a failed repack" ||
  bad "pack-fmnist.sh removed $PF/train"
[ -z "$(ls -A "$PF" | grep '^\.')" ] && ok "no staging directory left" || bad "left $(ls -A "$PF")"
bash "$S/scripts/pack-fmnist.sh" "$PF" "$B/jepa-shard" >/dev/null 2>&1 && "$B/jepa-shard" verify "$PF/train" >/dev/null &&
  ok "repacked with the real binary" || bad "repack failed"
# a DIR/train or DIR/test that is there and is no data set (no manifest.json)
# is not the script's to replace: one line, exit 2, nothing touched (it was
# deleted: rm -rf DIR/train)
mkdir -p "$T/pfx/train" && echo precious >"$T/pfx/train/notes.txt"
run pfdir bash "$S/scripts/pack-fmnist.sh" "$T/pfx" "$B/jepa-shard"
expect_error "pack-fmnist.sh: DIR/train a directory of other files" 2 \
  "pack-fmnist.sh: $T/pfx/train exists and is not a jepa-shard data set (no manifest.json)"
[ "$(cat "$T/pfx/train/notes.txt" 2>/dev/null)" = precious ] && [ "$(ls -A "$T/pfx" | tr '\n' ' ')" = "train " ] \
  && [ "$(ls -A "$T/pfx/train")" = notes.txt ] && ok "DIR/train untouched, nothing packed" || bad "pfx now: $(ls -AR "$T/pfx" | tr '\n' ' ')"
mkdir -p "$T/pfy" && echo precious >"$T/pfy/test"
run pffile bash "$S/scripts/pack-fmnist.sh" "$T/pfy" "$B/jepa-shard"
expect_error "pack-fmnist.sh: DIR/test a regular file" 2 "pack-fmnist.sh: $T/pfy/test exists and is not a jepa-shard data set"
[ "$(cat "$T/pfy/test" 2>/dev/null)" = precious ] && [ "$(ls -A "$T/pfy")" = test ] && ok "DIR/test untouched, nothing packed" \
  || bad "pfy now: $(ls -A "$T/pfy" | tr '\n' ' ')"
# --help/-h print the usage (they were taken as DIR: rm's error, or a pack
# into ./--help), other options and a third argument are refused in one line
mkdir -p "$T/pfh"
for h in --help -h; do
  run pfhelp env -C "$T/pfh" bash "$S/scripts/pack-fmnist.sh" "$h"
  [ "$RC" -eq 0 ] && [ -z "$ERR" ] && case "$OUT" in "usage: scripts/pack-fmnist.sh [DIR] [JEPA_SHARD]"*) true ;; *) false ;; esac \
    && [ -z "$(ls -A "$T/pfh")" ] && ok "pack-fmnist.sh $h: usage, exit 0, nothing made" \
    || bad "pack-fmnist.sh $h: rc $RC [$OUT] [$ERR] made $(ls -A "$T/pfh")"
done
run pfopt env -C "$T/pfh" bash "$S/scripts/pack-fmnist.sh" --bogus
expect_error "pack-fmnist.sh --bogus" 2 "pack-fmnist.sh: unknown option '--bogus'"
run pfextra env -C "$T/pfh" bash "$S/scripts/pack-fmnist.sh" "$T/pfz" "$B/jepa-shard" extra
expect_error "pack-fmnist.sh with a third argument" 2 "pack-fmnist.sh: unexpected argument 'extra'"
[ -z "$(ls -A "$T/pfh")" ] && [ ! -e "$T/pfz" ] && ok "refused arguments: nothing made" || bad "made $(ls -A "$T/pfh") $(ls -d "$T/pfz" 2>/dev/null)"
# the bench programs of the data path and evaluation: --help, and numbers
# read whole (atoi took "10x" as 10), one line naming the argument
for b in bench-shard bench-eval bench-extract; do
  run "$b-help" "$B/$b" --help
  [ "$RC" -eq 0 ] && printf '%s' "$OUT" | head -n 1 | grep -q "^usage: $b" && ok "$b --help" ||
    bad "$b --help: rc $RC: $OUT $ERR"
done
run bx10x "$B/bench-extract" 10x
expect_error "bench-extract 10x" 2 "n '10x'" "expected an integer" "usage: bench-extract"
run bxr0 "$B/bench-extract" 10 0
expect_error "bench-extract rounds 0" 2 "rounds '0'" "usage: bench-extract"
run bxmore "$B/bench-extract" 1 1 1
expect_error "bench-extract with a third argument" 2 "unexpected argument '1'"
run bsnov "$B/bench-shard" --epochs
expect_error "bench-shard --epochs without a value" 2 "--epochs needs a value" "usage: bench-shard"
finish
