#!/usr/bin/env bash
# The quickstart: pack Fashion-MNIST into shards (once), train the tiny ViT
# with I-JEPA (configs/fmnist-tiny.yaml) for 10 minutes on 2 data-parallel
# MPI ranks (1 thread each, global batch 2 x 64 = 128) and print the
# linear-probe accuracy (last line), after the kNN and few-label figures;
# the probe reads the last 4 blocks (docs/trainer.md, "Linear probe").
# JEPA_BUILD names another build directory.
# Each run gets its own directory, runs/quickstart-DATE-TIME (a run directory
# holding checkpoints is never overwritten: resume it with --set resume=auto
# --set run.dir=DIR). Extra arguments go to jepa-train, e.g. --set train.minutes=2.
set -euo pipefail
cd "$(dirname "$0")/.."
b=${JEPA_BUILD:-build}
./scripts/pack-fmnist.sh data/fmnist "$b/jepa-shard"
# mpirun gives the ranks a pipe for stderr: the trainer draws its progress
# line when told that ours is a terminal
[ -t 2 ] && export JEPA_PROGRESS="${JEPA_PROGRESS:-1}"
if [ "$(id -u)" -eq 0 ]; then
  # Open MPI refuses to run as root unless told twice (its documented switch)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec mpirun -np 2 "$b/jepa-train" configs/fmnist-tiny.yaml \
  --set parallel.threads_per_rank=1 --set train.batch_per_rank=64 \
  --set run.dir="runs/quickstart-$(date +%Y%m%d-%H%M%S)" "$@"
