#!/usr/bin/env bash
# Packs Debian's Fashion-MNIST (dataset-fashion-mnist) into shard directories
# DIR/train and DIR/test, unless they are already there and sound. A split is
# packed beside its place and moved in only when whole: a failed pack (or a
# wrong binary) never removes a split that was there.
# usage: scripts/pack-fmnist.sh [DIR (default data/fmnist)] [JEPA_SHARD binary]
set -euo pipefail
out=${1:-data/fmnist}
bin=${2:-$(dirname "$0")/../build/jepa-shard}
fm=/usr/share/datasets/fashion-mnist
me=$(basename "$0")
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
