#!/bin/bash
# launch_world.sh - jepa-launch reports a world model's own figures (no
# training: a fake mpirun writes each point's metrics.jsonl and summary.json
# in the trainer's form, pos_r2 chosen to rank the points otherwise than
# their final loss; about 3 s with gnuplot):
#   1. results ranks a world sweep by pos_r2 (highest first) and shows the
#      world figures; status shows pos_r2; results.csv has the columns;
#   2. a world summary needs pos_r2 and pos_err when eval.probe is on (not
#      probe_acc); without eval.probe it needs neither;
#   3. plot draws the world panels (sigreg, loss_tf, loss_ro, proj_std,
#      pos_r2), none empty, and the sweep plot is pos_r2 against the key;
#   4. a sweep over [ijepa, world] is refused (no data suits both); one over
#      [ijepa, lejepa] on images ranks its points together;
#   5. missing data: the hint fits the objective (jepa-world gen for a
#      world run, jepa-shard pack for an image run); data whose manifest
#      declares the other kind of records is refused by run and slurm;
#   6. world.rollout above world.history - 1 is refused by run and sweep
#      --dry-run (before, only jepa-train refused it, after mpirun started).
. "$(dirname "$0")/lib.sh"
L="$B/jepa-launch"
unset JEPA_TRAIN_BIN
cd "$T" || exit 1
tiny_data episodes tr te || { finish; exit 1; }
printf 'base: %s\ndir: sw\nset: {data.train: tr, data.test: te, train.minutes: 0, train.steps: 10}\n' \
  "$S/configs/world-tworoom.yaml" >s.yaml
printf 'grid:\n  optim.lr: [0.001, 0.002, 0.003]\n' >>s.yaml
# the fake mpirun: final loss = lr (lowest at point 0), pos_r2 highest at
# point 1, then 2, then 0 (negative: an R^2 below 0 is a figure, not "none")
cat >mpirun <<'SH'
#!/bin/bash
for a in "$@"; do case "$a" in */spec.resolved.yaml) d=${a%/spec.resolved.yaml} ;; esac; done
r=$d/spec.resolved.yaml
lr=$(sed -n 's/^  lr: //p' "$r")
obj=$(sed -n 's/^objective: //p' "$r")
probe=$(sed -n '/^eval:/,/^[^ ]/s/^  probe: //p' "$r")
case "$lr" in 0.001) r2=-0.125 ;; 0.002) r2=0.99 ;; *) r2=0.95 ;; esac
for s in 1 5 10; do
  if [ "$obj" = world ]; then
    printf '{"step": %d, "loss": %s, "lr": %s, "wd": 0.04, "sigreg": 3.5, "loss_tf": 0.01, "loss_ro": 0.02, "proj_std": 0.9, "grad_norm": 1}\n' "$s" "$lr" "$lr"
  else
    printf '{"step": %d, "loss": %s, "lr": %s, "wd": 0.04, "target_std": 0.8, "grad_norm": 1}\n' "$s" "$lr" "$lr"
  fi
done >"$d/metrics.jsonl"
{
  printf '{\n  "objective": "%s",\n  "final_loss": %s,\n' "$obj" "$lr"
  if [ "$obj" = world ] && [ "$probe" = true ]; then
    printf '  "latent_err_h8": 0.0458,\n  "pred4_pos_r2": 0.9886,\n  "pos_err": 0.0127,\n  "pos_r2": %s,\n' "$r2"
  fi
  [ "$obj" = world ] && printf '  "probe_acc": -1,\n  "sigreg": 3.5,\n' || printf '  "probe_acc": %s,\n' "${r2#-}"
  printf '  "steps": 10,\n  "planned_steps": 10,\n  "stop_reason": "completed",\n  "param_hash": "00000000000000ab"\n}\n'
} >"$d/summary.json"
SH
chmod +x mpirun
export JEPA_MPIRUN="$T/mpirun"
run sweep "$L" sweep s.yaml
[ "$RC" -eq 0 ] && [ -s sw/point-002/summary.json ] && ok "fixture: a world sweep of 3 points" || bad "sweep: rc $RC: $OUT $ERR"
# fresh SRC DST: a copy of a finished sweep or run to damage
fresh() { rm -rf "$2"; cp -a "$1" "$2"; }

# ---- 1. results and status
run res "$L" results sw
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | awk 'NR > 1 {printf "%s ", $1}')" = "point-001 point-002 point-000 " ] \
  && ok "results ranks by pos_r2, highest first (1 2 0; by final loss it would be 0 1 2)" || bad "results: rc $RC: $OUT $ERR"
[ "$(printf '%s\n' "$OUT" | head -1 | tr -s ' ')" = "point optim.lr final_loss pos_r2 pos_err pred4_pos_r2 latent_err_h8 steps status" ] \
  && ok "results shows the world figures" || bad "results header: $(printf '%s\n' "$OUT" | head -1)"
[ "$(printf '%s\n' "$OUT" | tail -1 | tr -s ' ')" = "point-000 0.001 0.001000 -0.1250 0.0127 0.9886 0.0458 10 done" ] \
  && ok "a negative pos_r2 is shown (not '-')" || bad "results last row: $(printf '%s\n' "$OUT" | tail -1)"
[ "$(head -1 sw/results.csv)" = "point,optim.lr,final_loss,pos_r2,pos_err,pred4_pos_r2,latent_err_h8,steps,status" ] \
  && [ "$(sed -n 2p sw/results.csv)" = "point-001,0.002,0.002000,0.9900,0.0127,0.9886,0.0458,10,done" ] \
  && ok "results.csv" || bad "results.csv: $(cat sw/results.csv)"
run st "$L" status sw
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | sed -n 2p)" = "point-001: done, step 10, loss 0.0020, final_loss 0.0020, pos_r2 0.9900" ] \
  && ok "status shows pos_r2" || bad "status: rc $RC: $OUT $ERR"
# a run given alone is labelled by its directory's name, as results labels it
run st1 "$L" status sw/point-000
[ "$OUT" = "point-000: done, step 10, loss 0.0010, final_loss 0.0010, pos_r2 -0.1250" ] \
  && ok "status of one run: pos_r2" || bad "status of a run: $OUT"

# ---- 2. a world summary's required figures
fresh sw sd; sed -i '/"pos_r2"/d' sd/point-001/summary.json
run res "$L" results sd
expect_error "results: a world summary without pos_r2" 1 "sd/point-001/summary.json: no pos_r2" "1 of 3 points damaged"
fresh sw sd; sed -i '/"probe_acc"/d' sd/point-001/summary.json
run res "$L" results sd
[ "$RC" -eq 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c ' done$')" = 3 ] \
  && ok "a world summary without probe_acc is whole" || bad "without probe_acc: rc $RC: $OUT $ERR"
run np "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=np --set eval.probe=false --set optim.lr=0.002 \
  --set data.train=tr --set data.test=te --set train.minutes=0 --set train.steps=10
[ "$RC" -eq 0 ] && ! grep -q pos_r2 np/summary.json || bad "fixture: run without eval.probe: rc $RC: $ERR"
run np "$L" status np
[ "$RC" -eq 0 ] && [ "$OUT" = "np: done, step 10, loss 0.0020, final_loss 0.0020" ] \
  && ok "without eval.probe a world summary needs no pos_r2" || bad "status np: rc $RC: $OUT $ERR"

# ---- 3. plots
if command -v "${JEPA_GNUPLOT:-gnuplot}" >/dev/null; then
  run pl "$L" plot sw/point-001
  G=sw/point-001/plots/curves.gp
  [ "$RC" -eq 0 ] && [ -s sw/point-001/plots/curves.png ] && ok "plot of a world run" || bad "plot: rc $RC: $ERR"
  grep -q "no .* recorded" "$G" && bad "an empty panel: $(grep recorded "$G")" || ok "no empty panel"
  for t in 'projector output std (collapse watch)' 'teacher-forcing loss (loss_tf)' 'rollout loss (loss_ro)' \
           'SIGReg statistic' 'position probe R^2 (pos_r2)'; do
    grep -qF "set title '$t'" "$G" && ok "panel '$t'" || bad "no panel '$t' in $(grep title "$G")"
  done
  [ "$(grep -c '^plot ' "$G")" = 7 ] && grep -q 'layout 2,4' "$G" && ok "7 panels, 2 x 4" || bad "panels: $(cat "$G")"
  grep -qx '10 0.990000' "$G" && ok "the final pos_r2 drawn at its step" || bad "no final pos_r2: $(cat "$G")"
  fresh np nq; sed -i 's/"loss_ro": [^,]*, //' nq/metrics.jsonl
  run pl "$L" plot nq
  [ "$RC" -eq 0 ] && ! grep -q 'loss_ro\|pos_r2\|recorded' nq/plots/curves.gp && [ "$(grep -c '^plot ' nq/plots/curves.gp)" = 5 ] \
    && ok "panels with nothing to draw are left out (no loss_ro, no pos_r2: 5 panels)" || bad "nq: rc $RC: $ERR $(cat nq/plots/curves.gp)"
  run sp "$L" plot sw
  [ "$RC" -eq 0 ] && [ -s sw/plots/pos_r2_vs_optim.lr.png ] \
    && grep -qF "set title 'pos_r2 (position probe R^2) against optim.lr'" sw/plots/sweep.gp \
    && ok "sweep plot: pos_r2_vs_optim.lr.png" || bad "sweep plot: rc $RC: $OUT $ERR"
else
  echo "skip plots: no gnuplot"
fi

# ---- a point's directory gone: status, results and plot say it (plot
# segfaulted on the point's NULL objective; results showed an image
# probe_acc column and '?' for the point's lr)
fresh sw sg; rm -rf sg/point-002 sg/plots
run sgs "$L" status sg
expect_error "status: a world point's directory gone" 1 "sg/point-002/spec.resolved.yaml: missing" "1 of 3 points damaged"
run sgr "$L" results sg
expect_error "results: a world point's directory gone" 1 "sg/point-002/spec.resolved.yaml: missing"
[ "$(printf '%s\n' "$OUT" | head -1 | tr -s ' ')" = "point optim.lr final_loss pos_r2 pos_err pred4_pos_r2 latent_err_h8 steps status" ] \
  && [ "$(printf '%s\n' "$OUT" | tail -1 | tr -s ' ')" = "point-002 0.003 - - - - - - damaged: spec.resolved.yaml: missing" ] \
  && ok "results: the world columns only, the missing point's lr the sweep's" || bad "results of sg: $OUT"
run sgp "$L" plot sg
expect_error "plot: a world point's directory gone" 2 "sg/point-002/spec.resolved.yaml: missing" "nothing plotted"
[ -e sg/plots ] && bad "plot of sg wrote sg/plots" || ok "plot of sg wrote nothing"

# ---- 4. a sweep over objectives: its data must suit each of them. Image
# and world objectives share no data (u8 images, world episodes), so a grid
# mixing them is refused before anything starts, naming the first point
# whose data does not fit (before, every such point failed at the
# trainer's setup); ijepa and lejepa share images and rank together
sed -e 's/^dir: sw/dir: mx/' s.yaml >mx.yaml
printf '  objective: [ijepa, world]\n' >>mx.yaml
for dry in --dry-run ""; do
  run mx "$L" sweep mx.yaml $dry
  expect_error "a sweep over objectives [ijepa, world] on world episodes${dry:+ ($dry)}" 2 "point 0" "data.train" \
    "'tr' holds world episodes, objective ijepa needs u8 images" "jepa-shard pack"
done
[ ! -e mx ] && ok "the refused mixed sweep made nothing" || bad "mx was created"
tiny_data images ti || { finish; exit 1; }
sed -e 's/^dir: sw/dir: ij/' -e 's/data.train: tr, data.test: te/data.train: ti, data.test: ti/' s.yaml >ij.yaml
printf '  objective: [ijepa, lejepa]\n' >>ij.yaml
run ij "$L" sweep ij.yaml
run ij "$L" results ij
R=$(printf '%s\n' "$OUT" | awk 'NR > 1 {printf "%s ", $1}')
[ "$RC" -eq 0 ] && [ "$R" = "point-002 point-003 point-004 point-005 point-000 point-001 " ] \
  && ok "a sweep over ijepa and lejepa (one family) ranks them together by probe_acc ($R)" || bad "ij: rc $RC [$R] $OUT $ERR"
[ "$(printf '%s\n' "$OUT" | head -1 | tr -s ' ')" = "point optim.lr objective final_loss probe_acc steps status" ] \
  && ok "an image-only sweep shows the image figures" || bad "ij header: $(printf '%s\n' "$OUT" | head -1)"

# ---- 5. missing data: the hint names the objective's own data maker (a
# world run's said "pack one with jepa-shard pack", the image data packer)
run nd "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=nd --set data.train=no-such
expect_error "world run, data.train missing" 2 "--set data.train=no-such: shard directory 'no-such' does not exist" \
  "jepa-world gen" "scripts/world.sh"
case "$ERR" in *jepa-shard*|*pack-fmnist*) bad "world hint names the image packer: $ERR" ;; esac
mkdir -p empty
run ne "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=nd --set data.train=tr --set data.test=empty
expect_error "world run, data.test no manifest" 2 "data.test=empty: 'empty' has no manifest.json" "jepa-world gen"
run ni "$L" run "$S/configs/fmnist-tiny.yaml" --set run.dir=nd --set data.train=no-such
expect_error "image run, data.train missing" 2 "shard directory 'no-such' does not exist" "jepa-shard pack" \
  "scripts/pack-fmnist.sh"
# data of the wrong kind (the manifest says what records it holds): refused
# before anything starts by run, slurm and their --dry-run, not at the
# trainer's setup in every rank
run nk "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=nk1 --set data.train=ti --set data.test=te
expect_error "world run on u8 images" 2 "--set data.train=ti: 'ti' holds u8 images, objective world needs world episodes" \
  "jepa-world gen"
run nk "$L" slurm "$S/configs/world-tworoom.yaml" --set run.dir=nk2 --set data.train=tr --set data.test=ti --dry-run
expect_error "world slurm --dry-run, data.test u8 images" 2 \
  "--set data.test=ti: 'ti' holds u8 images, objective world needs world episodes"
run nk "$L" run "$S/configs/fmnist-tiny.yaml" --set run.dir=nk3 --set data.train=ti --set data.test=te --dry-run
expect_error "image run --dry-run, data.test world episodes" 2 \
  "--set data.test=te: 'te' holds world episodes, objective ijepa needs u8 images" "jepa-shard pack"
run nk "$L" run "$S/configs/fmnist-tiny.yaml" --set run.dir=nk4 --set data.train=ti --set data.test=te --set eval.probe=false \
  --dry-run
[ "$RC" -eq 0 ] && ok "without eval.probe data.test is not read" || bad "probe off: rc $RC $ERR"
mkdir -p junk && echo '{}' >junk/manifest.json
run nk "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=nk5 --set data.train=junk --set data.test=te --dry-run
expect_error "a manifest.json that is no manifest" 2 "--set data.train=junk: junk/manifest.json" "missing key 'format'"
rm junk/manifest.json && mkfifo junk/manifest.json
run nk timeout 20 "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=nk6 --set data.train=junk --set data.test=te --dry-run
expect_error "a manifest.json that is a FIFO (never read)" 2 "--set data.train=junk: 'junk/manifest.json' is not a regular file"
[ ! -e nd ] && [ -z "$(ls -d nk* 2>/dev/null)" ] && ok "refused runs made no run directory" \
  || bad "made: $(ls -d nd nk* 2>/dev/null)"

# ---- 6. world.rollout needs world.history >= rollout + 1: the spec's check
run rh "$L" run "$S/configs/world-tworoom.yaml" --set run.dir=rh --set data.train=tr --set data.test=te \
  --set world.history=1 --dry-run
expect_error "run --dry-run, world.history 1 with world.rollout 2" 2 \
  "world.rollout: 2 steps need world.history >= 3 (world.history is 1)"
sed -e 's/^dir: sw/dir: rs/' -e '/^grid:/,$d' s.yaml >rs.yaml
printf 'grid: {world.history: [1, 4]}\n' >>rs.yaml
run rs "$L" sweep rs.yaml --dry-run
expect_error "sweep --dry-run over world.history [1, 4]" 2 "point 0" \
  "world.rollout: 2 steps need world.history >= 3 (world.history is 1)"
[ ! -e rh ] && [ ! -e rs ] && ok "nothing made for them" || bad "rh or rs was created"

finish
