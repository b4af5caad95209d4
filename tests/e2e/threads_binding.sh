#!/usr/bin/env bash
# parallel.threads_per_rank above the CPUs a rank's binding allows (mpirun's
# default --bind-to core for 2 ranks or fewer, when a user runs jepa-train or
# jepa-eval by hand): rank 0 warns in one line, naming the key, the CPU count
# and the fix, and the program runs as asked; --bind-to none: no warning.
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
KEY="jepa: warning: parallel.threads_per_rank"

# the CPUs one rank gets bound to a core (2 with hyperthreads) and unbound;
# one thread more than the bound count must warn
C=$("$MPI" -np 1 --bind-to core nproc) && N=$("$MPI" -np 1 --bind-to none nproc) ||
  { bad "mpirun nproc failed"; finish; exit 1; }
TH=$((C + 1))
mkpix 40 "$T/px.raw" "$T/px.lab"
"$B/jepa-shard" pack --raw "$T/px.raw" --raw-labels "$T/px.lab" --height 28 --width 28 --out "$T/px" --quiet ||
  bad "packing failed"
TINY=(--set model.width=16 --set model.depth=1 --set eval.pool_blocks=1 --set model.heads=2
      --set model.pred_width=8 --set model.pred_depth=1 --set model.pred_heads=2
      --set train.steps=1 --set train.minutes=0 --set train.batch_per_rank=8 --set eval.probe=false
      --set eval.knn_k=3 --set eval.fewlabel=false --set eval.max_iters=5
      --set data.train="$T/px" --set data.test="$T/px" --set parallel.threads_per_rank=$TH)

# expect_warned DESC: the last run exited 0 with the warning once, whole
expect_warned() {
  local s=""; [ "$C" -eq 1 ] || s=s
  local want="$KEY $TH but rank 0 may run on $C CPU$s (its binding, e.g. mpirun's default --bind-to core for 2 ranks or fewer)"
  local lines; lines=$(printf '%s\n' "$ERR" | grep -c "^$KEY")
  if [ "$RC" -ne 0 ]; then bad "$1: exit $RC: $ERR"; return; fi
  if [ "$lines" -ne 1 ]; then bad "$1: $lines warning lines, want 1: $ERR"; return; fi
  case "$ERR" in *"$want"*"run mpirun with --bind-to none, or set parallel.threads_per_rank=$C"*) ok "$1: warned once" ;;
    *) bad "$1: not the warning wanted ($want ...): $ERR" ;; esac
}
# expect_quiet DESC: the last run exited 0 without the warning
expect_quiet() {
  if [ "$RC" -ne 0 ]; then bad "$1: exit $RC: $ERR"; return; fi
  case "$ERR" in *"$KEY"*) bad "$1: warned: $ERR" ;; *) ok "$1: no warning" ;; esac
}

run trc "$MPI" -np 1 --bind-to core "$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${TINY[@]}" --set run.dir="$T/run"
expect_warned "jepa-train, 1 rank bound to a core, $TH threads"
run evc "$MPI" -np 1 --bind-to core "$B/jepa-eval" "$T/run"
expect_warned "jepa-eval, 1 rank bound to a core, $TH threads"
if [ "$N" -ge "$TH" ]; then
  run trn "$MPI" -np 1 --bind-to none "$B/jepa-train" "$S/configs/fmnist-tiny.yaml" "${TINY[@]}" --set run.dir="$T/run2"
  expect_quiet "jepa-train, --bind-to none ($N CPUs), $TH threads"
  run evn "$MPI" -np 1 --bind-to none "$B/jepa-eval" "$T/run"
  expect_quiet "jepa-eval, --bind-to none ($N CPUs), $TH threads"
  # OMP_PROC_BIND binds the main thread to one place before main: the
  # places, not that thread's mask, are the rank's CPUs
  run evp "$MPI" -np 1 --bind-to none -x OMP_PROC_BIND=true "$B/jepa-eval" "$T/run"
  expect_quiet "jepa-eval, --bind-to none, OMP_PROC_BIND=true, $TH threads"
else
  ok "skipped: --bind-to none leaves $N CPU(s), fewer than $TH threads"
fi
# the case seen by hand: 2 ranks, mpirun's default binding; rank 0 alone says it
if [ "$N" -ge 2 ]; then
  run ev2 "$MPI" -np 2 "$B/jepa-eval" "$T/run"
  expect_warned "jepa-eval, 2 ranks, mpirun's default binding"
fi
finish
