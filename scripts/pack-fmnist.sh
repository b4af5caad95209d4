#!/usr/bin/env bash
# Packs Debian's Fashion-MNIST (dataset-fashion-mnist) into shard directories
# DIR/train and DIR/test, unless they are already there and sound. A split is
# packed beside its place and moved in only when whole: a failed pack (or a
# wrong binary) never removes a split that was there.
# A DIR/train or DIR/test that is there and is no data set (no manifest.json)
# is refused before anything is packed: it is not ours to replace.
# usage: scripts/pack-fmnist.sh [DIR (default data/fmnist)] [JEPA_SHARD binary]
set -euo pipefail
me=$(basename "$0")
usage() {
  cat <<'EOF'
usage: scripts/pack-fmnist.sh [DIR] [JEPA_SHARD]
Packs Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist) into the
jepa-shard data sets DIR/train and DIR/test (DIR default data/fmnist), unless
they are there and sound; a data set there is replaced only by a whole new
one, anything else at DIR/train or DIR/test is refused (nothing touched).
  JEPA_SHARD    the jepa-shard program (default build/jepa-shard beside scripts/)
  -h, --help    this text; nothing is packed
EOF
}
pos=()
opts=1 # until --: a DIR that begins with '-' comes after it
for a in "$@"; do
  if [ "$opts" = 1 ]; then
    case "$a" in
      --) opts=0; continue ;;
      -h | --help) usage; exit 0 ;;
      -?*) echo "$me: unknown option '$a' (see $me --help)" >&2; exit 2 ;;
    esac
  fi
  pos+=("$a")
done
if [ "${#pos[@]}" -gt 2 ]; then
  echo "$me: unexpected argument '${pos[2]}': it takes [DIR] [JEPA_SHARD] (see $me --help)" >&2
  exit 2
fi
out=${pos[0]:-data/fmnist}
bin=${pos[1]:-$(dirname "$0")/../build/jepa-shard}
fm=/usr/share/datasets/fashion-mnist
for sp in train test; do # a data set there may be replaced; anything else is not ours
  if { [ -e "$out/$sp" ] || [ -L "$out/$sp" ]; } && [ ! -f "$out/$sp/manifest.json" ]; then
    echo "$me: $out/$sp exists and is not a jepa-shard data set (no manifest.json): move it away or pick another DIR" >&2
    exit 2
  fi
done
[ -f "$bin" ] && [ -x "$bin" ] || { echo "$me: $bin: no jepa-shard program there (build first: cmake --build build)" >&2; exit 2; }
[ -f "$fm/train-images-idx3-ubyte.gz" ] || { echo "$me: $fm: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
pack() { # split idx-prefix
  if [ -f "$out/$1/manifest.json" ] && "$bin" verify "$out/$1" >/dev/null 2>&1; then return; fi
  local tmp="$out/.$1.packing-$$"
  rm -rf "$tmp"
  mkdir -p "$out"
  if ! "$bin" pack --idx-images "$fm/$2-images-idx3-ubyte.gz" --idx-labels "$fm/$2-labels-idx1-ubyte.gz" \
    --out "$tmp" --split "$1" --quiet; then
    rm -rf "$tmp"
    echo "$me: packing $out/$1 with $bin failed; $out/$1 is as it was" >&2
    exit 1
  fi
  rm -rf "$out/$1"
  mv "$tmp" "$out/$1"
}
pack train train
pack test t10k
