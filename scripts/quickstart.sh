#!/usr/bin/env bash
# The quickstart: pack Fashion-MNIST into shards (once), train the tiny ViT
# I-JEPA for 10 minutes and print the linear-probe accuracy (last line).
# Extra arguments go to jepa-train, e.g. --set train.minutes=2.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/pack-fmnist.sh data/fmnist build/jepa-shard
exec ./build/jepa-train configs/fmnist-tiny.yaml "$@"
