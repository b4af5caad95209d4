#!/usr/bin/env bash
# Data-parallel scaling of the real trainer, side by side in one run: the
# tiny config at global batch 128 for STEPS steps (no probe) as 1 rank x 1
# thread, 1 rank x 2 threads, 2 ranks x 1 thread over shared memory, and the
# same over TCP; then bench-comm's all-reduce bandwidth for our gradient size
# against the ring bound. Output: `key value` lines.
# usage: bench/dp.sh [BUILD_DIR (default build)] [STEPS (default 40)]
set -euo pipefail
b=${1:-build}; steps=${2:-40}
src=$(cd "$(dirname "$0")/.." && pwd)
case "$steps" in ''|*[!0-9]*|0) echo "bench/dp.sh: STEPS '$steps': expected a step count of 1 or more" >&2; exit 2 ;; esac
[ -x "$b/jepa-train" ] || { echo "bench/dp.sh: $b/jepa-train not found (build first)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$src/scripts/pack-fmnist.sh" "$tmp/fm" "$b/jepa-shard"
common=(--set train.steps=$steps --set train.minutes=0 --set eval.probe=false --set train.log_every=1000
        --set data.train="$tmp/fm/train" --set data.test="$tmp/fm/test" --set parallel.check_every=0)
field() { sed -n "s/^ *\"$2\": *\([0-9.e+-]*\),\{0,1\}$/\1/p" "$1/summary.json"; }
one() { # name ranks threads "mpirun args" [jepa-train args...]
  local name=$1 w=$2 t=$3 margs=$4; shift 4
  local launch=()
  # shellcheck disable=SC2206
  [ "$w" -gt 1 ] && launch=(mpirun -np "$w" $margs)
  "${launch[@]}" "$b/jepa-train" "$src/configs/fmnist-tiny.yaml" "${common[@]}" --set run.dir="$tmp/$name" \
    --set parallel.threads_per_rank="$t" --set train.batch_per_rank=$((128 / w)) "$@" >"$tmp/$name.log" 2>&1 ||
    { echo "bench/dp.sh: $name failed: $(grep -m1 'jepa-train' "$tmp/$name.log" || tail -n 1 "$tmp/$name.log")" >&2; exit 1; }
  local img s wait
  img=$(field "$tmp/$name" images_seen); s=$(field "$tmp/$name" train_s); wait=$(field "$tmp/$name" comm_wait_s)
  awk -v n="$name" -v i="$img" -v s="$s" -v w="$wait" \
    'BEGIN { printf "%s_img_per_s %.1f\n%s_comm_wait_frac %.4f\n", n, i / s, n, w / s }'
}
one w1_t1 1 1 ""
one w1_t2 1 2 ""
one w2_t1_shm 2 1 ""
one w2_t1_shm_blocking 2 1 "" --set parallel.blocking_allreduce=true
one w2_t1_tcp 2 1 "--mca btl self,tcp"
mpirun -np 2 "$b/bench-comm" | sed 's/^/shm_/'
mpirun -np 2 --mca btl self,tcp "$b/bench-comm" | sed 's/^/tcp_/'
