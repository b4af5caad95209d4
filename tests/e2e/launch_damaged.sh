#!/bin/bash
# launch_damaged.sh - jepa-launch given damaged or endless files, no training
# (a fake mpirun writes each point's files; about 3 s):
#   1. every file is read bounded: a device, FIFO or oversized file is
#      refused in one line naming it (memory capped with ulimit -v, so an
#      unbounded read fails here instead of growing);
#   2. status and results list a damaged point among the others, say it in
#      one line and exit 1 (a summary.json or metrics.jsonl line with a
#      number given twice or out of range is damaged, not a figure); a
#      points.csv that is not the sweep's points is refused naming its line;
#   3. sweep --dry-run refuses what the sweep would;
#   4. random draws that repeat an earlier point's values are said in one
#      warning line by sweep and --dry-run (the points keep their draws);
#   and `results` of one run writes its results.csv too, `status` labels a
#   run as `results` does, and --help names what docs/launch.md says.
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
unset JEPA_TRAIN_BIN
cd "$T" || exit 1
# capped CMD...: CMD with 400 MB of address space (an endless read ends there)
capped() { (ulimit -v 400000; exec "$@"); }

tiny_data images tr te || { finish; exit 1; }
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

# results of one run (not a sweep): a table of one, and DIR/results.csv as
# for a sweep (it printed the table and wrote no CSV); the row is the run's,
# by its directory's name (it said "point 0"), given as r or r/.; a CSV that
# cannot be written is said in one line, exit 2
fresh sw/point-001 r
for given in r r/.; do
  run res1 "$L" results "$given"
  [ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | tr -s ' ')" = "$(printf 'run final_loss probe_acc steps status\nr 0.002000 - 10 done')" ] \
    && [ "$(cat r/results.csv 2>&1)" = "$(printf 'run,final_loss,probe_acc,steps,status\nr,0.002000,-,10,done')" ] \
    && ok "results of a run ($given): its row, and r/results.csv" \
    || bad "results of a run ($given): rc $RC: $OUT $ERR; csv: $(cat r/results.csv 2>&1)"
done
# status labels the run as results does (it said "r/." for r/.)
for given in r r/. "$T/r/"; do
  run st1 "$L" status "$given"
  [ "$RC" -eq 0 ] && [ "$OUT" = "r: done, step 10, loss 0.0020, final_loss 0.0020" ] \
    && ok "status of a run ($given): labelled r" || bad "status of a run ($given): rc $RC: $OUT $ERR"
done
# a run that cannot be written to (read-only, archived) is still a query that works:
# the table, one warning line, the exit of the table (0)
rm -f r/results.csv && mkdir r/results.csv
run res2 "$L" results r
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^r  *0.002000' && [ "$(printf '%s\n' "$ERR" | grep -c '')" = 1 ] \
  && printf '%s\n' "$ERR" | grep -q '^jepa-launch: warning: .*r/results.csv' \
  && ok "results of a run whose results.csv cannot be written: the table, one warning, exit 0" \
  || bad "results with results.csv unwritable: rc $RC: $OUT / $ERR"
rmdir r/results.csv

# ---- 1. bounded reads
run zero capped "$L" sweep /dev/zero --dry-run
expect_error "sweep /dev/zero" 2 "/dev/zero: not a regular file"
mkfifo fifo
run fifo timeout 10 "$L" sweep fifo --dry-run
expect_error "sweep of a FIFO (no writer: must not wait)" 2 "fifo: not a regular file"
# a run whose newest checkpoint and lock file are FIFOs: resume --dry-run
# neither waits on them (a FIFO's blocking open waits for a writer forever:
# timeout -k's 124 or 137) nor takes the FIFO for a checkpoint; nothing written
fresh sw/point-001 rfifo && rm -f rfifo/summary.json rfifo/lock && mkdir rfifo/checkpoints &&
  mkfifo rfifo/checkpoints/step-00000004.ckpt rfifo/lock && ls -lR rfifo >rfifo.before
run rfifo timeout -k 5 20 "$L" resume rfifo --dry-run
[ "$RC" -eq 0 ] && case "$OUT" in *mpirun*"--set run.dir=rfifo --set resume=auto"*) true ;; *) false ;; esac \
  && ls -lR rfifo | cmp -s - rfifo.before \
  && ok "resume --dry-run: a FIFO checkpoint and lock not waited on, nothing written" \
  || bad "resume --dry-run with FIFOs: rc $RC: $OUT / $ERR"
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
  grep -q ",damaged: $f: not a regular file" r/results.csv && ok "results: r/results.csv says the run is damaged" \
    || bad "results.csv of a damaged run: $(cat r/results.csv 2>&1)"
done
fresh sw/point-001 r; head -c 70000 /dev/zero | tr '\0' ' ' >r/summary.json
run st "$L" status r
expect_error "status: a 70000-byte summary.json" 1 "r/summary.json: larger than 65536 bytes"
# plot refuses a damaged run and writes nothing (it plotted it, exit 0)
run pl "$L" plot r
expect_error "plot: a 70000-byte summary.json" 2 "r/summary.json: larger than 65536 bytes" "nothing plotted"
[ -e r/plots ] && bad "plot of a damaged run wrote r/plots" || ok "plot of a damaged run wrote nothing"
rm -rf r/summary.json r/plots; mkdir r/summary.json
run pl "$L" plot r
expect_error "plot: summary.json a directory" 2 "r/summary.json: Is a directory" "nothing plotted"
[ -e r/plots ] && bad "plot of a damaged run wrote r/plots" || ok "plot of a damaged run wrote nothing"
# a run whose resolved spec is there but does not load is damaged, as a
# sweep's point is (status showed it done, exit 0, and plot drew it)
fresh sw/point-001 r; printf 'train: [unclosed\n' >r/spec.resolved.yaml
run st "$L" status r
expect_error "status: a spec.resolved.yaml that does not load" 1 "r/spec.resolved.yaml:"
case "$OUT" in "r: damaged: spec.resolved.yaml: "*) ok "status: the run shown damaged" ;; *) bad "status of r: $OUT" ;; esac
run pl "$L" plot r
expect_error "plot: a spec.resolved.yaml that does not load" 2 "r/spec.resolved.yaml:" "nothing plotted"
# a run with no state file (jepa-train alone) is resumed by its own
# directory (the advice said a literal DIR)
fresh sw/point-001 r; rm r/state r/summary.json
run st "$L" status r
[ "$RC" -eq 0 ] && [ "$OUT" = "r: unfinished (no checkpoint: jepa-launch resume r starts it over), step 10, loss 0.0020" ] \
  && ok "status of an unstated run names its directory" || bad "status of an unstated run: rc $RC: $OUT $ERR"
mkdir r/checkpoints && : >r/checkpoints/step-5.ckpt
run st "$L" status "$T/r"
[ "$OUT" = "r: unfinished (checkpoint at step 5; resume with jepa-launch resume $T/r or --set resume=auto), step 10, loss 0.0020" ] \
  && ok "status of an unstated run with a checkpoint names its directory" || bad "status with a checkpoint: $OUT"
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

# ---- 2. damaged sweep records and points
# a sweep made by an earlier build whose grid listed a value twice (refused
# for a new sweep since) still reads back: its points listed, not refused
fresh sw sd; sed -i 's/0.003\]/0.002]/' sd/sweep.yaml; sed -i '4s/0.003/0.002/' sd/points.csv
run olddup "$L" results sd
[ "$RC" -ne 2 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^point-00[0-2] ')" = 3 ] && case "$ERR" in *"listed twice"*) false ;; *) true ;; esac \
  && ok "results of an earlier build's sweep with a value listed twice" || bad "olddup: rc $RC: $OUT $ERR"
# sweep --slurm --dry-run of a finished sweep: each point once (it listed
# the finished ones twice), nothing to submit, nothing written
before=$(ls -lR --time-style=full-iso sw | sha256sum)
JEPA_SBATCH=false run sl "$L" sweep s.yaml --slurm --dry-run
[ "$RC" -eq 0 ] && [ "$OUT" = "$(printf 'point-%03d optim.lr=0.00%d (finished: skipped)\n' 0 1 1 2 2 3; echo 'every point is finished: nothing to submit')" ] \
  && [ "$(ls -lR --time-style=full-iso sw | sha256sum)" = "$before" ] && ok "sweep --slurm --dry-run of a finished sweep: each point once" \
  || bad "sweep --slurm --dry-run: rc $RC: [$OUT] $ERR"
# a point a stopped sweep never started (its directory prepared: spec
# files only) is pending to status and to --dry-run (it said "unfinished:
# continued"); a point with a metrics.jsonl is unfinished to both
sed 's/^dir: sw/dir: sp/' s.yaml >sp.yaml
run spf "$L" sweep sp.yaml
(cd sp/point-002 && rm -f state metrics.jsonl summary.json train.log launch.log)
(cd sp/point-001 && rm -f state summary.json)
run sps "$L" status sp
run spd "$L" sweep sp.yaml --dry-run
[ "$(printf '%s\n' "$OUT" | tail -2)" = "$(printf 'point-001 optim.lr=0.002 (unfinished: continued)\npoint-002 optim.lr=0.003 (pending: started)')" ] \
  && ok "sweep --dry-run: a point never started is pending, one that ran unfinished" || bad "sweep --dry-run of sp: rc $RC: $OUT $ERR"
run sps "$L" status sp
printf '%s\n' "$OUT" | grep -q '^point-002: pending$' && printf '%s\n' "$OUT" | grep -q '^point-001: unfinished' \
  && ok "status agrees: point-002 pending, point-001 unfinished" || bad "status of sp: $OUT"
run spr "$L" sweep sp.yaml
[ "$RC" -eq 0 ] && [ -s sp/point-002/summary.json ] && [ -s sp/point-001/summary.json ] \
  && ok "the sweep runs both again" || bad "sweep sp again: rc $RC: $OUT $ERR"
# a sweep made by an earlier build whose sweep.yaml held a key twice (the
# last won; refused for a new sweep since, as a spec file refuses it) still
# reads back; run as a sweep again it is refused at the second one
fresh sw sk; printf 'set:\n  train.steps: 10\n  train.steps: 10\nparallel: 1\n' >>sk/sweep.yaml
run olddupk "$L" status sk
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | tail -1)" = "3 of 3 points finished" ] \
  && ok "status of an earlier build's sweep with a key twice" || bad "olddupk status: rc $RC: $OUT $ERR"
run olddupk "$L" results sk
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c ' done$')" = 3 ] \
  && ok "results of an earlier build's sweep with a key twice" || bad "olddupk results: rc $RC: $OUT $ERR"
run olddupk "$L" sweep sk/sweep.yaml --dry-run
expect_error "sweep of a file with a key twice in set:" 2 "sk/sweep.yaml:8:3: set.train.steps: duplicate key (first at line 7)"
# points.csv must be the points sweep.yaml gives, line for line
pts() { # DESC LINE FOUND: points.csv (made by the commands on stdin) refused at LINE
  fresh sw sd; bash -c "$(cat)"
  for c in status results plot; do
    run pts "$L" $c sd
    expect_error "$c: $1" 2 "sd/points.csv:$2: found $3 where sd/sweep.yaml (3 points) gives"
  done
  [ -e sd/results.csv ] || [ -e sd/plots ] && bad "$1: written beside it" || ok "$1: nothing written"
}
pts "points.csv cut at a line boundary" 4 "the end of the file" <<<'head -3 sw/points.csv >sd/points.csv'
pts "a row cut mid-line" 3 "'1,point-0' (cut short: no newline)" \
  <<<'printf "point,dir,optim.lr\n0,point-000,0.001\n1,point-0" >sd/points.csv'
pts "a row naming ../../runs/a" 3 "'1,../../runs/a,0.002'" <<<'sed -i "s|^1,point-001|1,../../runs/a|" sd/points.csv'
pts "a duplicate row" 3 "'0,point-000,0.001'" <<<'sed -n "1,2p;2p;3,4p" sw/points.csv >sd/points.csv'
pts "an extra column" 2 "'0,point-000,0.001,x'" <<<'sed -i "2s/\$/,x/" sd/points.csv'
pts "another value" 4 "'2,point-002,0.004'" <<<'sed -i "4s/0.003/0.004/" sd/points.csv'
fresh sw sd; rm sd/sweep.yaml
run nosw "$L" results sd
expect_error "results: the sweep's sweep.yaml gone" 2 "cannot open sd/sweep.yaml" "the record of the sweep in sd"
# one damaged point among others: listed as such, the others as they are, exit 1
dmg() { # DESC WHY: point-001 damaged by the commands on stdin
  fresh sw sd; bash -c "$(cat)"
  run st "$L" status sd
  [ "$(printf '%s\n' "$OUT" | grep -c ': done, ')" = 2 ] && case "$OUT" in *"point-001: damaged: $2"*) true ;; *) false ;; esac \
    && [ "$(printf '%s\n' "$OUT" | tail -1)" = "2 of 3 points finished" ] && ok "status lists $1 and the others" \
    || bad "status, $1: $OUT"
  expect_error "status: $1" 1 "sd/point-001/$2" "1 of 3 points damaged"
  run res "$L" results sd
  case "$(printf '%s\n' "$OUT" | tail -1 | sed 's/  */ /g')" in "point-001 0.00"[25]" - - 10 damaged: $2"* | "point-001 ? - - 10 damaged: $2"*) true ;; *) false ;; esac \
    && [ "$(printf '%s\n' "$OUT" | grep -c ' done$')" = 2 ] && ok "results ranks $1 last, without figures" \
    || bad "results, $1: $OUT"
  expect_error "results: $1" 1 "sd/point-001/$2" "1 of 3 points damaged"
}
dmg "a summary.json cut before probe_acc" "summary.json: not a whole JSON object" \
  <<<'head -n 3 sw/point-001/summary.json >sd/point-001/summary.json'
dmg "a summary.json without probe_acc" "summary.json: no probe_acc" \
  <<<'sed -i "/probe_acc/d" sd/point-001/summary.json'
# a number that is no trainer's is no figure: it ranked the sweep (1e400
# read as inf, first) and a key given twice was taken once, silently
dmg "a summary.json with probe_acc 1e400" "summary.json: probe_acc: a number beyond a double's range" \
  <<<'sed -i "s/\"probe_acc\": -1,/\"probe_acc\": 1e400,/" sd/point-001/summary.json'
dmg "a summary.json with probe_acc above 1" "summary.json: probe_acc 1.5 out of range (from -1 to 1)" \
  <<<'sed -i "s/\"probe_acc\": -1,/\"probe_acc\": 1.5,/" sd/point-001/summary.json'
dmg "a summary.json with final_loss twice" "summary.json: final_loss given twice" \
  <<<'sed -i "s/^  \"steps\": 10,/  \"final_loss\": 0.0001,\n&/" sd/point-001/summary.json'
dmg "a metrics.jsonl whose last step is 1e400" "metrics.jsonl: step: a number beyond a double's range" \
  <<<'sed -i "\$s/\"step\": 10,/\"step\": 1e400,/" sd/point-001/metrics.jsonl'
dmg "a point whose spec was edited" "spec.resolved.yaml: a resolved spec whose checksum does not match" \
  <<<'sed -i "s/^  lr: 0.002$/  lr: 0.005/" sd/point-001/spec.resolved.yaml'
# another value in a resolved spec of the form before checksums (which loads)
dmg "a point whose spec holds another value" "spec.resolved.yaml: optim.lr is 0.005, the sweep's point has 0.002" \
  <<<'sed -i -e "1s/; checksum last$//" -e "/^# end of the resolved spec/d" -e "s/^  lr: 0.002$/  lr: 0.005/" sd/point-001/spec.resolved.yaml'
# a point cut short by train.minutes is finished (the sweep skips it):
# status counted only "done"
fresh sw sd; sed -i 's/"planned_steps": 10/"planned_steps": 20/; s/"completed"/"budget"/' sd/point-001/summary.json
run st "$L" status sd
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^point-001: truncated: train.minutes cap, 10 of 20 steps' \
  && [ "$(printf '%s\n' "$OUT" | tail -1)" = "3 of 3 points finished (1 cut short by train.minutes)" ] \
  && ok "status counts a point cut short by train.minutes as finished" || bad "status of a truncated point: rc $RC: $OUT $ERR"
fresh sw sd; rm -r sd/point-001
run st "$L" status sd
expect_error "status: a point's directory gone" 1 "sd/point-001/spec.resolved.yaml: missing" "1 of 3 points damaged"
# plot refuses a sweep with a damaged point, as a damaged run (it segfaulted here)
run pl "$L" plot sd
expect_error "plot: a point's directory gone" 2 "sd/point-001/spec.resolved.yaml: missing" "1 of 3 points damaged; nothing plotted"
[ -e sd/plots ] && bad "plot of sd wrote sd/plots" || ok "plot of a sweep with a point gone wrote nothing"
fresh sw sd; touch -d '+1 minute' sd/point-001/spec.resolved.yaml
run res "$L" results sd
expect_error "results: a spec newer than its summary" 1 "1 point is inconsistent"
# status too, and a run given alone (both exited 0; results of the run said nothing)
run st "$L" status sd
expect_error "status: a point's spec newer than its summary" 1 "1 point is inconsistent"
fresh sw/point-001 r; touch -d '+1 minute' r/spec.resolved.yaml
run st "$L" status r
expect_error "status of a run: a spec newer than its summary" 1 "r: inconsistent (spec.resolved.yaml rewritten after"
[ "$OUT" = "r: inconsistent: spec.resolved.yaml newer than summary.json, step 10, loss 0.0020" ] \
  && ok "status: the run inconsistent, no figures" || bad "status of an inconsistent run: $OUT"
run res "$L" results r
expect_error "results of a run: a spec newer than its summary" 1 "r: inconsistent (spec.resolved.yaml rewritten after"
fresh sw/point-001 r; printf '{"final_loss": 0.5, "probe_acc": 0.7, "steps": 10,' >r/summary.json
run st "$L" status r
expect_error "status of a run: a summary.json cut short" 1 "r/summary.json: not a whole JSON object"
[ "$OUT" = "r: damaged: summary.json: not a whole JSON object (cut short?), step 10, loss 0.0020" ] \
  && ok "status: the run damaged, no figures" || bad "status: $OUT"

# ---- 3. sweep --dry-run refuses what the sweep would, at the line
: >afile
printf 'base: base.yaml\ndir: afile\ngrid:\n  optim.lr: [0.001, 0.002]\n' >sf.yaml
for dry in --dry-run ""; do
  run sf "$L" sweep sf.yaml $dry
  expect_error "sweep ${dry:-(real)}: dir an existing file" 2 "sf.yaml:2:6: dir afile: afile is not a directory"
  [ -z "$OUT" ] && ok "sweep ${dry:-(real)}: no point listed" || bad "sweep $dry listed: $OUT"
done
mkdir pf && : >pf/point-001
printf 'base: base.yaml\ndir: pf\ngrid:\n  optim.lr: [0.001, 0.002]\n' >pf.yaml
for dry in --dry-run ""; do
  run pf "$L" sweep pf.yaml $dry
  expect_error "sweep ${dry:-(real)}: a point's directory an existing file" 2 \
    "pf.yaml: point 1: run.dir pf/point-001: pf/point-001 is not a directory"
done
[ "$(ls pf)" = point-001 ] && ok "the real sweep wrote nothing (no sweep.yaml, no point-000)" || bad "pf holds: $(ls pf)"
printf 'base: base.yaml\ndir: su\nrandom:\n  count: 2\n  keys:\n    model.depth: {uniform: [2, 4]}\n' >su.yaml
run su "$L" sweep su.yaml --dry-run
expect_error "a uniform draw for an integer key: at its line" 2 "su.yaml:6:5: random.keys.model.depth: point 0: " \
  "expected an integer" "int_uniform draws integers"
printf 'base: base.yaml\ndir: sd2\ngrid:\n  optim.lr: [0.001, 0.002, 1e-3]\n' >dup.yaml
run dup "$L" sweep dup.yaml --dry-run
expect_error "a grid value listed twice" 2 "dup.yaml:4:28: grid.optim.lr: 1e-3 is listed twice (also at 4:14)"
[ -e sd2 ] || [ -e su ] || [ -e afile/point-000 ] && bad "a refused sweep made its dir" || ok "refused sweeps made no dir"

# --help says what docs/launch.md says of the command line: each command,
# --set=, what --dry-run does, the exit statuses and every variable the
# launcher reads (it left out $JEPA_GNUPLOT, the exit statuses, --dry-run);
# test hooks (JEPA_DEBUG_*, the CPU check's) are no user's settings
run help "$L" --help
vars=$(grep -oh 'getenv("[A-Z_]*")' "$S"/launch/*.c | grep -v -e CPU_CHECK -e JEPA_DEBUG_ | sort -u | sed 's/getenv("\(.*\)")/\1/')
miss=""
for w in "run SPEC" "resume RUN_DIR" "slurm SPEC" "sweep SWEEP" "results DIR" "status DIR" "plot DIR" "--set=" \
  "--dry-run makes every check" "Exit status" " 75 " $vars; do
  case "$OUT" in *"$w"*) ;; *) miss="$miss [$w]" ;; esac
  case "$w" in JEPA_*) grep -q "$w" "$S/docs/launch.md" || miss="$miss [$w: not in docs/launch.md]" ;; esac
done
[ "$RC" -eq 0 ] && [ -z "$ERR" ] && [ -n "$vars" ] && [ -z "$miss" ] && ok "--help names the commands, --dry-run, exits, $(echo $vars)" \
  || bad "--help: rc $RC, missing:$miss"

# ---- random draws that repeat: the points stay as drawn (a sweep directory
# keeps its points), and sweep and --dry-run say which repeat which in one
# warning line (it trained the same config twice without a word); choice's
# 1e-3 is 0.001, as the resolved spec holds it
printf 'base: base.yaml\ndir: rr\nrandom:\n  seed: 1\n  count: 6\n  keys:\n    model.depth: {int_uniform: [5, 6]}\n    optim.lr: {choice: [0.001, 1e-3]}\n' >rr.yaml
want="jepa-launch: warning: rr.yaml: point-002 repeats point-000's values, point-003 repeats point-000's values, point-004 repeats point-001's values, point-005 repeats point-001's values (4 of 6 points train a config again; another random.seed draws others)"
run rrdry "$L" sweep rr.yaml --dry-run
[ "$RC" -eq 0 ] && [ "$ERR" = "$want" ] && [ "$(printf '%s\n' "$OUT" | sed -n 1p)" = "point-000 model.depth=6 optim.lr=0.001" ] \
  && [ "$(printf '%s\n' "$OUT" | sed -n 3p)" = "point-002 model.depth=6 optim.lr=1e-3" ] && [ ! -e rr ] \
  && ok "sweep --dry-run: one warning line names the repeated points, which keep their draws" || bad "repeats dry: rc $RC: [$OUT] [$ERR]"
run rrrun "$L" sweep rr.yaml
[ "$RC" -eq 0 ] && [ "$ERR" = "$want" ] && [ -s rr/point-005/summary.json ] && [ "$(sed -n 4p rr/points.csv)" = "2,point-002,6,1e-3" ] \
  && ok "sweep: the same warning line, every point run as drawn" || bad "repeats run: rc $RC: [$ERR] $(cat rr/points.csv 2>&1)"
sed -i 's/seed: 1/seed: 2/; s/count: 6/count: 2/; s/^dir: rr/dir: rn/' rr.yaml
run rrnone "$L" sweep rr.yaml --dry-run
[ "$RC" -eq 0 ] && [ -z "$ERR" ] && [ "$(printf '%s\n' "$OUT" | cut -d' ' -f2- | sort -u | wc -l)" = 2 ] \
  && ok "no repeat, no warning" || bad "no repeats: rc $RC: [$OUT] [$ERR]"

finish
