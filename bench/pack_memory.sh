#!/usr/bin/env bash
# Peak resident memory of `jepa-shard pack --image-dir DIR --class-dirs` (GNU
# time's maximum RSS) for generated ImageFolders of N 64x64x3 PPM images in
# 10 classes (12 KiB of pixels each), at each N given: pack streams its
# source, so the peak should stay flat as N grows (the file list and the
# labels are all that grow). Images are written by python3 into a temporary
# directory (N * 12 KiB of disk), removed at the end.
# usage: bench/pack_memory.sh [BUILD_DIR (build)] [N ...]   (default N: 2000 20000)
#   JEPA_SHARD=PATH measures another jepa-shard binary (an older build, say).
# Output: per N `pack_rss_kb_nN KB`, `pack_s_nN SECONDS`, `pixels_kb_nN KB`;
# the last line `pack_peak_rss_kb nN=KB ...` for every N.
set -euo pipefail
b=${1:-build}
[ $# -gt 0 ] && shift
ns=("$@")
[ ${#ns[@]} -gt 0 ] || ns=(2000 20000)
js=${JEPA_SHARD:-$b/jepa-shard}
[ -x "$js" ] || { echo "pack_memory: $js not found (build it first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "pack_memory: /usr/bin/time (GNU time) not found" >&2; exit 2; }
command -v python3 >/dev/null || { echo "pack_memory: python3 not found (it writes the images)" >&2; exit 2; }
T=$(mktemp -d /tmp/jepa-pack-memory.XXXXXX)
trap 'rm -rf "$T"' EXIT
last="pack_peak_rss_kb"
for n in "${ns[@]}"; do
  rm -rf "$T/imgs" "$T/out"
  python3 - "$T/imgs" "$n" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
base = bytes((i * 2654435761 >> 13) & 255 for i in range(64 * 64 * 3 * 2))
for c in range(10):
    os.makedirs(f"{root}/class{c}", exist_ok=True)
for i in range(n):
    o = (i * 97) % (64 * 64 * 3)
    with open(f"{root}/class{i % 10}/{i:07d}.ppm", "wb") as f:
        f.write(b"P6 64 64 255\n" + base[o:o + 64 * 64 * 3])
EOF
  s0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$T/rss" "$js" pack --image-dir "$T/imgs" --class-dirs --out "$T/out" --quiet
  s1=$(date +%s.%N)
  kb=$(tail -n 1 "$T/rss")
  echo "pack_rss_kb_n$n $kb"
  echo "pack_s_n$n $(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')"
  echo "pixels_kb_n$n $((n * 12))"
  last="$last n$n=$kb"
done
echo "$last"
