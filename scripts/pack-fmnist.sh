#!/usr/bin/env bash
# Packs Debian's Fashion-MNIST (dataset-fashion-mnist) into shard directories
# DIR/train and DIR/test, unless they are already there and sound.
# usage: scripts/pack-fmnist.sh [DIR (default data/fmnist)] [JEPA_SHARD binary]
set -euo pipefail
out=${1:-data/fmnist}
bin=${2:-$(dirname "$0")/../build/jepa-shard}
fm=/usr/share/datasets/fashion-mnist
pack() { # split idx-prefix
  if [ -f "$out/$1/manifest.json" ] && "$bin" verify "$out/$1" >/dev/null 2>&1; then return; fi
  rm -rf "$out/$1"
  mkdir -p "$out"
  "$bin" pack --idx-images "$fm/$2-images-idx3-ubyte.gz" --idx-labels "$fm/$2-labels-idx1-ubyte.gz" \
    --out "$out/$1" --split "$1" --quiet
}
pack train train
pack test t10k
