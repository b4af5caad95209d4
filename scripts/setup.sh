#!/usr/bin/env bash
# Installs the Debian packages jepa-mpi needs. Idempotent: quiet and fast when
# everything is already there. Run as root (or with sudo available).
# python3-numpy is for the tests: test_npy reads our .npy files with NumPy.
set -euo pipefail
PKGS="cmake pkg-config gcc make libopenmpi-dev openmpi-bin libopenblas-dev libopenblas-openmp-dev libzstd-dev
libyaml-dev libcunit1-dev zlib1g-dev libpng-dev dataset-fashion-mnist clang-14 libclang-rt-14-dev gnuplot-nox
python3-numpy"
[ "${1:-}" = "--slurm" ] && PKGS="$PKGS slurm-wlm munge"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
