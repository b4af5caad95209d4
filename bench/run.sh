#!/usr/bin/env bash
# Runs the benchmarks side by side in one go, so ratios come from one run on
# one machine state: the training step at 1 and 2 threads, then the data path
# with the trainer's measured 2-thread rate beside it (headroom_x = reader's
# inline img/s over the trainer's). Output: `key value` lines.
# usage: bench/run.sh [BUILD_DIR (default build)]
set -euo pipefail
b=${1:-build}
for t in 1 2; do
  r=$("$b/bench-step" --threads $t --steps 10 | sed -n 's/^img_per_s //p')
  echo "step_img_per_s_threads_$t $r"
done
"$b/bench-shard" --levels 1,3,9,19 --trainer-img-per-s "$r"
