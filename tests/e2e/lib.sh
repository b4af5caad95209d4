# lib.sh - helpers for the end-to-end tests: run a command, capture exit code
# and stderr, and assert on them. Each failed check prints why and counts.
set -u
B="${JEPA_BUILD:?JEPA_BUILD must name the build directory}"
S="${JEPA_SRC:?JEPA_SRC must name the source directory}"
T=$(mktemp -d /tmp/jepa-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }

# run NAME CMD...: runs CMD, sets RC and ERR (stderr) and OUT (stdout)
run() {
  local name=$1; shift
  "$@" >"$T/out" 2>"$T/err"
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
}

# expect_error DESC WANT_RC PATTERN...: last run failed with WANT_RC and one
# stderr line that contains every PATTERN
expect_error() {
  local desc=$1 want=$2; shift 2
  local lines
  lines=$(printf '%s' "$ERR" | grep -c '')
  if [ "$RC" -ne "$want" ]; then bad "$desc: exit $RC, want $want (stderr: $ERR)"; return; fi
  if [ "$lines" -ne 1 ]; then bad "$desc: $lines stderr lines, want 1: $ERR"; return; fi
  for p in "$@"; do
    case "$ERR" in *"$p"*) ;; *) bad "$desc: stderr lacks '$p': $ERR"; return ;; esac
  done
  ok "$desc"
}

# expect_full DESC PROG CMD...: CMD with its stdout on a full disk
# (/dev/full) fails with exit 1 and says so in one line on stderr, the last:
# "PROG: write error on stdout: No space left on device" (its figures are lost)
expect_full() {
  local desc=$1 prog=$2; shift 2
  "$@" >/dev/full 2>"$T/err"
  RC=$?
  ERR=$(cat "$T/err")
  local want="$prog: write error on stdout: No space left on device"
  if [ "$RC" -ne 1 ]; then bad "$desc > /dev/full: exit $RC, want 1 (stderr: $ERR)"; return; fi
  if [ "$(printf '%s\n' "$ERR" | grep -cF "write error")" != 1 ] || [ "$(printf '%s\n' "$ERR" | tail -n 1)" != "$want" ]; then
    bad "$desc > /dev/full: stderr does not end in the one line '$want': $ERR"; return
  fi
  ok "$desc > /dev/full: exit 1, one line"
}

# expect_interrupted WHAT SIG STATUS NAME CMD...: CMD writes $T/NAME; once its
# staging directory .NAME.partial-PID holds a shard, SIG stops it: one line
# naming $T/NAME and "nothing written", exit STATUS, no staging directory
# and no output left. Job control on: a script's background jobs otherwise
# start with SIGINT ignored (and the writers keep an ignored SIGINT ignored).
expect_interrupted() {
  local what=$1 sig=$2 num=$3 name=$4 seen=0 i pid
  shift 4
  set -m
  "$@" 2>"$T/err.$name" & pid=$!
  set +m
  for i in $(seq 200); do
    ls -a "$T" | grep -q "^\.$name\.partial-" && { seen=1; break; }; sleep 0.05
  done
  sleep 0.3 # inside the write loop
  [ "$seen" -eq 1 ] && ls "$T"/.$name.partial-*/ | grep -q 'jshard' || bad "$sig: no shard staged yet"
  kill -"$sig" "$pid"; wait "$pid"; RC=$?; ERR=$(cat "$T/err.$name")
  expect_error "$what stopped by SIG$sig" "$num" "$T/$name: interrupted by SIG$sig" "nothing written"
  ls -a "$T" | grep -q "^\.$name\.partial-" && bad "SIG$sig left $(ls -d "$T"/.$name.partial-*)" ||
    ok "SIG$sig: no staging directory left"
  [ -e "$T/$name" ] && bad "SIG$sig left $T/$name" || ok "SIG$sig: no output directory"
}

# expect_stopped WHAT SIG STATUS GLOBS LINE CMD...: CMD runs in the
# background; once a path matching one of GLOBS (space-separated) exists
# (its temporary output, the moment it is writing), SIG stops it: exit
# STATUS and one stderr line that contains LINE, "interrupted by SIG" and
# "nothing written". Sets RC, ERR and OUT; what is left on disk is the
# caller's to check. Job control as in expect_interrupted.
expect_stopped() {
  local what=$1 sig=$2 num=$3 line=$5 seen=0 i g pid globs
  read -ra globs <<<"$4"
  shift 5
  set -m
  "$@" >"$T/out.stop" 2>"$T/err.stop" & pid=$!
  set +m
  for i in $(seq 1500); do
    for g in "${globs[@]}"; do compgen -G "$g" >/dev/null && seen=1; done
    [ "$seen" -eq 1 ] && break; sleep 0.02
  done
  [ "$seen" -eq 1 ] || bad "$what: ${globs[*]} never appeared"
  kill -"$sig" "$pid"; wait "$pid"; RC=$?; ERR=$(cat "$T/err.stop"); OUT=$(cat "$T/out.stop")
  expect_error "$what stopped by SIG$sig" "$num" "$line" "interrupted by SIG$sig" "nothing written"
}

# pack_fmnist: Fashion-MNIST shards in $T/fm/{train,test}; sets DATA to the
# --set arguments that point a run at them
pack_fmnist() {
  bash "$S/scripts/pack-fmnist.sh" "$T/fm" "$B/jepa-shard" || { bad "packing Fashion-MNIST failed"; return 1; }
  DATA=(--set data.train="$T/fm/train" --set data.test="$T/fm/test")
}

# tiny_data KIND DIR...: a real data set of KIND in each DIR, a few records
# (for a fake mpirun: the launcher reads each manifest's kind of records):
# images (16 blank 8x8 u8 images, jepa-shard pack) or episodes (4 world
# episodes of 8 steps, jepa-world gen)
tiny_data() {
  local kind=$1 d; shift
  head -c 1024 /dev/zero >"$T/tiny.raw"
  for d in "$@"; do
    case "$kind" in
      images) "$B/jepa-shard" pack --raw "$T/tiny.raw" --height 8 --width 8 --out "$d" --quiet >/dev/null ;;
      episodes) "$B/jepa-world" gen --out "$d" --episodes 4 --steps 8 --seed 1 --quiet ;;
      *) false ;;
    esac || { bad "tiny_data $kind $d failed"; return 1; }
  done
}

# mkpix N FILE.raw FILE.lab [P]: N noisy 28x28 images whose class (i % 10) is
# the row of a bright band, so raw pixels separate them; with P > 0 each
# label is another, random class with probability P, so no figure is 1
# (export LC_ALL=C)
mkpix() {
  awk -v n="$1" 'BEGIN { srand(7); for (i = 0; i < n; i++) { c = i % 10
    for (k = 0; k < 784; k++) { r = int(k / 28)
      printf "%c", (r >= 2 * c + 4 && r < 2 * c + 8) ? 200 + int(rand() * 50) : 1 + int(rand() * 60) } } }' > "$2"
  awk -v n="$1" -v p="${4:-0}" 'BEGIN { srand(11); for (i = 0; i < n; i++) {
    c = i % 10; if (rand() < p) c = int(rand() * 10); printf "%c", c } }' > "$3"
}

finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
