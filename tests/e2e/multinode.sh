#!/usr/bin/env bash
# Two hosts over TCP: two network namespaces joined by a veth pair stand in for
# two machines (netns.sh). `jepa-launch run` starts jepa-train with one rank on
# each host through Open MPI's rsh launcher, over btl tcp on the pair only;
# the run trains, checks its replicas every 4 steps, checkpoints, loses the
# remote rank to kill -9, is restarted by max_restarts from its checkpoint,
# and ends with the param_hash of the same run on one host over TCP.
# Exits 77 (CTest SKIP_RETURN_CODE) with one line where namespaces are not
# permitted. About 20-40 s on 2 cores.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
L="$B/jepa-launch"
SPEC="$S/configs/fmnist-tiny.yaml"
LPID=""
cleanup() {
  # the launcher first (TERM: it stops restarting and passes it to mpirun),
  # then whatever still runs on the two hosts
  if [ -n "$LPID" ]; then kill -TERM "$LPID" 2>/dev/null; sleep 1; kill -9 "$LPID" 2>/dev/null; fi
  netns_down
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

netns_up "$T" "$MPI"
rc=$?
if [ "$rc" -eq 77 ]; then echo "SKIP multinode: network namespaces not permitted here: $NETNS_WHY"; exit 77; fi
[ "$rc" -eq 0 ] || { bad "netns setup failed (rc $rc)"; finish; exit 1; }
ok "two hosts: $NS_A ($IP_A) and $NS_B ($IP_B) on veth $IF_A-$IF_B"

pack_fmnist
N=60
RUN=(--np 2 --set model.width=32 --set model.depth=2 --set eval.pool_blocks=1 --set model.heads=2 --set model.pred_width=16
     --set model.pred_depth=1 --set model.pred_heads=2 --set train.steps=$N --set train.log_every=1
     --set train.batch_per_rank=32 --set parallel.threads_per_rank=1 --set eval.probe=false
     --set parallel.transport=tcp --set parallel.check_every=4 --set parallel.bucket_mb=0.01
     --set checkpoint.every_steps=5 "${DATA[@]}")
hash_of() { sed -n 's/.*"param_hash": "\([0-9a-f]*\)".*/\1/p' "$1/summary.json" 2>/dev/null; }
last_step() { tail -n 1 "$1/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step": \([0-9]*\),.*/\1/p'; }

# ---- the reference: the same run on one host over TCP (loopback)
run ref timeout 300 "$L" run "$SPEC" "${RUN[@]}" --set run.dir="$T/one"
H1=$(hash_of "$T/one")
[ "$RC" -eq 0 ] && [ -n "$H1" ] && ok "one host, TCP: param_hash $H1" || bad "one-host run: rc $RC: $ERR"

# ---- two hosts; kill -9 the rank on host B once step K is logged
K=$((12 + RANDOM % 20))
B0=$(netns_bytes)
JEPA_MPIRUN="$T/mpirun-2hosts" timeout 300 "$L" run "$SPEC" "${RUN[@]}" --set run.dir="$T/two" \
  --set max_restarts=2 >"$T/two.out" 2>"$T/two.err" &
LPID=$!
# the remote rank is found while the run starts and frozen (SIGSTOP) the
# moment step K is logged: a short run could otherwise finish between
# reading the step and the kill (seen under load: it resumed from step 60)
step=0 rb=""
for _ in $(seq 1200); do
  [ -n "$rb" ] || rb=$(netns_pid_of "$NS_B" jepa-train)
  step=$(last_step "$T/two")
  if [ "${step:-0}" -ge "$K" ]; then [ -n "$rb" ] && kill -STOP "$rb"; break; fi
  kill -0 "$LPID" 2>/dev/null || break
  sleep 0.05
done
ra=$(netns_pid_of "$NS_A" jepa-train)
[ -n "$ra" ] && [ -n "$rb" ] && [ "$ra" != "$rb" ] && ok "rank 0 runs in $NS_A (pid $ra), rank 1 in $NS_B (pid $rb)" \
  || bad "ranks by host: A '$ra', B '$rb' at step '$step'"
tr '\0' '\n' <"/proc/$rb/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && ok "the rank on $NS_B is rank 1" \
  || bad "pid '$rb' on $NS_B is not rank 1"
[ -n "$rb" ] && kill -9 "$rb" && ok "kill -9 of the remote rank (pid $rb) at step ${step:-?} (>= $K)" \
  || bad "no remote rank to kill at step '$step': $(tail -n 3 "$T/two.err")"
wait "$LPID"; krc=$?; LPID=""
B1=$(netns_bytes)
H2=$(hash_of "$T/two")
[ "$krc" -eq 0 ] && grep -q 'restart 1/2 with resume=auto' "$T/two/launch.log" \
  && ok "jepa-launch restarted the two-host job and it finished" \
  || bad "two-host run: rc $krc, launch.log: $(cat "$T/two/launch.log" 2>&1) $(tail -n 5 "$T/two.err")"
from=$(sed -n 's/^train: resuming from .* (step \([0-9]*\) of '"$N"')$/\1/p' "$T/two.err" | head -n 1)
# the run goes on for a moment after its step was read, so the checkpoint
# it resumes from may lie a step or two past it; it must be a periodic one
# from the middle of the run
[ "${from:-0}" -ge 5 ] && [ "${from:-0}" -lt "$N" ] && [ $(( ${from:-1} % 5 )) -eq 0 ] \
  && ok "the restart resumed from the checkpoint of step $from (killed after step $step)" \
  || bad "resume point '$from' (killed after step '$step'): $(grep -i resum "$T/two.err")"
grep -q '"ranks": 2' "$T/two/summary.json" 2>/dev/null && ok "summary: 2 ranks" || bad "summary ranks: $(cat "$T/two/summary.json" 2>&1)"
ls "$T/two/checkpoints/" 2>/dev/null | grep -q "step-000000$N.ckpt" && ok "checkpoints written up to step $N" \
  || bad "checkpoints: $(ls "$T/two/checkpoints" 2>&1 | tr '\n' ' ')"
# every 4 steps and at the end the trainer hashes the parameters on both
# hosts and aborts on a difference: a finished run had equal replicas
[ -n "$H2" ] && [ "$H2" = "$H1" ] && ok "two hosts, killed and restarted, end bitwise equal to one host ($H2)" \
  || bad "param_hash: one host '$H1', two hosts '$H2'"
# the gradients crossed the pair: at least one gradient (about 150 KB of
# floats here) per step each way, on top of the daemons' traffic
nb=$(( ${B1:-0} - ${B0:-0} ))
[ "$nb" -gt $(( N * 2 * 100000 )) ] && ok "veth carried $nb bytes ($N+ steps)" || bad "veth carried only $nb bytes"
finish
