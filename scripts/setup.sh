#!/usr/bin/env bash
# Installs the Debian packages the build needs when they are missing: CMake, a C++ compiler,
# Maven, OpenBLAS for the CPU backend, python3 for the CUDA emulator's source rewrite, and Open
# MPI's mpirun for multi-process training and its tests. Runs apt-get as root, or through sudo
# when that works without a password; otherwise prints the command to run. When another package
# manager holds the dpkg lock, apt-get waits for it (up to CAE_APT_LOCK_TIMEOUT seconds, 600).
# JDK 25 is not in Debian: ./cae says where to get it.
set -euo pipefail

packages=(cmake g++ make maven libopenblas-dev python3 openmpi-bin)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: not a Debian-like system; install the equivalents of: ${missing[*]}" >&2
    echo "       (without OpenBLAS the CPU backend uses its built-in, slower GEMM)" >&2
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    apt=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
else
    echo "setup: these packages are missing: ${missing[*]}" >&2
    echo "       install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
lock_timeout=${CAE_APT_LOCK_TIMEOUT:-600}
apt+=(-o "DPkg::Lock::Timeout=$lock_timeout")
if command -v fuser >/dev/null 2>&1 && fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; then
    echo "setup: another package manager holds the dpkg lock; waiting for it (at most ${lock_timeout} s)"
fi
if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/tmp/cae-setup-apt.log 2>&1; then
    "${apt[@]}" update >>/tmp/cae-setup-apt.log 2>&1 || true
    if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>/tmp/cae-setup-apt.log 2>&1; then
        echo "setup: apt-get failed; see /tmp/cae-setup-apt.log" >&2
        tail -5 /tmp/cae-setup-apt.log >&2
        exit 1
    fi
fi
