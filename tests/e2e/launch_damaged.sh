#!/bin/bash
# launch_damaged.sh - jepa-launch given damaged or endless files, no training
# (a fake mpirun writes each point's files; about 3 s):
#   1. every file is read bounded: a device, FIFO or oversized file is
#      refused in one line naming it (memory capped with ulimit -v, so an
#      unbounded read fails here instead of growing);
#   2. status and results list a damaged point among the others, say it in
#      one line and exit 1; a points.csv that is not the sweep's points is
#      refused naming its line;
#   3. sweep --dry-run refuses what the sweep would.
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
unset JEPA_TRAIN_BIN
cd "$T" || exit 1
# capped CMD...: CMD with 400 MB of address space (an endless read ends there)
capped() { (ulimit -v 400000; exec "$@"); }

mkdir -p tr te && echo '{}' >tr/manifest.json && echo '{}' >te/manifest.json
printf 'data:\n  train: tr\n  test: te\ntrain.steps: 10\n' >base.yaml
printf 'base: base.yaml\ndir: sw\nparallel: 3\ngrid:\n  optim.lr: [0.001, 0.002, 0.003]\n' >s.yaml
# the fake mpirun: a finished run in the directory of its spec argument
cat >mpirun <<'SH'
#!/bin/bash
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} ;; esac; done
lr=$(sed -n 's/^  lr: //p' "$d/spec.resolved.yaml")
printf '{"step": 10, "loss": %s}\n' "$lr" >"$d/metrics.jsonl"
printf '{\n  "objective": "ijepa",\n  "final_loss": %s,\n  "probe_acc": -1,\n  "steps": 10,\n  "planned_steps": 10,\n  "stop_reason": "completed",\n  "param_hash": "00000000000000ab"\n}\n' "$lr" >"$d/summary.json"
SH
chmod +x mpirun
export JEPA_MPIRUN="$T/mpirun"
run sweep "$L" sweep s.yaml
[ "$RC" -eq 0 ] && [ -s sw/point-002/summary.json ] && ok "fixture: a sweep of 3 points" || bad "sweep: rc $RC: $OUT $ERR"
# fresh SRC DST: a copy of a finished sweep or run to damage
fresh() { rm -rf "$2"; cp -a "$1" "$2"; }

# ---- 1. bounded reads
run zero capped "$L" sweep /dev/zero --dry-run
expect_error "sweep /dev/zero" 2 "/dev/zero: not a regular file"
mkfifo fifo
run fifo timeout 10 "$L" sweep fifo --dry-run
expect_error "sweep of a FIFO (no writer: must not wait)" 2 "fifo: not a regular file"
head -c 1048577 /dev/zero | tr '\0' '#' >big.yaml
run big capped "$L" sweep big.yaml --dry-run
expect_error "a sweep file over 1 MiB" 2 "big.yaml: larger than 1048576 bytes"
for f in state metrics.jsonl summary.json; do
  fresh sw/point-001 r; rm -f "r/$f"; ln -s /dev/zero "r/$f"
  run st capped "$L" status r
  expect_error "status: $f a link to /dev/zero" 1 "r/$f: not a regular file"
  case "$OUT" in "r: damaged: $f: not a regular file"*) ok "status: the run shown damaged" ;;
    *) bad "status of r: $OUT" ;; esac
  run res capped "$L" results r
  expect_error "results: $f a link to /dev/zero" 1 "r/$f: not a regular file"
done
fresh sw/point-001 r; head -c 70000 /dev/zero | tr '\0' ' ' >r/summary.json
run st "$L" status r
expect_error "status: a 70000-byte summary.json" 1 "r/summary.json: larger than 65536 bytes"
# metrics.jsonl may be long: status reads its end only, plot a line at a time
fresh sw/point-001 r
awk 'BEGIN { for (i = 1; i <= 300000; i++) printf "{\"step\": %d, \"loss\": 0.5, \"pad\": \"%0200d\"}\n", i, 0 }' >r/metrics.jsonl
printf '{"step": 300001, "lo' >>r/metrics.jsonl # a line being written
run st capped "$L" status r
[ "$RC" -eq 0 ] && [ "$OUT" = "r: done, step 10, loss 0.5000, final_loss 0.0020" ] \
  && ok "status of a run with a 66 MB metrics.jsonl" || bad "status of a long log: rc $RC: $OUT $ERR"
rm r/summary.json
run st capped "$L" status r
case "$OUT" in *"step 300000, loss 0.5000") ok "status: the last complete line's step" ;; *) bad "status: $OUT $ERR" ;; esac
head -c 70000 /dev/zero | tr '\0' 'x' >r/metrics.jsonl
run pl capped "$L" plot r
expect_error "plot: a metrics line over 64 KiB" 2 "r/metrics.jsonl:1: a line longer than 65536 bytes"
[ -e r/plots ] && bad "plot left r/plots" || ok "plot wrote nothing"
fresh sw sz; rm sz/point-002/metrics.jsonl; ln -s /dev/zero sz/point-002/metrics.jsonl
run pl capped "$L" plot sz
expect_error "plot of a sweep, one point's metrics a link to /dev/zero" 2 "sz/point-002/metrics.jsonl: not a regular file"
[ -e sz/plots ] && bad "plot left sz/plots" || ok "plot of the sweep wrote nothing"
fresh sw sz; rm sz/points.csv; ln -s /dev/zero sz/points.csv
for c in status results plot; do
  run pz capped "$L" $c sz
  expect_error "$c: points.csv a link to /dev/zero" 2 "sz/points.csv: not a regular file"
done

finish
