#!/usr/bin/env bash
# Run-to-run variance of early training, 1 rank against 2 ranks, side by
# side in one run: the tiny config at global batch 128 (1 x 128 at 2
# threads, 2 x 64 at 1 thread each) under a 1286-step schedule (the
# quickstart's 10 minutes on a loaded machine; an idle one does 2350), one run per seed and world size, stopped after STOP
# steps. The loss at steps 150 and STOP tells whether a run left the early
# plateau (loss near 0.17-0.2 while target_std climbs; docs/comm.md).
# With STOP=1286 each run goes to the end and is probed (about 13 minutes
# a run on 2 cores). Output: `key value` lines.
# usage: bench/seeds.sh [BUILD_DIR (default build)] [STOP (default 200)] [SEEDS (default "0 1 2 3")]
set -euo pipefail
b=${1:-build}; stop=${2:-200}; seeds=${3:-0 1 2 3}
src=$(cd "$(dirname "$0")/.." && pwd)
case "$stop" in ''|*[!0-9]*) echo "bench/seeds.sh: STOP '$stop': expected a step count from 1 to 1286" >&2; exit 2 ;; esac
[ "$stop" -ge 1 ] && [ "$stop" -le 1286 ] || { echo "bench/seeds.sh: STOP $stop: expected a step count from 1 to 1286" >&2; exit 2; }
for s in $seeds; do
  case "$s" in ''|*[!0-9]*) echo "bench/seeds.sh: SEEDS: '$s' is not a seed (a non-negative integer)" >&2; exit 2 ;; esac
done
[ -x "$b/jepa-train" ] || { echo "bench/seeds.sh: $b/jepa-train not found (build first)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$src/scripts/pack-fmnist.sh" "$tmp/fm" "$b/jepa-shard"
probe=false
[ "$stop" -ge 1286 ] && probe=true
common=(--set train.steps=1286 --set train.minutes=0 --set eval.probe=$probe --set train.log_every=10
        --set data.train="$tmp/fm/train" --set data.test="$tmp/fm/test")
loss_at() { sed -n "s/^{\"step\": $2, \"loss\": \([0-9.e+-]*\),.*/\1/p" "$1/metrics.jsonl"; }
for seed in $seeds; do
  for w in 1 2; do
    name=w${w}_seed$seed
    launch=() t=2
    [ "$w" -gt 1 ] && launch=(mpirun -np "$w" --bind-to none) t=1
    # the trainer's stop hook: an agreed stop after STOP steps (exit 75)
    rc=0
    JEPA_DEBUG_STOP_STEP=$([ "$stop" -lt 1286 ] && echo "$stop") \
      "${launch[@]}" "$b/jepa-train" "$src/configs/fmnist-tiny.yaml" "${common[@]}" \
      --set run.dir="$tmp/$name" --set seed="$seed" --set parallel.threads_per_rank=$t \
      --set train.batch_per_rank=$((128 / w)) >"$tmp/$name.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 75 ]; then
      echo "bench/seeds.sh: $name exited $rc:" >&2
      tail -n 3 "$tmp/$name.log" >&2
      exit 1
    fi
    [ "$stop" -ge 150 ] && echo "${name}_loss150 $(loss_at "$tmp/$name" 150)"
    echo "${name}_loss$stop $(loss_at "$tmp/$name" "$stop")"
    [ "$probe" = true ] && echo "${name}_probe_acc $(sed -n 's/^probe_acc //p' "$tmp/$name.log")"
  done
done
