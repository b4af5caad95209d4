#!/usr/bin/env bash
# The learning benchmark: does an objective's encoder beat a random one and
# raw pixels, measured the same way? Each objective trains for the step count
# of a 10-minute budget (fixed below, measured once on an idle 2-core machine
# at 2 ranks x 1 thread, global batch 128, so runs compare) on each seed; the
# same evaluation (linear probe, kNN k=20, 1%- and 10%-label probes; fitted on
# training features only, scored on the test split) is applied to the trained encoder,
# to a randomly initialised encoder of each seed and to raw pixels. Prints one
# table (mean, sample std and min over seeds) and `learning ...` key-value
# lines last; trained rows also give their collapse indicators (emb_std and
# sigreg for LeJEPA, target_std for I-JEPA). LONG=1 adds one 60-minute run
# (6x the steps, seed 0) of LONG_OBJ (default ijepa, the quickstart's).
# PROBE_ITERS sets every row's eval.max_iters (default 200, the spec's): a
# random-init encoder's linear probe gains from more, a trained one's does
# not (docs/trainer.md, "Measured: the probe's iteration cap"), so margins
# over random init are only comparable at one value; 2000 costs ~4 minutes
# more per row. PROBE_WD_MIN and PROBE_WD_ZERO set eval.wd_min / eval.wd_zero
# (the weight-decay grid): PROBE_WD_ZERO=false with a small PROBE_WD_MIN
# (1e-8: fits converge in ~200 iterations) gives a probe whose every fit
# has a minimum, so no figure depends on the cap; its floor then decides the
# random encoder's figure (docs/trainer.md).
# OUT (default runs/learning) holds the rows' files, DATA (default
# data/fmnist) the packed Fashion-MNIST; REPORT_ONLY=1 prints the tables
# again from OUT's files (the same SEEDS, OBJECTIVES and LONG) and runs
# nothing. After the table, each seed's margin over its own random-init
# encoder (linear probe and kNN, in points) and `learning OBJ
# probe_acc_margin_min ...` lines: the learning issue's bar is per seed.
# Every row's settings are checked before the first row runs. About 12 minutes per (objective, seed) on 2 cores.
# usage: bench/learning.sh [BUILD_DIR (default build)] [SEEDS (default "0 1 2")] [OBJECTIVES (default "ijepa lejepa";
#        also ijepa-bf16)]
set -euo pipefail
b=${1:-build}; seeds=${2:-0 1 2}; objectives=${3:-ijepa lejepa}
src=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# 10-minute step counts at 2 x 1 thread, batch 2 x 64, measured by the
# time-budget planner on an idle machine (2026-11-30, build 4866b1e, after
# 60 s of training): I-JEPA 0.2478 s/step -> 2353 (2350 kept), LeJEPA 0.4483 s/step ->
# 1300. Override with IJEPA_STEPS / LEJEPA_STEPS.
# ijepa-bf16: the quickstart's I-JEPA with the EMA target's forward in
# bfloat16 (ijepa.target_precision), its random-init row ijepa's (the same
# encoder: only training's target forward differs)
declare -A steps=([ijepa]=${IJEPA_STEPS:-2350} [ijepa-bf16]=${IJEPA_STEPS:-2350}
                  [lejepa]=${LEJEPA_STEPS:-1300})
declare -A config=([ijepa]=fmnist-tiny.yaml [ijepa-bf16]=fmnist-tiny.yaml [lejepa]=fmnist-lejepa.yaml)
declare -A extra=([ijepa-bf16]="--set ijepa.target_precision=bf16")
declare -A same_random=([ijepa-bf16]=ijepa)
out=${OUT:-$src/runs/learning}
data=${DATA:-$src/data/fmnist}
report=${REPORT_ONLY:-0}
case "$report" in 0|1) ;; *) echo "learning.sh: REPORT_ONLY '$report': 0 (run the rows) or 1 (print the tables of OUT's files)" >&2; exit 2 ;; esac
# LONG, LONG_OBJ and the long row's step count before anything runs (the
# long row runs last, hours in: a typo there cost every row before it, or
# dropped the row silently)
long=${LONG:-0}; long_obj=${LONG_OBJ:-ijepa}
case "$long" in 0|1) ;; *) echo "learning.sh: LONG '$long': 0 (no long row) or 1 (one 60-minute row of LONG_OBJ)" >&2; exit 2 ;; esac
[ "$long" = 0 ] || [ -n "${config[$long_obj]:-}" ] ||
  { echo "learning.sh: LONG_OBJ '$long_obj': unknown objective (ijepa, ijepa-bf16, lejepa)" >&2; exit 2; }
[ "$long" = 0 ] || [ "$report" = 1 ] || [[ ${steps[$long_obj]} =~ ^[1-9][0-9]{0,8}$ ]] ||
  { echo "learning.sh: LONG=1: the $long_obj step count '${steps[$long_obj]}' is not an integer from 1 to 999999999 (IJEPA_STEPS / LEJEPA_STEPS)" >&2; exit 2; }
[ "$report" = 1 ] || "$src/scripts/pack-fmnist.sh" "$data" "$b/jepa-shard"
# every encoder row uses the same probe features: the means of the last 4
# blocks, concatenated (eval.pool_blocks; chosen on the probe's validation
# split, docs/trainer.md)
common=(--set parallel.threads_per_rank=1 --set train.batch_per_rank=64 --set eval.pool_blocks=4
        --set eval.max_iters="${PROBE_ITERS:-200}" --set eval.wd_min="${PROBE_WD_MIN:-1e-5}"
        --set eval.wd_zero="${PROBE_WD_ZERO:-true}"
        --set data.train="$data/train" --set data.test="$data/test")
val() { sed -n "s/^$2 \([0-9.e+-]*\)$/\1/p" "$1" | tail -n 1; }
# collapse indicators of a trained run, from its summary.json, as `name value` lines
health() { sed -n 's/^ *"\(emb_std\|target_std\|sigreg\)": *\([0-9.e+-]*\),*$/\1 \2/p' "$1/summary.json"; }

# every row's settings checked before any row runs or any file is written:
# a bad PROBE_* value, seed, step count or objective name stops here, in
# one line; the long row's settings too
# check CONFIG ARGS...: jepa-launch run --dry-run as a checker; its lines
# saying what each --set gives are not for us, its refusal is (and its status)
check() {
  local msg rc=0
  msg=$("$b/jepa-launch" run "$src/configs/$1" --dry-run "${@:2}" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq 0 ] && return 0
  printf '%s\n' "$msg" | grep -v '^jepa-launch: dry run: ' >&2
  exit "$rc"
}
if [ "$long" = 1 ] && [ "$report" = 0 ]; then
  # shellcheck disable=SC2086
  check "${config[$long_obj]}" "${common[@]}" ${extra[$long_obj]:-} --set seed=0 --set train.steps=$((6 * ${steps[$long_obj]})) \
    --set train.minutes=0
fi
for obj in $objectives; do
  [ -n "${config[$obj]:-}" ] || { echo "learning.sh: unknown objective '$obj' (ijepa, ijepa-bf16, lejepa)" >&2; exit 2; }
  # the dry run below does not build the model: bf16's CPU check is here
  if [ "$obj" = ijepa-bf16 ] && [ "$report" = 0 ] &&
    { ! grep -qw avx512_bf16 /proc/cpuinfo || [ "${JEPA_DEBUG_NO_BF16:-0}" = 1 ]; }; then
    echo "learning.sh: ijepa-bf16 (ijepa.target_precision=bf16) needs a CPU with AVX512_BF16; this one has none" >&2
    exit 2
  fi
  [ "$report" = 1 ] && continue # runs nothing: only the rows' files are read
  for s in $seeds; do
    # shellcheck disable=SC2086 # extra: whole --set words, no spaces inside
    check "${config[$obj]}" "${common[@]}" ${extra[$obj]:-} --set seed="$s" --set train.steps="${steps[$obj]}" \
      --set train.minutes=0
  done
done

if [ "$report" = 0 ]; then
mkdir -p "$out"
declare -A made=() # the random-init rows this run wrote: OBJ-SEED
"$b/jepa-eval" --pixels "$src/configs/fmnist-tiny.yaml" "${common[@]}" > "$out/pixels.txt"
for obj in $objectives; do
  for s in $seeds; do
    r0=${same_random[$obj]:-}
    if [ -n "$r0" ] && [ -n "${made[$r0-$s]:-}" ]; then # that row, made by this run
      cp "$out/random-$r0-s$s.txt" "$out/random-$obj-s$s.txt"
    else
      "$b/jepa-eval" --random "$src/configs/${config[$obj]}" "${common[@]}" --set seed="$s" \
        > "$out/random-$obj-s$s.txt"
      made[$obj-$s]=1
    fi
    run="$out/$obj-s$s"
    rm -rf "$run"
    # shellcheck disable=SC2086
    mpirun -np 2 --bind-to none "$b/jepa-train" "$src/configs/${config[$obj]}" "${common[@]}" \
      ${extra[$obj]:-} --set seed="$s" --set train.steps="${steps[$obj]}" --set train.minutes=0 --set run.dir="$run" \
      > "$run.txt"
    health "$run" >> "$run.txt"
  done
done
if [ "$long" = 1 ]; then
  obj=$long_obj; run="$out/$obj-60min-s0"
  rm -rf "$run"
  # shellcheck disable=SC2086
  mpirun -np 2 --bind-to none "$b/jepa-train" "$src/configs/${config[$obj]}" "${common[@]}" ${extra[$obj]:-} \
    --set seed=0 --set train.steps=$((6 * ${steps[$obj]})) --set train.minutes=0 --set run.dir="$run" \
    > "$run.txt"
  health "$run" >> "$run.txt"
fi
fi

# rows: NAME FILE (each FILE holds `name value` lines); REPORT_ONLY=1 reads
# the files an earlier run left in OUT and runs nothing
rows=()
need() { [ -s "$1" ] || { echo "learning.sh: $1: missing or empty (REPORT_ONLY=1 reads an earlier run's files)" >&2; exit 1; }; }
need "$out/pixels.txt"; rows+=("pixels $out/pixels.txt")
for obj in $objectives; do
  for s in $seeds; do
    need "$out/random-$obj-s$s.txt"; rows+=("random-$obj $out/random-$obj-s$s.txt")
    need "$out/$obj-s$s.txt"; rows+=("$obj $out/$obj-s$s.txt")
  done
done
if [ "$long" = 1 ]; then
  obj=$long_obj; need "$out/$obj-60min-s0.txt"; rows+=("$obj-60min $out/$obj-60min-s0.txt")
fi

echo "probe: eval.max_iters ${PROBE_ITERS:-200}, eval.wd_min ${PROBE_WD_MIN:-1e-5}, eval.wd_zero ${PROBE_WD_ZERO:-true} for every row"
# mean, sample std and min of each metric per row name
printf '%s\n' "${rows[@]}" | while read -r name file; do
  for m in probe_acc knn_acc probe1pct_acc probe10pct_acc emb_std sigreg target_std; do
    v=$(val "$file" "$m"); if [ -n "$v" ]; then echo "$name $m $v"; fi
  done
done | awk '
  { k = $1 " " $2; n[k]++; s[k] += $3; q[k] += $3 * $3; if (!(k in lo) || $3 < lo[k]) lo[k] = $3
    if (!(k in seen)) { seen[k] = 1; order[++no] = k } }
  END {
    printf "%-18s %-14s %5s %8s %8s %8s\n", "encoder", "metric", "runs", "mean", "std", "min"
    for (i = 1; i <= no; i++) { k = order[i]; split(k, p, " ")
      sd = n[k] > 1 ? sqrt((q[k] - s[k] * s[k] / n[k]) / (n[k] - 1)) : 0
      printf "%-18s %-14s %5d %8.4f %8.4f %8.4f\n", p[1], p[2], n[k], s[k] / n[k], sd, lo[k] }
    for (i = 1; i <= no; i++) { k = order[i]; split(k, p, " ")
      printf "learning %s %s_mean %.4f %s_min %.4f runs %d\n", p[1], p[2], s[k] / n[k], p[2], lo[k], n[k] } }'
# per seed, trained minus its own random-init encoder (issue 13's bar is
# on each seed, so the minimum is the figure), in points; a pair with a
# figure missing stops the script (a seed left out would hide from the minimum)
pairs=$(for obj in $objectives; do
  for s in $seeds; do
    for m in probe_acc knn_acc; do
      a=$(val "$out/$obj-s$s.txt" $m); r=$(val "$out/random-$obj-s$s.txt" $m)
      if [ -z "$a" ] || [ -z "$r" ]; then
        echo "learning.sh: seed $s: no $m in $out/$obj-s$s.txt or $out/random-$obj-s$s.txt" >&2; exit 1
      fi
      echo "$obj $m $s $a $r"
    done
  done
done)
printf '%s\n' "$pairs" | awk '
  { d = 100 * ($4 - $5); k = $1 " " $2
    printf "margin %s %s seed %s %+.2f points (%.4f against random init %.4f)\n", $1, $2, $3, d, $4, $5
    if (!(k in lo) || d < lo[k]) lo[k] = d; s[k] += d; n[k]++
    if (!(k in seen)) { seen[k] = 1; order[++no] = k } }
  END { for (i = 1; i <= no; i++) { k = order[i]; split(k, p, " ")
      printf "learning %s %s_margin_mean %.2f %s_margin_min %.2f seeds %d\n", p[1], p[2], s[k] / n[k], p[2], lo[k], n[k] } }'
