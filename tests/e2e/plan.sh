#!/usr/bin/env bash
# jepa-plan end to end on a tiny world model (trained here for 20 steps):
#   - the table, then the five last lines (success_rate, random_success_rate,
#     straight_success_rate, random_init_success_rate, plan_s_per_decision),
#     numeric, rates in [0, 1], equal to plan.json and plan.csv; the time per
#     decision > 0 and to 4 digits at any speed (null for no decisions);
#   - RUN/plan/episodes.csv has one row per method and episode; the first
#     plan.pictures episodes are PNG files (paths and frame strips);
#   - at 2 ranks (episodes split, gathered) every episode's outcome equals
#     the 1-rank run's (timings aside), as with the run's data moved away
#     (planning reads the checkpoint and the world, not data.train);
#   - plan.json records the settings, the rollout window used among them;
#   - plan.* keys come from the defaults, the run's spec.yaml, then --set
#     (the resolved spec's plan section is not read); the effective settings
#     are checked (a --set makes a failing spec.yaml value good), an error
#     naming the --set or spec.yaml it came from; plan.random_init=false;
#   - SIGTERM while the episodes run: one line (how many were run), the
#     signal's status, nothing written, at 1 and 2 ranks; in a task's
#     search, at once;
#   - a second plan into RUN/plan is refused (its results kept); --replace
#     replaces them, pictures included (only names the planner writes, in
#     its exact form); files of others in RUN/plan (notes, *.tmp, names
#     like episode-7.png) neither make it refuse nor are removed;
#   - RUN/plan's place checked before the model loads (a file, a dangling
#     link, a link to a file, RUN read-only); a link RUN/plan to a directory
#     elsewhere is planned into, the link kept;
#   - refused in one line, exit non-zero, nothing written: a setting given
#     twice (--episodes and --set plan.episodes too), a run that is not a
#     world model, a missing checkpoint, --episodes 0 (named as typed), a
#     missing or absent run directory, an unknown world, a bad world
#     parameter, a closed door (task 0 made up front), a success radius no
#     goal lies beyond (it hung), arena / max_action above 255 (the search grid), a search of
#     more than 1e9 substeps a task (it ran for hours), topk > samples; the
#     world's settings exit 2, before the model loads.
. "$(dirname "$0")/lib.sh"
MPI="${JEPA_MPIEXEC:-mpirun}"
JW="$B/jepa-world"
JP="$B/jepa-plan"

mkdir -p "$T/w" && "$JW" gen --out "$T/w/train" --episodes 200 --steps 16 --seed 0 --quiet &&
  "$JW" gen --out "$T/w/test" --episodes 50 --steps 16 --seed 1 --split test --quiet \
  || { bad "jepa-world gen failed"; finish; exit 1; }
run tr "$B/jepa-train" "$S/configs/world-tworoom.yaml" --set model.width=16 --set model.depth=1 \
  --set model.heads=2 --set model.pred_width=16 --set model.pred_depth=1 --set model.pred_heads=2 \
  --set world.embed_dim=16 --set sigreg.directions=32 --set train.batch_per_rank=8 --set train.steps=20 \
  --set train.log_every=10 --set parallel.threads_per_rank=1 --set data.train="$T/w/train" \
  --set data.test="$T/w/test" --set run.dir="$T/run"
[ "$RC" -eq 0 ] || { bad "training the tiny world model failed (rc $RC): $ERR"; finish; exit 1; }

SMALL=(--episodes 6 --set plan.samples=40 --set plan.topk=5 --set plan.iterations=3 --set plan.pictures=2)
LINES="success_rate random_success_rate straight_success_rate random_init_success_rate plan_s_per_decision"
num() { printf '%s' "$1" | grep -Eqx -- '-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'; }
json() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" "$1" | tail -n 1; }

run p1 timeout 60 "$JP" "$T/run" "${SMALL[@]}"
[ "$RC" -eq 0 ] && ok "jepa-plan exits 0" || bad "jepa-plan failed (rc $RC): $ERR"
TAIL=$(printf '%s\n' "$OUT" | tail -n 5)
[ "$(printf '%s\n' "$TAIL" | cut -d' ' -f1 | tr '\n' ' ')" = "$LINES " ] \
  && ok "stdout ends with the five figures" || bad "stdout tail: $(printf '%s' "$TAIL" | tr '\n' ' ')"
case "$OUT" in *"method"*"95% interval"*"world_model"*"random"*"straight"*"random_init"*) ok "the table lists the four methods" ;;
  *) bad "no table: $OUT" ;; esac
NB=0
for k in $LINES; do
  v=$(printf '%s\n' "$TAIL" | sed -n "s/^$k //p"); j=$(json "$T/run/plan/plan.json" "$k")
  if num "$v" && [ -n "$j" ] && awk -v a="$v" -v b="$j" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4 && a >= 0) }'; then :
  else bad "$k: stdout '$v', plan.json '$j'"; NB=$((NB + 1)); fi
  case $k in *rate) awk -v a="$v" 'BEGIN { exit !(a <= 1) }' || { bad "$k $v above 1"; NB=$((NB + 1)); } ;; esac
done
[ "$NB" -eq 0 ] && ok "every figure numeric and equal in plan.json"
S1=$(printf '%s\n' "$TAIL" | sed -n 's/^success_rate //p')
C1=$(awk -F, '$1 == "world_model" { print $4 }' "$T/run/plan/plan.csv")
num "$S1" && num "$C1" && awk -v a="$S1" -v b="$C1" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4) }' && ok "plan.csv has the world model's rate" \
  || bad "plan.csv world_model rate '$C1', stdout '$S1'"
[ "$(grep -c '' "$T/run/plan/plan.csv")" -eq 5 ] && ok "plan.csv: header and 4 methods" || bad "plan.csv: $(cat "$T/run/plan/plan.csv")"
# plan.json: every key's line indented as its siblings' (success_rate's was
# not); a method with no success has ci95_low 0 and one with every success
# ci95_high 1, as written (they read 2.77556e-17 and 1 - 1e-16; test_plan
# checks the interval at every n)
sed '1d;$d' "$T/run/plan/plan.json" | grep -qv '^  ' && bad "plan.json: a line not indented: $(cat "$T/run/plan/plan.json")" \
  || ok "plan.json: every line inside the braces indented"
grep '"successes": 0,' "$T/run/plan/plan.json" | grep -v '"ci95_low": 0,' | grep -q . \
  && bad "plan.json: no success but ci95_low not 0: $(grep '"successes": 0,' "$T/run/plan/plan.json")" \
  || ok "plan.json: ci95_low 0 where there is no success"
grep '"episodes": 6, "successes": 6,' "$T/run/plan/plan.json" | grep -v '"ci95_high": 1,' | grep -q . \
  && bad "plan.json: every success but ci95_high not 1" || ok "plan.json: ci95_high 1 where every episode succeeded"
# the settings beside the figures, the rollout window among them (it was
# missing): plan.window 1 by default
[ "$(json "$T/run/plan/plan.json" samples) $(json "$T/run/plan/plan.json" horizon) $(json "$T/run/plan/plan.json" window)" = "40 5 1" ] \
  && ok "plan.json: samples, horizon and the window used (1)" || bad "plan.json settings: $(grep cem "$T/run/plan/plan.json")"
# no nan anywhere: a value that does not exist is an empty field (plan.json: null) or "-" in the table
! grep -qi 'nan' "$T/run/plan/plan.csv" && ! printf '%s\n' "$OUT" | grep -qi 'nan' \
  && awk -F, '$1 == "random" { exit !($10 == "" && $11 == "") }' "$T/run/plan/plan.csv" \
  && ok "no nan in plan.csv or the table; random's s/decision empty" || bad "plan.csv: $(cat "$T/run/plan/plan.csv")"
[ "$(grep -c '' "$T/run/plan/episodes.csv")" -eq 25 ] && ok "episodes.csv: 4 methods x 6 episodes" \
  || bad "episodes.csv has $(grep -c '' "$T/run/plan/episodes.csv") lines"
SUCC=$(awk -F, '$1 == "world_model" { s += $3; n++ } END { if (n == 6) print s / 6 }' "$T/run/plan/episodes.csv")
num "$S1" && num "$SUCC" && awk -v a="$S1" -v b="$SUCC" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4) }' \
  && ok "episodes.csv: the world model's 6 episodes sum to the rate" || bad "episodes.csv rate '$SUCC' vs '$S1'"
for f in episode-000 episode-001 episode-000-frames episode-001-frames; do
  [ "$(head -c 8 "$T/run/plan/$f.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    && ok "$f.png is a PNG" || bad "$f.png missing or not a PNG"
done
ls "$T/run/plan" | grep -q '^episode-002' && bad "a third picture with plan.pictures=2" || ok "only plan.pictures pictures"
ls "$T/run/plan" | grep -q '\.tmp$' && bad "temporary files left" || ok "no temporary files left"
cp "$T/run/plan/episodes.csv" "$T/episodes.1"

# ---- the time per decision: a real figure at any speed. The smallest CEM
# (2 samples, 1 iteration, 1 block) decides in well under 1e-4 s, where
# %.4f printed 0.0000 (or 0.0001 for 8e-05): the last line is > 0 and
# plan.json's to 4 digits; a method that decides nothing has no time per
# decision (plan.json null, where it read 0)
mkdir -p "$T/fast" && cp "$T/run/spec.resolved.yaml" "$T/run/checkpoint.bin" "$T/fast/"
run fast timeout 60 "$JP" "$T/fast" --episodes 2 --set plan.samples=2 --set plan.topk=1 --set plan.iterations=1 \
  --set plan.horizon=1 --set plan.repeat=1 --set plan.pictures=0 --set plan.random_init=false
SD=$(printf '%s\n' "$OUT" | sed -n 's/^plan_s_per_decision //p'); JD=$(json "$T/fast/plan/plan.json" plan_s_per_decision)
[ "$RC" -eq 0 ] && num "$SD" && num "$JD" && awk -v a="$SD" -v b="$JD" 'BEGIN { exit !(a > 0 && b > 0 && a / b > 0.9999 && a / b < 1.0001) }' \
  && ok "plan_s_per_decision $SD: > 0, plan.json's $JD to 4 digits" || bad "plan_s_per_decision '$SD', plan.json '$JD' (rc $RC): $ERR"
grep -q '"name": "random",.*"decisions": 0, "s_per_decision": null, "cpu_s_per_decision": null' "$T/fast/plan/plan.json" \
  && ok "plan.json: random's s_per_decision null" || bad "plan.json random: $(grep '"random"' "$T/fast/plan/plan.json")"
# the figures written to a full disk are lost: one line, exit 1 (it exited 0)
expect_full "jepa-plan RUN --episodes 1 --replace" jepa-plan timeout 60 "$JP" "$T/fast" --episodes 1 --replace \
  --set plan.samples=2 --set plan.topk=1 --set plan.iterations=1 --set plan.horizon=1 --set plan.repeat=1 \
  --set plan.pictures=0 --set plan.random_init=false

# ---- a second plan never replaces the first's results unasked (--replace does)
cp "$T/run/plan/plan.json" "$T/plan.json.1"
run again "$JP" "$T/run" "${SMALL[@]}"
expect_error "a second plan into RUN/plan" 2 "$T/run/plan already holds results" "--replace"
cmp -s "$T/plan.json.1" "$T/run/plan/plan.json" && ok "the first plan's results kept" || bad "plan.json changed"

# ---- SIGINT / SIGTERM while the plan is written (pictures of 100 episodes:
# about a second): nothing of it left, RUN/plan as it was before (absent,
# or an earlier plan's results, even with --replace); one line, the
# signal's status. The globs: this plan's stage, or (the build before) a
# picture written straight into RUN/plan
STOP=(--episodes 100 --set plan.samples=8 --set plan.topk=2 --set plan.iterations=1 --set plan.pictures=100
      --set plan.random_init=false)
cp -r "$T/run" "$T/sg" && rm -rf "$T/sg/plan"
expect_stopped jepa-plan INT 130 "$T/sg/.plan.partial-*/episode-* $T/sg/plan/episode-*" "$T/sg/plan" "$JP" "$T/sg" "${STOP[@]}"
[ -z "$(ls -A "$T/sg" | grep plan)" ] && ok "SIGINT: no RUN/plan, no stage" || bad "SIGINT left: $(ls -A "$T/sg" | tr '\n' ' ')"
cp -r "$T/run/plan" "$T/sg/plan" && (cd "$T/sg/plan" && md5sum * | sort) >"$T/sg.before"
expect_stopped "jepa-plan --replace" TERM 143 "$T/sg/.plan.partial-*/episode-* $T/sg/plan/episode-*.tmp" "$T/sg/plan" \
  "$JP" "$T/sg" "${STOP[@]}" --replace
(cd "$T/sg/plan" && md5sum * | sort) | cmp -s - "$T/sg.before" && [ "$(ls -A "$T/sg" | grep -c plan)" = 1 ] &&
  ok "SIGTERM: the earlier plan's results as they were, no stage" || bad "SIGTERM: $(ls -A "$T/sg" "$T/sg/plan" | tr '\n' ' ')"
# at 2 ranks: mpirun sends SIGTERM to every rank (here sent to both at once,
# as mpirun does about a second after its own SIGINT or SIGTERM); rank 0
# removes the stage, says so once; no rank dies first
rm -rf "$T/sg/plan"
set -m
"$MPI" -np 2 "$JP" "$T/sg" "${STOP[@]}" >/dev/null 2>"$T/sg.err" & mp=$!
set +m
for i in $(seq 1500); do compgen -G "$T/sg/.plan.partial-*/episode-*" >/dev/null && break; sleep 0.02; done
compgen -G "$T/sg/.plan.partial-*/episode-*" >/dev/null || bad "2 ranks: no stage appeared"
kill -TERM $(pgrep -P "$mp"); wait "$mp"; RC=$?
[ "$RC" -ne 0 ] && [ "$(grep -c "^jepa-plan: $T/sg/plan: interrupted by SIGTERM: nothing written$" "$T/sg.err")" = 1 ] &&
  ok "2 ranks stopped by SIGTERM: said once (rc $RC)" || bad "2 ranks stopped: rc $RC: $(cat "$T/sg.err")"
[ -z "$(ls -A "$T/sg" | grep plan)" ] && ok "2 ranks: no RUN/plan, no stage" || bad "2 ranks left: $(ls -A "$T/sg" | tr '\n' ' ')"

# ---- SIGTERM while the episodes run (300 tasks: their search about half a
# second, the episodes about 15 s; the signal after 3): it died without a word. One line saying how far it got, the
# signal's status, nothing of RUN/plan nor a stage; at 2 ranks (mpirun's
# SIGTERM to each) said once
LONG=(--episodes 300 --set plan.samples=64 --set plan.topk=4 --set plan.iterations=4 --set plan.random_init=false)
PAT="^jepa-plan: $T/sg/plan: interrupted by SIGTERM after [0-9]+ of 900 episodes \\(300 tasks x 3 methods\\): nothing written$"
for np in 1 2; do
  rm -rf "$T/sg/plan"
  set -m
  if [ "$np" = 1 ]; then "$JP" "$T/sg" "${LONG[@]}" >/dev/null 2>"$T/sg.err" & mp=$!
  else "$MPI" -np 2 "$JP" "$T/sg" "${LONG[@]}" >/dev/null 2>"$T/sg.err" & mp=$!; fi
  set +m
  sleep 3
  if [ "$np" = 1 ]; then kill -TERM "$mp"; else kill -TERM $(pgrep -P "$mp"); fi
  wait "$mp"; RC=$?
  N=$(sed -n 's/.* after \([0-9]*\) of 900 episodes.*/\1/p' "$T/sg.err")
  [ "$RC" -ne 0 ] && [ "$(grep -cE "$PAT" "$T/sg.err")" = 1 ] && [ -n "$N" ] && [ "$N" -gt 0 ] && [ "$N" -lt 900 ] &&
    ok "$np rank(s) stopped by SIGTERM while planning: said once, after $N of 900 episodes (rc $RC)" ||
    bad "$np rank(s) stopped while planning: rc $RC: $(cat "$T/sg.err")"
  [ -z "$(ls -A "$T/sg" | grep plan)" ] && ok "$np rank(s), SIGTERM while planning: no RUN/plan, no stage" ||
    bad "$np rank(s), SIGTERM while planning left: $(ls -A "$T/sg" | tr '\n' ' ')"
done

# ---- SIGTERM in a task's shortest-path search (54 substeps a step on 1001^2
# cells: seconds a task, under the cap): it stops the search at once, not
# after it (under mpirun, SIGKILL follows a second after SIGTERM)
rm -rf "$T/sg/plan"
set -m
"$JP" "$T/sg" --episodes 100 --set plan.world_params="max_action=0.004 radius=0.00015" >/dev/null 2>"$T/sg.err" & mp=$!
set +m
sleep 1.5
t0=$(date +%s%N); kill -TERM "$mp"; wait "$mp"; RC=$?; ms=$((($(date +%s%N) - t0) / 1000000))
[ "$RC" -eq 143 ] && [ "$ms" -lt 1000 ] &&
  grep -qx "jepa-plan: $T/sg/plan: interrupted by SIGTERM after 0 of 400 episodes (100 tasks x 4 methods): nothing written" "$T/sg.err" &&
  ok "SIGTERM in the task search: stopped in $ms ms, said" || bad "SIGTERM in the task search: rc $RC after $ms ms: $(cat "$T/sg.err")"
[ -z "$(ls -A "$T/sg" | grep plan)" ] && ok "SIGTERM in the task search: nothing written" || bad "task search stop left: $(ls -A "$T/sg")"

# ---- 2 ranks: the same outcomes
run p2 timeout 60 "$MPI" -np 2 "$JP" "$T/run" "${SMALL[@]}" --replace
[ "$RC" -eq 0 ] && ok "2-rank jepa-plan exits 0" || bad "2-rank jepa-plan failed (rc $RC): $ERR"
case "$OUT" in *"2 ranks"*) ok "the header says 2 ranks" ;; *) bad "header: $(printf '%s' "$OUT" | head -n 1)" ;; esac
cut -d, -f1-6,9- "$T/episodes.1" >"$T/e1"
cut -d, -f1-6,9- "$T/run/plan/episodes.csv" >"$T/e2"
cmp -s "$T/e1" "$T/e2" && ok "2 ranks: every episode as at 1 rank" || bad "outcomes differ: $(diff "$T/e1" "$T/e2" | head -n 4 | tr '\n' ' ')"

# ---- planning reads the checkpoint and the world, not data.train: with the
# run's data moved away (it was refused: "W/train/manifest.json: cannot
# open") it plans, every episode as with the data there
mv "$T/w" "$T/w.away"
run nd timeout 60 "$JP" "$T/run" "${SMALL[@]}" --replace
mv "$T/w.away" "$T/w"
cut -d, -f1-6,9- "$T/run/plan/episodes.csv" >"$T/e3"
[ "$RC" -eq 0 ] && cmp -s "$T/e1" "$T/e3" && ok "data.train moved away: plans, every episode as with it" \
  || bad "data.train moved away (rc $RC): $ERR $(diff "$T/e1" "$T/e3" | head -n 4 | tr '\n' ' ')"

# resolved specs edited below are written in the form before the checksum
# line (which loads as any spec); an edited checked one is refused
UNCHECK=(-e '1s/; checksum last$//' -e '/^# end of the resolved spec/d')
# ---- plan.* from the defaults, the run's spec.yaml, then --set (not the resolved spec's)
mkdir -p "$T/ps" && cp "$T/run/checkpoint.bin" "$T/ps/" &&
  sed "${UNCHECK[@]}" -e 's/^  samples: 300$/  samples: 999/' "$T/run/spec.resolved.yaml" >"$T/ps/spec.resolved.yaml" &&
  { cat "$T/run/spec.yaml"; printf 'plan:\n  samples: 24\n  topk: 3\n  iterations: 4\n'; } >"$T/ps/spec.yaml"
grep -q '^  samples: 999$' "$T/ps/spec.resolved.yaml" || bad "test setup: no plan.samples in the resolved spec"
run ps "$JP" "$T/ps" --episodes 2 --set plan.iterations=2 --set plan.random_init=false
PS="$(json "$T/ps/plan/plan.json" samples) $(json "$T/ps/plan/plan.json" topk) $(json "$T/ps/plan/plan.json" iterations)"
[ "$RC" -eq 0 ] && [ "$PS" = "24 3 2" ] && ok "plan keys: spec.yaml over the defaults, --set over both" \
  || bad "samples/topk/iterations '$PS' (rc $RC), want '24 3 2': $ERR"
[ "$(printf '%s\n' "$OUT" | tail -n 4 | cut -d' ' -f1 | tr '\n' ' ')" = "success_rate random_success_rate straight_success_rate plan_s_per_decision " ] \
  && ok "plan.random_init=false leaves its line out" || bad "tail without random_init: $(printf '%s\n' "$OUT" | tail -n 4 | tr '\n' ' ')"
# plan_copy NAME LINE: $T/NAME, the trained run's checkpoint and resolved spec
# with its spec.yaml plus a plan: section of LINE
plan_copy() {
  mkdir -p "$T/$1" && cp "$T/run/checkpoint.bin" "$T/run/spec.resolved.yaml" "$T/$1/" &&
    { cat "$T/run/spec.yaml"; printf 'plan:\n  %s\n' "$2"; } >"$T/$1/spec.yaml"
}
# checked in that order: a --set is checked against spec.yaml's values, not
# the resolved spec's (topk 400 with spec.yaml's samples 600 was refused as
# more than the resolved spec's 300); an error in spec.yaml's values names
# spec.yaml (it named no file); one that a --set makes names the --set
plan_copy po "samples: 600"
run po "$JP" "$T/po" --episodes 1 --set plan.topk=400 --set plan.iterations=1 --set plan.random_init=false \
  --set plan.pictures=0
[ "$RC" -eq 0 ] && [ "$(json "$T/po/plan/plan.json" samples) $(json "$T/po/plan/plan.json" topk)" = "600 400" ] \
  && ok "--set plan.topk=400 checked against spec.yaml's samples 600" || bad "po (rc $RC): $ERR"
plan_copy py "topk: 500"
run py "$JP" "$T/py" --episodes 1
expect_error "spec.yaml's plan.topk above the default samples: names spec.yaml" 2 \
  "jepa-plan: $T/py/spec.yaml: plan.topk: 500 is more than plan.samples (300)"
sed -i 's/  topk: 500/  topk: 30/' "$T/py/spec.yaml"
run py3 "$JP" "$T/py" --episodes 1 --set plan.samples=20
expect_error "a --set below spec.yaml's topk: names the --set" 2 \
  "jepa-plan: --set plan.samples=20: plan.topk: 30 is more than plan.samples (20)"
[ ! -e "$T/py/plan" ] && ok "refused plans wrote nothing" || bad "$T/py/plan written"
# the effective settings are checked, not spec.yaml's alone: a --set that
# replaces the value spec.yaml's topk 500 fails against plans (it was
# refused, naming spec.yaml, whatever --set said); spec.yaml's topk 500
# against a --set plan.samples it still exceeds names the --set
plan_copy pz "topk: 500"
run pz "$JP" "$T/pz" --episodes 1 --set plan.samples=600 --set plan.iterations=1 --set plan.random_init=false \
  --set plan.pictures=0
[ "$RC" -eq 0 ] && [ "$(json "$T/pz/plan/plan.json" samples) $(json "$T/pz/plan/plan.json" topk)" = "600 500" ] \
  && ok "spec.yaml's topk 500 over the default samples, made good by --set plan.samples=600" || bad "pz (rc $RC): $ERR"
rm -rf "$T/pz/plan"
run pz2 "$JP" "$T/pz" --episodes 1 --set plan.samples=400
expect_error "spec.yaml's topk 500 above a --set plan.samples=400: names the --set" 2 \
  "jepa-plan: --set plan.samples=400: plan.topk: 500 is more than plan.samples (400)"
[ ! -e "$T/pz/plan" ] && ok "the refused plan wrote nothing" || bad "$T/pz/plan written"

# --replace with fewer pictures: the earlier plan's extra pictures go, in
# the exact form the planner writes them (episode-%03d), nothing else
ODD=("episode- 7.png" "episode-+07.png" "episode-0007.png" "episode-7.png" "episode-007.png.bak"
  "episode-007-frames.png~" "episode-99999999999999999999.png")
for f in "${ODD[@]}"; do : >"$T/ps/plan/$f"; done
cp "$T/ps/plan/episode-001.png" "$T/ps/plan/episode-1000.png"
run psr "$JP" "$T/ps" --episodes 1 --set plan.random_init=false --replace
[ "$RC" -eq 0 ] && [ -e "$T/ps/plan/episode-000.png" ] && [ ! -e "$T/ps/plan/episode-001.png" ] &&
  [ ! -e "$T/ps/plan/episode-001-frames.png" ] && [ ! -e "$T/ps/plan/episode-1000.png" ] &&
  [ "$(grep -c '' "$T/ps/plan/episodes.csv")" -eq 4 ] \
  && ok "--replace: this plan's results, no picture of the earlier one" || bad "--replace (rc $RC): $(ls "$T/ps/plan") $ERR"
NK=0; for f in "${ODD[@]}"; do [ -e "$T/ps/plan/$f" ] || { bad "--replace removed '$f'"; NK=1; }; done
[ "$NK" -eq 0 ] && ok "--replace keeps names the planner does not write"

# plan.window 0 and above world.history (4): the rollouts use world.history, and plan.json says so
for wv in 0 9 2; do
  run pw "$JP" "$T/ps" --episodes 1 --set plan.random_init=false --set plan.pictures=0 --set plan.window=$wv --replace
  want=$([ "$wv" = 2 ] && echo 2 || echo 4)
  [ "$RC" -eq 0 ] && [ "$(json "$T/ps/plan/plan.json" window)" = "$want" ] && ok "plan.window $wv: plan.json window $want" \
    || bad "plan.window $wv (rc $RC): $(grep cem "$T/ps/plan/plan.json") $ERR"
done

# ---- a RUN/plan holding only others' files (notes, a stray .tmp, a look-alike
# name) is no earlier plan: the real errors come through, and a plan runs
mkdir -p "$T/nt/plan" && cp "$T/run/spec.resolved.yaml" "$T/run/checkpoint.bin" "$T/nt/" &&
  echo mine >"$T/nt/plan/notes.txt" && : >"$T/nt/plan/plan.json.tmp" && : >"$T/nt/plan/episode-7.png"
run nw "$JP" "$T/nt" --episodes 2 --set plan.world=nonesuch
expect_error "an unknown world" 2 "plan.world" "nonesuch"
run np "$JP" "$T/nt" --episodes 2 --set plan.world_params="door_width=abc"
expect_error "a bad world parameter" 2 "plan.world_params" "door_width"
run np2 "$JP" "$T/nt" --episodes 2 --set plan.world_params="door_width=4 door_width=5"
expect_error "a world parameter given twice" 2 "plan.world_params: 'door_width' given twice (door_width=4, then door_width=5)"
run np3 "$JP" "$T/nt" --episodes 2 --set plan.world_params="size=16"
expect_error "the frame size as a world parameter" 2 "plan.world_params: size=16: the frame size is not a setting here"
run nt "$JP" "$T/nt" --episodes 1 --set plan.samples=24 --set plan.topk=3 --set plan.iterations=1 \
  --set plan.random_init=false --set plan.pictures=1
[ "$RC" -eq 0 ] && [ -e "$T/nt/plan/plan.json" ] && [ "$(cat "$T/nt/plan/notes.txt")" = mine ] &&
  [ -e "$T/nt/plan/episode-7.png" ] && ok "others' files in RUN/plan: planned, and they are kept" ||
  bad "others' files in RUN/plan (rc $RC): $(ls "$T/nt/plan") $ERR"

# ---- refusals
sed "${UNCHECK[@]}" -e 's/^objective: .*/objective: ijepa/' "$T/run/spec.resolved.yaml" >"$T/ij.yaml"
mkdir -p "$T/ij" && cp "$T/ij.yaml" "$T/ij/spec.resolved.yaml" && cp "$T/run/checkpoint.bin" "$T/ij/"
run ij "$JP" "$T/ij" --episodes 2
expect_error "a run that is not a world model" 2 "$T/ij" "objective ijepa" "world"
mkdir -p "$T/nock" && cp "$T/run/spec.resolved.yaml" "$T/nock/"
run nock "$JP" "$T/nock" --episodes 2
expect_error "a missing checkpoint" 1 "$T/nock/checkpoint.bin"
# a FIFO where the checkpoint or RUN/latest is read: refused in one line
# naming it, not waited on (a blocking open waits for a writer forever,
# SIGTERM ignored: timeout -k's 124 or 137 is that hang)
mkdir -p "$T/ckf" "$T/lf" && cp "$T/run/spec.resolved.yaml" "$T/ckf/" && cp "$T/run/spec.resolved.yaml" "$T/lf/" &&
  mkfifo "$T/ckf/checkpoint.bin" "$T/lf/latest"
run ckf timeout -k 5 20 "$JP" "$T/ckf" --episodes 2
expect_error "checkpoint.bin a FIFO: refused, not waited on" 1 "$T/ckf/checkpoint.bin: not a regular file"
run lf timeout -k 5 20 "$JP" "$T/lf" --episodes 2
expect_error "no checkpoint.bin, RUN/latest a FIFO: refused, not waited on" 1 "$T/lf/latest: not a regular file"
for d in ij nock ckf lf; do [ -e "$T/$d/plan" ] && bad "refused run wrote $T/$d/plan" || ok "nothing written into $d"; done
run nkey "$JP" "$T/run" --episodes 2 --set optim.lr=5
expect_error "a training key given to the planner" 2 "--set optim.lr=5" "only plan.* keys"
run ntw "$JP" "$T/run" --episodes 1 --episodes 2
expect_error "--episodes given twice" 2 "--episodes 2: plan.episodes already given by --episodes 1"
run nal "$JP" "$T/run" --episodes 1 --set plan.episodes=2
expect_error "--episodes and --set plan.episodes" 2 "--set plan.episodes=2" "already given by --episodes 1"
run nss "$JP" "$T/run" --set plan.samples=40 --set=plan.samples=50
expect_error "--set plan.samples twice" 2 "--set plan.samples=50" "already given by --set plan.samples=40"
run nrr "$JP" "$T/run" --replace --replace
expect_error "--replace twice" 2 "--replace: given twice"
run nsd "$JP" "$T/run" --seed --episodes 2
expect_error "--seed followed by an option" 2 "--seed needs a value" "--episodes"
cp -r "$T/run" "$T/pf" && rm -rf "$T/pf/plan" && echo keep > "$T/pf/plan"
run pf "$JP" "$T/pf" --episodes 2
expect_error "RUN/plan is a file: refused before planning" 1 "$T/pf/plan" "not a directory"
[ "$(cat "$T/pf/plan")" = keep ] && ok "the file RUN/plan kept" || bad "RUN/plan changed"
# RUN/plan's place is checked before the model loads (it was after: a run
# without its checkpoint said so first), in one line naming it, exit 1: a
# file, a dangling link, a link to a file, RUN read-only
mkdir -p "$T/po1" "$T/po2" "$T/po3" && for d in po1 po2 po3; do cp "$T/run/spec.resolved.yaml" "$T/$d/"; done &&
  echo keep >"$T/po1/plan" && ln -s "$T/nowhere" "$T/po2/plan" && ln -s "$T/po1/plan" "$T/po3/plan"
run po1 "$JP" "$T/po1" --episodes 2
expect_error "RUN/plan a file, no checkpoint: RUN/plan named first" 1 "$T/po1/plan exists and is not a directory"
run po2 "$JP" "$T/po2" --episodes 2
expect_error "RUN/plan a dangling link: before the model loads" 1 "$T/po2/plan: a symbolic link to $T/nowhere, which does not exist"
run po3 "$JP" "$T/po3" --episodes 2
expect_error "RUN/plan a link to a file" 1 "$T/po3/plan: a symbolic link to $T/po1/plan, which is not a directory"
[ ! -e "$T/nowhere" ] && [ -z "$(ls -A "$T" "$T/po2" "$T/po3" | grep partial)" ] && ok "nothing made for the refused links" \
  || bad "refused links left: $(ls -A "$T" "$T/po2")"
mkdir -p "$T/ro" && if mount -t tmpfs tmpfs "$T/ro" 2>/dev/null; then
  trap 'umount "$T/ro" 2>/dev/null; rm -rf "$T"' EXIT
  cp "$T/run/spec.resolved.yaml" "$T/ro/" && mount -o remount,ro "$T/ro"
  run pro "$JP" "$T/ro" --episodes 2
  expect_error "RUN read-only, no checkpoint: RUN named first" 1 "cannot write into $T/ro: Read-only file system"
  umount "$T/ro"
else echo "skip: no tmpfs mount (not root?)"; fi
# a link RUN/plan -> a directory elsewhere (a bigger disk): the plan goes
# where it points, its stage beside the target, the link kept (it failed
# once the plan was made: "cannot move the plan into RUN/plan: Not a directory")
mkdir -p "$T/pl" "$T/disk/plans" && cp "$T/run/spec.resolved.yaml" "$T/run/checkpoint.bin" "$T/pl/" &&
  ln -s ../disk/plans "$T/pl/plan"
run pl timeout 60 "$JP" "$T/pl" --episodes 2 --set plan.samples=24 --set plan.topk=3 --set plan.iterations=1 \
  --set plan.random_init=false --set plan.pictures=1
[ "$RC" -eq 0 ] && [ -L "$T/pl/plan" ] && [ -s "$T/disk/plans/plan.json" ] && [ -s "$T/disk/plans/episode-000.png" ] &&
  [ -z "$(ls -A "$T/disk" "$T/pl" | grep partial)" ] && ok "RUN/plan a link to a directory: planned where it points, the link kept" \
  || bad "RUN/plan a link (rc $RC): $ERR $(ls -A "$T/disk" "$T/pl")"
run n0 "$JP" "$T/run" --episodes 0
expect_error "--episodes 0, named as typed" 2 "--episodes 0: must be in [1,"
case "$ERR" in *--set*) bad "--episodes 0 reported as a --set: $ERR" ;; esac
run ns "$JP" "$T/run" --seed x
expect_error "--seed x, named as typed" 2 "--seed x: expected an integer"
run nx "$JP" "$T/nonesuch"
expect_error "an absent run directory" 2 "$T/nonesuch/spec.resolved.yaml"
run na "$JP"
expect_error "no run directory" 2 "RUN_DIR"
# an option before RUN_DIR: it was "missing RUN_DIR" with RUN_DIR given
run late "$JP" --episodes 1 "$T/run"
expect_error "RUN_DIR after an option" 2 "jepa-plan: RUN_DIR must come first, got '--episodes'"
case "$ERR" in *missing*) bad "RUN_DIR after an option said missing: $ERR" ;; esac
mkdir -p "$T/cd" && cp "$T/run/spec.resolved.yaml" "$T/run/checkpoint.bin" "$T/cd/"
# a closed door, a radius no goal lies beyond: task 0 is made before the
# model loads (it was after: exit 1, and a run without its checkpoint said
# that first), so they are bad settings, exit 2, the value named
run cd "$JP" "$T/cd" --episodes 2 --set plan.world_params="door_width=0.08"
expect_error "a door narrower than the agent (no path to the goal)" 2 "plan.world_params \"door_width=0.08\": task 0" "no path"
run cd0 "$JP" "$T/nock" --episodes 2 --set plan.world_params="door_width=0"
expect_error "a closed door, no checkpoint: refused before the model loads" 2 \
  "jepa-plan: plan.world_params \"door_width=0\": task 0 of seed 0 has no path from start to goal"
[ -e "$T/cd/plan" ] || [ -e "$T/nock/plan" ] && bad "refused run wrote RUN/plan" || ok "nothing written for the closed door"
run rad timeout 60 "$JP" "$T/nock" --episodes 2 --set plan.success_radius=1
expect_error "a success radius no goal lies beyond (the arena's side), not a hang, before the model loads" 2 \
  "plan.success_radius: 1: task 0" "draws"
[ -e "$T/cd/plan" ] && bad "refused run wrote $T/cd/plan" || ok "nothing written for the radius"
# arena / max_action above 255: the shortest-path grid (4 cells a step) would
# outgrow 1024 cells a side (1e-4: 107 GB, an out-of-memory abort blaming the
# model; 1/256: planned, slowly)
for ma in 0.0001 0.0039; do
  run grid timeout 60 "$JP" "$T/cd" --episodes 2 --set plan.world_params="max_action=$ma"
  expect_error "max_action $ma: arena / max_action above 255 refused" 2 \
    "plan.world_params: arena 1 / max_action $ma" "at most 255"
done
[ -e "$T/cd/plan" ] && bad "refused run wrote $T/cd/plan" || ok "nothing written for the grid"
# the search's time: arena / max_action 250 (1001^2 cells) and 160 or 8000
# substeps a step each pass their own check, but 16 directions of it were
# 2.6e9 and 1.3e11 substeps a task (minutes; hours: it ran on): refused up
# front, exit 2, the estimate and the cap named; nothing written
for r in 0.00005 0.000001; do
  run srch timeout 60 "$JP" "$T/cd" --episodes 2 --set plan.world_params="max_action=0.004 radius=$r"
  expect_error "max_action 0.004, radius $r: the search's work refused" 2 \
    "plan.world_params: arena 1, max_action 0.004" "1001 x 1001 cells x 16 directions x" "more than the 1e+09 allowed"
done
[ -e "$T/cd/plan" ] && bad "refused run wrote $T/cd/plan" || ok "nothing written for the search's work"
run nk "$JP" "$T/run" --episodes 2 --set plan.topk=50 --set plan.samples=40
expect_error "topk above samples" 2 "plan.topk" "50" "plan.samples"
run ne "$JP" "$T/run" --episodes
expect_error "--episodes without a value" 2 "--episodes"
finish
