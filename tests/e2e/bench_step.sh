#!/usr/bin/env bash
# bench-step: bad input in one line; each objective measured on a small
# model (FLOPs counted, every phase printed, img_per_s last); the OpenMP wait
# policy chosen unless the user set one (blas_core_select).
. "$(dirname "$0")/lib.sh"
BS="$B/bench-step"
SMALL=(--set model.width=32 --set model.depth=2 --set model.heads=2 --set model.pred_width=16
       --set model.pred_depth=1 --set model.pred_heads=2 --batch 4 --steps 2 --warmup 1 --no-peak)

run obj "$BS" --objective nope
expect_error "unknown objective" 2 "--objective nope"
run steps "$BS" --steps 0
expect_error "zero steps" 2 "--steps"
run key "$BS" --set model.nope=1
expect_error "unknown --set key" 2 "model.nope"
run nbatch "$BS" --batch abc
expect_error "a batch that is not a number" 2 "--batch abc"
run nsteps "$BS" --steps 1x
expect_error "a step count with junk" 2 "--steps 1x"
run arg "$BS" --threads
expect_error "option without its value" 2 "usage"

# bench/learning.sh: every row's settings checked before any row runs or
# any file is written (its rows take hours; a typo must not cost them)
pack_fmnist
LRN=(env DATA="$T/fm" OUT="$T/lrn" bash "$S/bench/learning.sh" "$B")
run lwd env PROBE_WD_MIN=3e-5 "${LRN[@]:1}" 0 ijepa
expect_error "learning.sh: PROBE_WD_MIN off the decades" 2 "eval.wd_min=3e-5" "power of ten"
run lzero env PROBE_WD_ZERO=maybe "${LRN[@]:1}" 0 ijepa
expect_error "learning.sh: PROBE_WD_ZERO not a boolean" 2 "eval.wd_zero=maybe"
run lseed "${LRN[@]}" "0 x" ijepa
expect_error "learning.sh: a seed that is not an integer" 2 "seed=x"
run lobj "${LRN[@]}" 0 "ijepa nope"
expect_error "learning.sh: unknown objective" 2 "'nope'"
run lbf env JEPA_DEBUG_NO_BF16=1 "${LRN[@]}" 0 "ijepa ijepa-bf16"
expect_error "learning.sh: ijepa-bf16 without AVX512_BF16, before any row" 2 "ijepa-bf16" "AVX512_BF16"
[ ! -e "$T/lrn" ] && ok "learning.sh wrote nothing for bad input" || bad "learning.sh left $(ls "$T/lrn")"

# LONG, LONG_OBJ and the long row's step count, and vs_torch.sh's numbers,
# checked before anything runs: against a build whose programs that train or
# measure only leave a mark (jepa-launch and jepa-shard are the real ones,
# for the settings check and the packing), so a check that comes too late
# shows as that mark, in seconds, not as hours of training
SB=$T/stubs; mkdir -p "$SB"
ln -s "$B/jepa-launch" "$B/jepa-shard" "$SB/"
for p in jepa-train jepa-eval bench-step; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/ran"\necho img_per_s 1\nexit 3\n' "$p" "$T" > "$SB/$p"; chmod +x "$SB/$p"
done
LRS=(env DATA="$T/fm" OUT="$T/lrn" bash "$S/bench/learning.sh" "$SB" 0 ijepa)
run llong env LONG=yes "${LRS[@]:1}"
expect_error "learning.sh: LONG=yes (not 0 or 1)" 2 "LONG 'yes'"
run llobj env LONG=1 LONG_OBJ=ijepaa "${LRS[@]:1}"
expect_error "learning.sh: LONG_OBJ unknown" 2 "LONG_OBJ 'ijepaa'" "unknown objective"
run llsteps env LONG=1 LONG_OBJ=lejepa LEJEPA_STEPS=1e3 "${LRS[@]:1}"
expect_error "learning.sh: the long row's step count not an integer (its objective not among the rows)" 2 \
  "lejepa step count '1e3'"
run llzero env LONG=1 IJEPA_STEPS=0 "${LRS[@]:1}"
expect_error "learning.sh: the long row's step count 0" 2 "ijepa step count '0'"
VT=(bash "$S/bench/vs_torch.sh" "$SB")
run vround "${VT[@]}" 2x
expect_error "vs_torch.sh ROUNDS 2x" 2 "ROUNDS '2x'" "1 to 999999999"
run vround0 "${VT[@]}" 0
expect_error "vs_torch.sh ROUNDS 0" 2 "ROUNDS '0'"
run vsteps env BENCH_STEPS=-5 "${VT[@]}" 1
expect_error "vs_torch.sh BENCH_STEPS -5" 2 "BENCH_STEPS '-5'"
run vsteps2 env BENCH_STEPS=1000000000 "${VT[@]}" 1
expect_error "vs_torch.sh BENCH_STEPS 1000000000" 2 "BENCH_STEPS '1000000000'"
run vtime env REF_TIMEOUT=15m "${VT[@]}" 1
expect_error "vs_torch.sh REF_TIMEOUT 15m" 2 "REF_TIMEOUT '15m'"
# scaling.sh's ONLY and SHAPES (a typo ran every part, or none, or
# unshaped runs under a shaped name): refused before the data is packed,
# the namespaces set up or anything measured
SC=(bash "$S/bench/scaling.sh" "$SB" 1 1)
run sonly env ONLY=shape "${SC[@]}"
expect_error "scaling.sh ONLY=shape" 2 "ONLY 'shape'" "shaped"
run sshape "${SC[@]}" "1gbit 100mbs"
expect_error "scaling.sh SHAPES with 100mbs" 2 "SHAPES '1gbit 100mbs'" "'100mbs' is not a tc rate"
run sbare "${SC[@]}" "100"
expect_error "scaling.sh SHAPES with a bare number" 2 "'100' is not a tc rate"
run sempty env ONLY=shaped "${SC[@]}" " "
expect_error "scaling.sh SHAPES with no rate" 2 "SHAPES ' ': no rate"
[ ! -e "$T/ran" ] && [ ! -e "$T/lrn" ] && ok "learning.sh, vs_torch.sh and scaling.sh ran and wrote nothing for bad input" \
  || bad "bad input ran: $(cat "$T/ran" 2>/dev/null) $(ls "$T/lrn" 2>/dev/null)"

# REPORT_ONLY=1: the tables from an earlier run's files, and each seed's
# margin over its own random-init encoder (the bar is per seed, not on means)
R=$T/lrnrep; mkdir -p "$R"
printf 'probe_acc 0.8463\nknn_acc 0.8459\n' > "$R/pixels.txt"
printf 'probe_acc 0.8383\nknn_acc 0.6053\n' > "$R/random-ijepa-s0.txt"
printf 'probe_acc 0.8355\nknn_acc 0.5899\n' > "$R/random-ijepa-s1.txt"
printf 'probe_acc 0.8636\nknn_acc 0.7988\ntarget_std 0.93\n' > "$R/ijepa-s0.txt"
printf 'probe_acc 0.8672\nknn_acc 0.7961\ntarget_std 0.85\n' > "$R/ijepa-s1.txt"
run lrep env OUT="$R" REPORT_ONLY=1 bash "$S/bench/learning.sh" "$B" "0 1" ijepa
if [ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -q '^margin ijepa probe_acc seed 0 +2.53 points' &&
   printf '%s\n' "$OUT" | grep -q '^margin ijepa probe_acc seed 1 +3.17 points' &&
   printf '%s\n' "$OUT" | tail -n 2 | grep -q '^learning ijepa probe_acc_margin_mean 2.85 probe_acc_margin_min 2.53 seeds 2$' &&
   printf '%s\n' "$OUT" | grep -q '^learning ijepa probe_acc_mean 0.8654 probe_acc_min 0.8636 runs 2$'; then
  ok "learning.sh REPORT_ONLY: per-seed margins over random init, their minimum last"
else bad "learning.sh REPORT_ONLY: rc $RC: $OUT $ERR"; fi
run lrepy env OUT="$R" REPORT_ONLY=yes bash "$S/bench/learning.sh" "$B" "0 1" ijepa
expect_error "learning.sh REPORT_ONLY=yes refused (not a rerun over the earlier rows)" 2 "REPORT_ONLY 'yes'"
[ -s "$R/ijepa-s0.txt" ] && [ -s "$R/pixels.txt" ] && ok "REPORT_ONLY=yes touched no row" || bad "REPORT_ONLY=yes lost rows"
cp "$R/ijepa-s1.txt" "$T/keep"; grep -v knn_acc "$T/keep" > "$R/ijepa-s1.txt"
run lrepk env OUT="$R" REPORT_ONLY=1 bash "$S/bench/learning.sh" "$B" "0 1" ijepa
expect_error "learning.sh: a seed without its kNN figure stops the margins" 1 "seed 1: no knn_acc"
cp "$T/keep" "$R/ijepa-s1.txt"; rm "$R/random-ijepa-s1.txt"
run lrepm env OUT="$R" REPORT_ONLY=1 bash "$S/bench/learning.sh" "$B" "0 1" ijepa
expect_error "learning.sh REPORT_ONLY with a row's file missing" 1 "random-ijepa-s1.txt" "missing"

# the other bench programs and scripts: bad numbers refused before any work
run bsep "$B/bench-shard" --epochs -3
expect_error "bench-shard --epochs -3" 2 "--epochs -3" "1 to 1000"
run bslev "$B/bench-shard" --levels 1,x
expect_error "bench-shard --levels 1,x" 2 "'x' is not a zstd level"
run bev "$B/bench-eval" 60000x 100 8 1
expect_error "bench-eval with junk after a number" 2 "ntr '60000x'"
run bcm "$B/bench-comm" --bucket-mb nan
case "$RC:$ERR" in 0:*|*"--bucket-mb nan"*"expected a number"*) [ "$RC" -ne 0 ] && ok "bench-comm --bucket-mb nan refused" || bad "bench-comm nan: rc 0" ;;
  *) bad "bench-comm --bucket-mb nan: rc $RC: $ERR" ;; esac
run dpst bash "$S/bench/dp.sh" "$B" abc
expect_error "dp.sh STEPS abc" 2 "STEPS 'abc'"
run screp bash "$S/bench/scaling.sh" "$B" 20 abc
expect_error "scaling.sh REPS abc, before any namespace" 2 "REPS 'abc'"
run sstop bash "$S/bench/seeds.sh" "$B" abc
expect_error "seeds.sh STOP abc" 2 "STOP 'abc'"
run sseed bash "$S/bench/seeds.sh" "$B" 10 "0 -1"
expect_error "seeds.sh SEEDS with -1" 2 "'-1' is not a seed"

for obj in ijepa lejepa world; do
  extra=()
  [ $obj = world ] && extra=(--set model.img_size=16 --set world.embed_dim=16 --set sigreg.directions=8)
  run $obj "$BS" --objective $obj "${SMALL[@]}" "${extra[@]}"
  if [ "$RC" -ne 0 ]; then bad "$obj: exit $RC: $ERR"; continue; fi
  last=$(printf '%s\n' "$OUT" | tail -n 1)
  case "$last" in "img_per_s "[0-9]*) ok "$obj: last line '$last'" ;; *) bad "$obj: last line '$last'" ;; esac
  fl=$(printf '%s\n' "$OUT" | sed -n 's/^mflop_per_image //p')
  awk -v f="$fl" 'BEGIN { exit !(f > 0) }' && ok "$obj: $fl MFLOP per image counted" || bad "$obj: mflop_per_image '$fl'"
  np=$(printf '%s\n' "$OUT" | grep -c '^phase_')
  [ "$np" -eq 11 ] && ok "$obj: 11 phase lines" || bad "$obj: $np phase lines"
  printf '%s\n' "$OUT" | grep -q "^objective $obj$" && ok "$obj: named" || bad "$obj: objective line"
done

run wait env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$BS" "${SMALL[@]}" --steps 1
printf '%s\n' "$OUT" | grep -q '^omp_wait_policy passive$' && ok "passive OpenMP waits by default" \
  || bad "wait policy: $(printf '%s\n' "$OUT" | grep omp_wait)"
run wait2 env OMP_WAIT_POLICY=active "$BS" "${SMALL[@]}" --steps 1
printf '%s\n' "$OUT" | grep -q '^omp_wait_policy active$' && ok "the user's OMP_WAIT_POLICY kept" \
  || bad "wait policy: $(printf '%s\n' "$OUT" | grep omp_wait)"
finish
