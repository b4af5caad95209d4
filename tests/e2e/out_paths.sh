#!/usr/bin/env bash
# Output paths whose parents do not exist yet are made, as mkdir -p (issue 16
# item 7): jepa-shard pack --out, jepa-world gen --out and render --out,
# jepa-train's run.dir, jepa-eval --export. A parent that is a file is
# refused in one line naming it, nothing made. Symbolic links, names over
# NAME_MAX and mount points: below. (The launcher's sweep and run
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

# ---- symbolic links are written through, as cp and mkdir -p do: the output
# goes where the link points (a data set's staging directory beside the
# target, so its rename stays on that filesystem; it failed after all the
# packing, "cannot move the finished dataset ... Not a directory"), the link
# kept. A link that points nowhere or at the other kind, a name over
# NAME_MAX and a mount point (no rename replaces one) are refused up front
# in one line naming the path; nothing made.
PACK=(--raw "$T/raw" --height 8 --width 8 --quiet)
mkdir -p "$T/disk/real" "$T/disk/gen" "$T/l" && ln -s ../disk/real "$T/l/data" && ln -s "$T/disk/gen" "$T/l/gen" &&
  ln -s "$T/nowhere" "$T/l/dangling" && ln -s "$T/file" "$T/l/tofile" && ln -s "$T/disk" "$T/l/todir"
run plink "$B/jepa-shard" pack "${PACK[@]}" --out "$T/l/data"
[ "$RC" -eq 0 ] && [ -L "$T/l/data" ] && "$B/jepa-shard" verify "$T/disk/real" >/dev/null 2>&1 \
  && ok "pack --out a (relative) link to an empty directory: packed where it points, the link kept" \
  || bad "pack through a link: rc $RC: $ERR"
mkdir -p "$T/disk/slash" && ln -s ../disk/slash "$T/l/slash"
run pslash "$B/jepa-shard" pack "${PACK[@]}" --out "$T/l/slash/"
[ "$RC" -eq 0 ] && [ -L "$T/l/slash" ] && "$B/jepa-shard" verify "$T/disk/slash" >/dev/null 2>&1 \
  && ok "pack --out LINK/ (a trailing slash): through the link too" || bad "pack --out LINK/: rc $RC: $ERR"
run glink "$B/jepa-world" gen --out "$T/l/gen" --episodes 2 --steps 4 --quiet
[ "$RC" -eq 0 ] && [ -L "$T/l/gen" ] && "$B/jepa-shard" verify "$T/disk/gen" >/dev/null 2>&1 \
  && ok "jepa-world gen --out a link to an empty directory" || bad "gen through a link: rc $RC: $ERR"
run pdang "$B/jepa-shard" pack "${PACK[@]}" --out "$T/l/dangling"
expect_error "pack --out a dangling link" 1 "$T/l/dangling: a symbolic link to $T/nowhere, which does not exist"
run gdang "$B/jepa-world" gen --out "$T/l/dangling" --episodes 2 --steps 4 --quiet
expect_error "gen --out a dangling link" 1 "$T/l/dangling" "does not exist"
run pfile "$B/jepa-shard" pack "${PACK[@]}" --out "$T/l/tofile"
expect_error "pack --out a link to a file" 1 "$T/l/tofile: a symbolic link to $T/file, which is not a directory"
# pack reads its whole source before writing: the output is checked first
# (it was checked after: the missing source was said instead)
run porder "$B/jepa-shard" pack --raw "$T/missing" --height 8 --width 8 --out "$T/l/dangling" --quiet
expect_error "pack: the output checked before the source is read" 1 "$T/l/dangling" "does not exist"
[ ! -e "$T/nowhere" ] && [ -z "$(ls -A "$T/l" "$T/disk" | grep partial)" ] && [ "$(cat "$T/file")" = "" ] \
  && ok "refused links: nothing made" || bad "refused links left: $(ls -A "$T" "$T/l" "$T/disk")"
# a name of 250 bytes is a name: its staging directory's is cut to fit
# (".NAME.partial-PID" passed NAME_MAX: refused); over NAME_MAX, said so
N250=$(printf 'n%.0s' $(seq 250)); N300=$(printf 'n%.0s' $(seq 300))
run p250 "$B/jepa-shard" pack "${PACK[@]}" --out "$T/names/$N250"
[ "$RC" -eq 0 ] && "$B/jepa-shard" verify "$T/names/$N250" >/dev/null 2>&1 && ok "pack --out a 250-byte name" \
  || bad "pack --out a 250-byte name: rc $RC: $ERR"
run p300 "$B/jepa-shard" pack "${PACK[@]}" --out "$T/names/$N300"
expect_error "pack --out a 300-byte name" 1 "is 300 bytes, more than a file name may have (NAME_MAX 255)"
run r250 "$B/jepa-world" render --out "$T/names/$N250.png" --steps 2
[ "$RC" -eq 0 ] && [ -s "$T/names/$N250.png" ] && ok "render --out a 254-byte name" || bad "render 254 bytes: rc $RC: $ERR"
# render: a link to a file is written through (the file replaced, the link
# kept: it was replaced by the picture); a link to a directory, a dangling
# one and a directory are refused before drawing
echo old >"$T/disk/pic.pgm" && ln -s ../disk/pic.pgm "$T/l/pic.pgm" && mkdir "$T/adir.pgm" &&
  ln -s "$T/disk" "$T/l/dir.pgm" && ln -s "$T/nowhere" "$T/l/gone.pgm"
run rlink "$B/jepa-world" render --out "$T/l/pic.pgm" --steps 2
[ "$RC" -eq 0 ] && [ -L "$T/l/pic.pgm" ] && [ "$(head -c 2 "$T/disk/pic.pgm")" = P5 ] \
  && ok "render --out a link to a file: the file drawn, the link kept" || bad "render through a link: rc $RC: $ERR $(ls -l "$T/l")"
run rdir "$B/jepa-world" render --out "$T/l/dir.pgm" --steps 2
expect_error "render --out a link to a directory" 1 "$T/l/dir.pgm: a symbolic link to $T/disk, which is a directory"
[ -L "$T/l/dir.pgm" ] && ok "the link to a directory kept" || bad "render replaced the link $T/l/dir.pgm"
run rgone "$B/jepa-world" render --out "$T/l/gone.pgm" --steps 2
expect_error "render --out a dangling link" 1 "$T/l/gone.pgm" "does not exist"
run rad "$B/jepa-world" render --out "$T/adir.pgm" --steps 2
expect_error "render --out a directory" 1 "$T/adir.pgm: a directory"
# jepa-eval --export and run.dir: a dangling link or a name over NAME_MAX
# refused before the features are extracted (they failed after), or the run
run edang "$B/jepa-eval" "$T/runs/x/y/run" --export "$T/l/dangling"
expect_error "--export a dangling link: before extracting" 2 "--export $T/l/dangling" "does not exist"
# a dangling link in the parent path (DANG/sub): said before any work as
# the link it is (mkdir -p found "Not a directory" after the work)
run pdangp "$B/jepa-shard" pack --raw "$T/missing" --height 8 --width 8 --out "$T/l/dangling/sub" --quiet
expect_error "pack --out under a dangling link: before the source is read" 1 \
  "$T/l/dangling is a symbolic link to $T/nowhere, which does not exist"
run edangp "$B/jepa-eval" "$T/runs/x/y/run" --export "$T/l/dangling/feat"
expect_error "--export under a dangling link: before extracting" 2 "$T/l/dangling is a symbolic link to $T/nowhere"
run rdangp "$B/jepa-world" render --out "$T/l/dangling/pic.pgm" --steps 2
expect_error "render --out under a dangling link" 1 "$T/l/dangling is a symbolic link to $T/nowhere"
[ ! -e "$T/nowhere" ] && ok "nothing made through the dangling link" || bad "made $T/nowhere"
run elong "$B/jepa-eval" "$T/runs/x/y/run" --export "$T/feat/$N300"
expect_error "--export a 300-byte name: before extracting" 2 "NAME_MAX"
run elink "$B/jepa-eval" "$T/runs/x/y/run" --export "$T/l/todir"
[ "$RC" -eq 0 ] && [ -s "$T/disk/train_features.npy" ] && ok "--export a link to a directory" || bad "--export a link: rc $RC: $ERR"
run tdang "$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${TINY[@]}" --set run.dir="$T/l/dangling"
expect_error "run.dir a dangling link" 4 "run.dir $T/l/dangling: a symbolic link" "does not exist"
[ ! -e "$T/nowhere" ] && ok "nothing made where the dangling link points" || bad "$T/nowhere made"

# ---- a mount point (an empty one, or a link to one) cannot be replaced by
# the rename that puts a finished data set in place: refused up front (it
# failed once everything was packed); a directory inside it is fine. Root
# only (a tmpfs mount), unmounted on the way out.
mkdir -p "$T/mnt"
if mount -t tmpfs tmpfs "$T/mnt" 2>/dev/null; then
  trap 'umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
  ln -s "$T/mnt" "$T/l/mnt"
  run pmnt "$B/jepa-shard" pack "${PACK[@]}" --out "$T/mnt"
  expect_error "pack --out a mount point" 1 "$T/mnt: a mount point" "write into a directory inside it"
  run pmntl "$B/jepa-shard" pack "${PACK[@]}" --out "$T/l/mnt"
  expect_error "pack --out a link to a mount point" 1 "$T/l/mnt: a mount point"
  [ -z "$(ls -A "$T/mnt" "$T" | grep partial)" ] && ok "mount point: nothing made" || bad "left: $(ls -A "$T" "$T/mnt")"
  run pin "$B/jepa-shard" pack "${PACK[@]}" --out "$T/l/mnt/data"
  [ "$RC" -eq 0 ] && "$B/jepa-shard" verify "$T/mnt/data" >/dev/null 2>&1 && ok "pack into a directory in the mount" \
    || bad "pack into the mount: rc $RC: $ERR"
  # read-only (root writes anyway, but not there): refused before the source is read
  mount -o remount,ro "$T/mnt"
  run pro "$B/jepa-shard" pack --raw "$T/missing" --height 8 --width 8 --out "$T/mnt/new/data" --quiet
  expect_error "pack into a read-only filesystem: before reading" 1 "$T/mnt/new/data: cannot write into $T/mnt: Read-only file system"
  umount "$T/mnt"
else
  echo "skip mount point checks (no tmpfs mount: not root?)"
fi
finish
