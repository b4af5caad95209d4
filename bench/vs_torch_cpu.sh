#!/usr/bin/env bash
# One thread, CPU clock: our step and the PyTorch reference's, each as CPU
# seconds per step, so a machine shared with other jobs (the load moves
# wall-clock figures by 2-10x) still compares the work each side does.
# Ours: bench-step --cpu-clock with the reference's masking rule
# (mask.context_cut=batch_min, mask.block_round=nearest: the same work per
# image). The reference: ref_ijepa.py --threads 1 with OPENBLAS_NUM_THREADS=1
# run for 3+4 and 3+16 steps under /usr/bin/time; (CPU(16) - CPU(4)) / 12 is
# one step without start-up. Both with OpenBLAS's default kernels here and
# with its AVX-512 ones (OPENBLAS_CORETYPE=SkylakeX; ours: JEPA_BLAS_KEEP=1
# for the default ones). Without torch: one line, our figures only.
# usage: bench/vs_torch_cpu.sh [BUILD_DIR (build)]
# env: JEPA_TORCH_REF (default ../shared/reference/ref_ijepa.py beside the repo)
# Output: `key value` lines; last: ratio_1thread_cpu_same_kernels, ratio_1thread_cpu.
set -euo pipefail
b=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
ref=${JEPA_TORCH_REF:-$here/../shared/reference/ref_ijepa.py}
[ -x "$b/bench-step" ] || { echo "vs_torch_cpu: $b/bench-step not found (build it first)" >&2; exit 2; }
same=(--set mask.context_cut=batch_min --set mask.block_round=nearest)
ours() { env "$@" "$b/bench-step" --threads 1 --steps 4 --warmup 1 --cpu-clock --no-peak "${same[@]}" |
  sed -n 's/^img_per_s //p'; }
o_avx=$(ours X=1)
o_def=$(ours JEPA_BLAS_KEEP=1)
echo "ours_img_per_cpu_s $o_avx"
echo "ours_default_kernels_img_per_cpu_s $o_def"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null || [ ! -f "$ref" ]; then
  echo "reference skipped: no torch for /usr/bin/python3 (apt-get install python3-torch) or no $ref"
  exit 0
fi
t=$(mktemp)
trap 'rm -f "$t"' EXIT
cpu() { # steps env...
  local n=$1; shift
  (cd "$(dirname "$ref")" && /usr/bin/time -f "%U %S" -o "$t" env OPENBLAS_NUM_THREADS=1 "$@" \
    /usr/bin/python3 "$ref" --threads 1 --bench "$n" >/dev/null 2>&1)
  awk '{ print $1 + $2 }' "$t"
}
per_s() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 128 * 12 / (b - a) }'; }
t_def=$(per_s "$(cpu 4 X=1)" "$(cpu 16 X=1)")
t_avx=$(per_s "$(cpu 4 OPENBLAS_CORETYPE=SkylakeX)" "$(cpu 16 OPENBLAS_CORETYPE=SkylakeX)")
echo "torch_default_kernels_img_per_cpu_s $t_def"
echo "torch_avx512_img_per_cpu_s $t_avx"
awk -v a="$o_def" -v b="$t_def" 'BEGIN { printf "ratio_1thread_cpu_default_kernels_both %.2f\n", a / b }'
awk -v a="$o_avx" -v b="$t_def" 'BEGIN { printf "ratio_1thread_cpu_vs_torch_as_run %.2f\n", a / b }'
awk -v a="$o_avx" -v b="$t_avx" 'BEGIN { printf "ratio_1thread_cpu_same_kernels %.2f\n", a / b }'
awk -v a="$o_avx" -v b="$t_def" -v c="$t_avx" 'BEGIN { m = b > c ? b : c; printf "ratio_1thread_cpu %.2f\n", a / m }'
