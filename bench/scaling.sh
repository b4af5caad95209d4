#!/usr/bin/env bash
# Inputs and checks of the scaling model (docs/scaling.md), measured side by
# side: REPS rounds, each running every configuration once in the same order,
# so that other tenants' load falls on all of them alike; the model script
# (bench/scaling_model.py) takes the medians over rounds.
#   compute:  bench-step, 1 thread, tiny config at batch 8/32/64/128 and the
#             ViT-S config (width 384, depth 12, 6 heads) at batch 8/32
#   comm:     bench-comm at 2 ranks over shared memory, TCP loopback, TCP
#             between two network namespaces (tests/e2e/netns.sh), and the
#             same shaped to each rate of SHAPES (tc tbf) when tc permits;
#             between the namespaces (shaped or not) also the gradient's
#             all-reduce with Open MPI's ring, reduce+broadcast and recursive
#             doubling forced
#   trainer:  jepa-train, tiny config, global batch 128, STEPS steps, no probe:
#             1 rank, and 2 ranks over each of those transports (shaped:
#             bucketed and blocking all-reduce)
# Output: `key value` lines (keys repeat once per round), then the load.
# usage: bench/scaling.sh [BUILD (build)] [STEPS (20)] [REPS (3)] [SHAPES ("1gbit 100mbit")]
#        ONLY=shaped runs the shaped part alone (unset or empty: every part)
# STEPS, REPS, SHAPES (tc rates: a number and a unit, 1gbit, 500mbit,
# 12.5mbps) and ONLY are checked before anything is set up or run: a typo
# would run every part, none, or unshaped runs under a shaped name.
set -uo pipefail
b=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "bench/scaling.sh: ${1:-build}: no such build directory" >&2; exit 2; }
steps=${2:-20}; reps=${3:-3}; shapes=${4:-1gbit 100mbit}; only=${ONLY:-}
for v in "STEPS $steps" "REPS $reps"; do # whole numbers, before the namespaces are set up
  case "${v#* }" in ''|*[!0-9]*|0) echo "bench/scaling.sh: ${v% *} '${v#* }': expected a whole number of 1 or more" >&2; exit 2 ;; esac
done
case "$only" in ''|shaped) ;; *) echo "bench/scaling.sh: ONLY '$only': shaped (the shaped part alone) or unset (every part)" >&2; exit 2 ;; esac
[ -n "${shapes// /}" ] || { echo "bench/scaling.sh: SHAPES '$shapes': no rate (expected tc rates such as \"1gbit 100mbit\")" >&2; exit 2; }
for rate in $shapes; do # as tc tbf reads a rate; a unit always (tc reads a bare number as bits/s, easily meant as bytes)
  [[ ${rate,,} =~ ^[0-9]+(\.[0-9]+)?([kmgt]i?)?(bit|bps)$ ]] ||
    { echo "bench/scaling.sh: SHAPES '$shapes': '$rate' is not a tc rate (a number and a unit: 1gbit, 500mbit, 12.5mbps)" >&2; exit 2; }
done
src=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
T=$(mktemp -d)
. "$src/tests/e2e/netns.sh"
trap 'netns_down; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
"$src/scripts/pack-fmnist.sh" "$T/fm" "$b/jepa-shard" || exit 1
netns=1
netns_up "$T" mpirun || { netns=0; echo "note netns_skipped $NETNS_WHY"; }
shaped=0
if [ $netns = 1 ]; then
  if ip netns exec "$NS_A" tc qdisc add dev "$IF_A" root tbf rate 1gbit burst 512kb latency 100ms 2>/dev/null &&
     ip netns exec "$NS_B" tc qdisc add dev "$IF_B" root tbf rate 1gbit burst 512kb latency 100ms 2>/dev/null; then
    shaped=1
    # a second pair of hosts would need its own subnet; instead shape and
    # unshape the same pair around the runs that want it
    ip netns exec "$NS_A" tc qdisc del dev "$IF_A" root; ip netns exec "$NS_B" tc qdisc del dev "$IF_B" root
  else
    echo "note shaping_skipped tc tbf not permitted"
  fi
fi
shape_on() { # RATE: both directions of the pair, token bucket of 512 KB
  ip netns exec "$NS_A" tc qdisc add dev "$IF_A" root tbf rate "$1" burst 512kb latency 1s
  ip netns exec "$NS_B" tc qdisc add dev "$IF_B" root tbf rate "$1" burst 512kb latency 1s
}
shape_off() {
  ip netns exec "$NS_A" tc qdisc del dev "$IF_A" root 2>/dev/null
  ip netns exec "$NS_B" tc qdisc del dev "$IF_B" root 2>/dev/null
}
echo "build $b"
echo "steps $steps"
echo "reps $reps"
echo "shapes $shapes"
echo "openblas_coretype ${OPENBLAS_CORETYPE:-unset}"
echo "load_start $(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"

field() { sed -n "s/^ *\"$2\": *\([0-9.e+-]*\),\{0,1\}$/\1/p" "$1/summary.json"; }
# train NAME RANKS LAUNCHER...: one trainer run, img/s and wait per step
train() { # NAME RANKS LAUNCHER... [-- TRAINER ARGS...]
  local name=$1 w=$2; shift 2
  local launch=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do launch+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; extra=("$@"); }
  rm -rf "${T:?}/$name"
  "${launch[@]}" "$b/jepa-train" "$src/configs/fmnist-tiny.yaml" "${extra[@]}" --set train.steps="$steps" --set train.minutes=0 \
    --set eval.probe=false --set train.log_every=1000 --set parallel.check_every=0 \
    --set data.train="$T/fm/train" --set data.test="$T/fm/test" --set parallel.threads_per_rank=1 \
    --set train.batch_per_rank=$((128 / w)) --set run.dir="$T/$name" >/dev/null 2>"$T/$name.err" ||
    { echo "note ${name}_failed $(tail -n 1 "$T/$name.err")"; return; }
  awk -v n="$name" -v i="$(field "$T/$name" images_seen)" -v s="$(field "$T/$name" train_s)" \
      -v w="$(field "$T/$name" comm_wait_s)" -v k="$steps" \
    'BEGIN { printf "%s_img_per_s %.2f\n%s_step_ms %.3f\n%s_wait_ms %.3f\n", n, i / s, n, 1e3 * s / k, n, 1e3 * w / k }'
}
step() { # NAME ARGS...: bench-step's ms per step and params
  "$b/bench-step" --threads 1 "${@:2}" | awk -v n="$1" '$1 == "ms_per_step" || $1 == "params" { print n "_" $1, $2 }'
}
comm() { # NAME LAUNCHER...: bench-comm at 2 ranks
  local name=$1; shift
  "$@" -np 2 "$b/bench-comm" --iters 10 --reps 7 2>/dev/null | sed "s/^/${name}_/"
}
algo() { # NAME N LAUNCHER...: the gradient's all-reduce with tuned's algorithm N forced
  local name=$1 n=$2; shift 2
  "$@" --mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm "$n" -np 2 "$b/bench-comm" \
    --iters 3 --sweep 0 2>/dev/null | sed -n "s/^blocking_ms /${name}_blocking_ms /p"
}
VITS=(--set model.width=384 --set model.depth=12 --set model.heads=6)
for r in $(seq "$reps"); do
  echo "round $r load $(cut -d' ' -f1 /proc/loadavg)"
  if [ "$only" != shaped ]; then
    for bt in 8 32 64 128; do step "tiny_b$bt" --steps 10 --batch $bt; done
    for bt in 8 32; do step "vits_b$bt" --steps 2 --batch $bt "${VITS[@]}"; done
    train w1 1 env
    train w2_shm 2 mpirun -np 2 --mca btl self,vader
    train w2_tcp 2 mpirun -np 2 --mca btl self,tcp
    comm shm mpirun --mca btl self,vader
    comm tcp mpirun --mca btl self,tcp
    if [ $netns = 1 ]; then
      train w2_netns 2 "$T/mpirun-2hosts" -np 2 --mca btl self,tcp
      comm netns "$T/mpirun-2hosts" --mca btl self,tcp
      algo netns_ring 4 "$T/mpirun-2hosts" --mca btl self,tcp           # ring
      algo netns_tree 2 "$T/mpirun-2hosts" --mca btl self,tcp           # reduce + broadcast
      algo netns_recdbl 3 "$T/mpirun-2hosts" --mca btl self,tcp         # recursive doubling
    fi
  fi
  if [ $shaped = 1 ]; then
    for rate in $shapes; do
      shape_on "$rate"
      train "w2_shaped_$rate" 2 "$T/mpirun-2hosts" -np 2 --mca btl self,tcp
      train "w2_shaped_${rate}_blocking" 2 "$T/mpirun-2hosts" -np 2 --mca btl self,tcp -- \
        --set parallel.blocking_allreduce=true
      comm "shaped_$rate" "$T/mpirun-2hosts" --mca btl self,tcp
      algo "shaped_${rate}_ring" 4 "$T/mpirun-2hosts" --mca btl self,tcp
      algo "shaped_${rate}_tree" 2 "$T/mpirun-2hosts" --mca btl self,tcp
      algo "shaped_${rate}_recdbl" 3 "$T/mpirun-2hosts" --mca btl self,tcp
      shape_off
    done
  fi
done
echo "load_end $(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
echo "cpus $(getconf _NPROCESSORS_ONLN)"
