#!/usr/bin/env bash
# The world model: generate Two-Room trajectories (once: 10,000 training
# episodes of seed 0, 1,000 held-out test episodes of seed 1, 32 frames of
# 32x32 each, about 15 MB of shards, under a second), train the
# action-conditioned JEPA world model of configs/world-tworoom.yaml for 30
# minutes on 2 data-parallel MPI ranks (1 thread each) and print its figures
# (latent_err_hK / still_err_hK, pos_r2_random, pred4_pos_r2, pos_r2 last).
# Each run gets its own directory, runs/world-DATE-TIME. --set key=value
# arguments go to jepa-train, e.g. --set train.minutes=5.
# JEPA_BUILD names the build directory (default build). A split is
# generated beside its place and moved in only when whole; a
# data/tworoom/train or test that is no data set (no manifest.json) is
# refused, not replaced. The arguments are
# checked before anything is generated or started: -h/--help prints the
# usage, anything but --set key=value is refused in one line (exit 2).
set -euo pipefail
usage() {
  cat <<'EOF'
usage: scripts/world.sh [--set key=value ...]
Generates the Two-Room data once (data/tworoom/train: 10,000 episodes of
seed 0; data/tworoom/test: 1,000 of seed 1; 32 frames of 32x32 each), then
trains configs/world-tworoom.yaml for 30 minutes on 2 MPI ranks (1 thread
each) into runs/world-DATE-TIME and prints the evaluation's figures
(pos_r2 last; docs/world.md).
  --set key=value   passed to jepa-train (also --set=key=value; e.g. --set train.minutes=5,
                    --set run.dir=runs/mine); `jepa-train --help` lists the keys
  -h, --help        this text; nothing is generated or started
Environment: JEPA_BUILD, the build directory (default build).
EOF
}
argv=("$@")
for ((i = 0; i < ${#argv[@]}; i++)); do
  case "${argv[i]}" in
    -h | --help) usage; exit 0 ;;
    --set)
      i=$((i + 1))
      case "${argv[i]-}" in
        ?*=*) ;;
        *) echo "world.sh: --set needs key=value, got '${argv[i]-}' (see scripts/world.sh --help)" >&2; exit 2 ;;
      esac ;;
    --set=?*=*) ;; # one word, as jepa-train and jepa-launch take it
    *) echo "world.sh: unknown argument '${argv[i]}': it takes --set key=value (see scripts/world.sh --help)" >&2
       exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
b=${JEPA_BUILD:-build}
for p in jepa-shard jepa-world jepa-train; do
  [ -x "$b/$p" ] || { echo "world.sh: $b/$p not found (build first: cmake --build $b)" >&2; exit 2; }
done
for sp in train test; do # a data set there may be replaced; anything else is not ours
  if { [ -e "data/tworoom/$sp" ] || [ -L "data/tworoom/$sp" ]; } && [ ! -f "data/tworoom/$sp/manifest.json" ]; then
    echo "world.sh: data/tworoom/$sp exists and is not a jepa-shard data set (no manifest.json): move it away" >&2
    exit 2
  fi
done
gen() { # split episodes seed
  if [ -f "data/tworoom/$1/manifest.json" ] && "$b/jepa-shard" verify "data/tworoom/$1" >/dev/null 2>&1; then
    return
  fi
  local tmp="data/tworoom/.$1.gen-$$"
  rm -rf "$tmp"
  mkdir -p data/tworoom
  if ! "$b/jepa-world" gen --out "$tmp" --episodes "$2" --seed "$3" --split "$1" --quiet; then
    rm -rf "$tmp"
    echo "world.sh: generating data/tworoom/$1 failed; data/tworoom/$1 is as it was" >&2
    exit 1
  fi
  rm -rf "data/tworoom/$1"
  mv "$tmp" "data/tworoom/$1"
}
gen train 10000 0
gen test 1000 1
# mpirun gives the ranks a pipe for stderr: the trainer draws its progress
# line when told that ours is a terminal
[ -t 2 ] && export JEPA_PROGRESS="${JEPA_PROGRESS:-1}"
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec mpirun -np 2 "$b/jepa-train" configs/world-tworoom.yaml \
  --set parallel.threads_per_rank=1 \
  --set run.dir="runs/world-$(date +%Y%m%d-%H%M%S)" "$@"
