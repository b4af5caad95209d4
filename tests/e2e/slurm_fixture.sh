# slurm_fixture.sh - sourced after lib.sh by the tests that need a real
# one-node Slurm: installs slurm-wlm and munge if missing, writes a one-node
# slurm.conf in $T/slurm (CPUs from nproc), starts munged, slurmctld and
# slurmd, waits for the node to be idle, and on EXIT cancels the jobs and
# stops the daemons it started, by pid, then removes $T. No system state is
# touched (munge has its own key and socket). Ports 16817/16818: the tests
# that source this run serially (RUN_SERIAL); JEPA_TEST_SLURM_PORT=P takes
# P and P+1 instead, for a second clone testing on the same machine.
need=""
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  echo "installing$need"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null \
      || { echo "cannot install$need"; exit 1; }
  fi
fi

SD="$T/slurm"
mkdir -p "$SD/state" "$SD/spool"
PIDS=()
stop_daemons() {
  if [ -n "${SLURM_CONF:-}" ] && [ "${#PIDS[@]}" -gt 0 ]; then
    scancel --user="$(id -un)" >/dev/null 2>&1
    for _ in $(seq 20); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap stop_daemons EXIT

# munge with its own key, socket and files: no system state is touched
dd if=/dev/urandom of="$SD/munge.key" bs=1024 count=1 status=none
chmod 400 "$SD/munge.key"
chown munge: "$SD/munge.key" 2>/dev/null
munged -F --force --key-file="$SD/munge.key" --socket="$SD/munge.sock" --pid-file="$SD/munged.pid" \
  --log-file="$SD/munged.log" --seed-file="$SD/munged.seed" >"$SD/munged.out" 2>&1 &
PIDS+=($!)

host=$(hostname)
port=${JEPA_TEST_SLURM_PORT:-16817}
cat >"$SD/slurm.conf" <<EOF
ClusterName=jepatest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$SD/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$SD/state
SlurmdSpoolDir=$SD/spool
SlurmctldPidFile=$SD/slurmctld.pid
SlurmdPidFile=$SD/slurmd.pid
SlurmctldLogFile=$SD/slurmctld.log
SlurmdLogFile=$SD/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$SD/slurm.conf"
for _ in $(seq 20); do [ -S "$SD/munge.sock" ] && break; sleep 0.25; done
slurmctld -D -i -f "$SLURM_CONF" >"$SD/slurmctld.out" 2>&1 &
PIDS+=($!)
sleep 1
slurmd -D -f "$SLURM_CONF" >"$SD/slurmd.out" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && { up=1; break; }
  sleep 0.5
done
[ "$up" = 1 ] && ok "single-node Slurm is up ($(nproc) CPUs)" || {
  bad "Slurm did not come up"; tail -5 "$SD/slurmctld.log" "$SD/slurmd.log" 2>&1; finish; exit 1; }
