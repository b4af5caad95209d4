# netns.sh - two "hosts" on this machine for multi-node tests and benchmarks:
# network namespaces NS_A and NS_B joined by one veth pair (IP_A and IP_B on
# SUBNET, nothing else: no route out, no address on any existing link), an
# rsh agent that Open MPI uses in place of ssh (it runs the remote daemon
# inside the peer's namespace), and an mpirun wrapper that starts one rank on
# each host over TCP restricted to the pair. Source it, then:
#   netns_up DIR     creates both hosts and DIR/agent, DIR/mpirun-2hosts;
#                    returns 77 with the reason in NETNS_WHY when this machine
#                    does not permit it (not root, no `ip`, no netns or veth)
#   netns_down       kills what still runs inside the namespaces (by pid) and
#                    deletes them (the veth pair goes with them); idempotent,
#                    so call it from an EXIT trap
#   netns_bytes      bytes sent plus received on host A's end of the pair
# A run killed with SIGKILL (a CTest timeout) cannot clean up: netns_up first
# deletes namespaces of this naming whose creating shell no longer exists.
# Processes share this machine's PIDs and files; only the network differs, so
# a run directory under /tmp is the "shared file system" of a real cluster.

NETNS_TAG="jmn$$"              # veth names are at most 15 characters
NS_A="jepa-mn-$$-a"
NS_B="jepa-mn-$$-b"
IF_A="${NETNS_TAG}a"
IF_B="${NETNS_TAG}b"
IP_A=10.231.7.1
IP_B=10.231.7.2
SUBNET=10.231.7.0/30
NETNS_UP=0
NETNS_WHY=""

netns_up() {
  local dir=$1 mpirun=${2:-mpirun}
  if [ "$(id -u)" -ne 0 ]; then NETNS_WHY="not root (ip netns needs CAP_SYS_ADMIN)"; return 77; fi
  if ! command -v ip >/dev/null; then NETNS_WHY="no ip command (iproute2)"; return 77; fi
  netns_reap
  local e
  if ! e=$(ip netns add "$NS_A" 2>&1); then NETNS_WHY="ip netns add: ${e//$'\n'/ }"; return 77; fi
  NETNS_UP=1
  if ! e=$( { ip netns add "$NS_B" && ip link add "$IF_A" type veth peer name "$IF_B" &&
             ip link set "$IF_A" netns "$NS_A" && ip link set "$IF_B" netns "$NS_B" &&
             ip -n "$NS_A" addr add "$IP_A/30" dev "$IF_A" && ip -n "$NS_B" addr add "$IP_B/30" dev "$IF_B" &&
             ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
             ip -n "$NS_A" link set "$IF_A" up && ip -n "$NS_B" link set "$IF_B" up; } 2>&1); then
    NETNS_WHY="namespace/veth setup: ${e//$'\n'/ }"
    netns_down
    return 77
  fi
  # Open MPI calls `AGENT [options] HOST orted ARGS...` and expects ssh's
  # behaviour: the words joined and run by a shell on HOST (orted's
  # arguments carry their own shell quoting).
  cat >"$dir/agent" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
case "\$host" in
  $IP_A) ns=$NS_A ;;
  $IP_B) ns=$NS_B ;;
  *) echo "agent: unknown host '\$host' (hosts: $IP_A $IP_B)" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
  # mpirun itself runs on host A; one slot per host, so -np 2 puts rank 0 on
  # A and rank 1 on B. Both the daemons' out-of-band channel and the MPI
  # byte transport are pinned to the pair's subnet. The two "hosts" share
  # this machine's cores, and each daemon would bind its rank to its first
  # core (both ranks on core 0): no binding (an environment default, so a
  # --bind-to on the command line still wins).
  cat >"$dir/mpirun-2hosts" <<EOF
#!/bin/sh
export OMPI_MCA_hwloc_base_binding_policy=none
exec ip netns exec $NS_A $mpirun --host $IP_A:1,$IP_B:1 --mca plm_rsh_agent $dir/agent \\
  --mca oob_tcp_if_include $SUBNET --mca btl_tcp_if_include $SUBNET "\$@"
EOF
  chmod +x "$dir/agent" "$dir/mpirun-2hosts"
}

netns_down() {
  [ "$NETNS_UP" = 1 ] || return 0
  local ns p
  for ns in "$NS_A" "$NS_B"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in "$NS_A" "$NS_B"; do
    ip netns del "$ns" 2>/dev/null
  done
  ip link del "$IF_A" 2>/dev/null # only if setup stopped before moving it
  NETNS_UP=0
}

netns_reap() {
  local ns pid p
  for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(jepa-mn-[0-9]*-[ab]\)\( .*\)\{0,1\}$/\1/p'); do
    pid=${ns#jepa-mn-}; pid=${pid%-*}
    kill -0 "$pid" 2>/dev/null && continue
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
}

netns_bytes() {
  ip netns exec "$NS_A" cat "/sys/class/net/$IF_A/statistics/tx_bytes" \
    "/sys/class/net/$IF_A/statistics/rx_bytes" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# netns_pid_of NS NAME: the pid of the process running program NAME inside
# NS (first); by the executable's path, which a re-exec cannot rename
netns_pid_of() {
  local p e
  for p in $(ip netns pids "$1" 2>/dev/null); do
    e=$(readlink "/proc/$p/exe" 2>/dev/null)
    [ "${e##*/}" = "$2" ] && { echo "$p"; return 0; }
  done
  return 1
}
