#!/usr/bin/env bash
# Peak resident memory per rank of the training step (bench-step's
# peak_rss_mb, the largest rank's getrusage maximum): the tiny config at
# batch 128 and 64, and a ViT-S-sized encoder (width 384, depth 12, 6 heads;
# predictor as configured, 64 x 4) at batch 64; at 1 rank, and at 2 ranks
# under mpirun when it is there. One step after one warm-up step each.
# usage: bench/memory.sh [BUILD_DIR (build)]
# Output: `rss_mb_<config>_<ranks>rank value` lines, then each run's step time.
set -euo pipefail
b=${1:-build}
[ -x "$b/bench-step" ] || { echo "memory: $b/bench-step not found (build it first)" >&2; exit 2; }
VITS=(--set model.width=384 --set model.depth=12 --set model.heads=6)
one() { # name ranks args...
  local name=$1 np=$2; shift 2
  local out
  if [ "$np" = 1 ]; then out=$("$b/bench-step" --steps 1 --warmup 1 --no-peak "$@")
  else out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      mpirun -np "$np" --oversubscribe "$b/bench-step" --steps 1 --warmup 1 --no-peak "$@"); fi
  echo "rss_mb_${name}_${np}rank $(printf '%s\n' "$out" | sed -n 's/^peak_rss_mb //p')"
  echo "ms_per_step_${name}_${np}rank $(printf '%s\n' "$out" | sed -n 's/^ms_per_step //p')"
}
ranks=1
command -v mpirun >/dev/null && ranks="1 2"
for np in $ranks; do
  one tiny_b128 "$np" --batch 128
  one tiny_b64 "$np" --batch 64
  one vits_b64 "$np" --batch 64 "${VITS[@]}"
done
