#!/bin/sh
# gpu-carry.sh: fetch the Debian packages the GPU machine lacks into .carry/ (for bench/gpu_run.sh).
#
# The lent GPU machine (docs/gpu.md) has CUDA, nvcc, PyTorch, gcc, and pip's meson and ninja,
# but none of jansson, OpenBLAS, Check or pkg-config's .pc files for them, and no network. This
# downloads the .deb files (compressed, about 13 MB; the device tool carries 64 MiB at most,
# working tree included) into .carry/debs/ with apt-get download (run apt-get update first if
# the lists are old). gpu_run.sh unpacks them there with dpkg-deb -x. Also carried: pkgconf
# (its sysroot option relocates the .pc files), and meson + ninja as a fallback for a machine
# without them. libcrypto (OpenSSL), libsodium and DPDK are left out: all are optional there
# (-Ddpdk=disabled; without libcrypto the protocol library and what needs it are not built).
#
#   deploy/gpu-carry.sh          then, in the device tool: carry [".carry"], and run
#                                bench/gpu_run.sh (see docs/gpu.md for the whole command)
set -eu

cd "$(dirname "$0")/.."
PKGS="libjansson4 libjansson-dev libopenblas0-pthread libopenblas-pthread-dev libgfortran5
libquadmath0 check libsubunit0 libsubunit-dev pkgconf-bin libpkgconf3 meson ninja-build"

rm -rf .carry/debs
mkdir -p .carry/debs
(cd .carry/debs && apt-get download -o APT::Architecture=amd64 $PKGS) >/dev/null
total=$(du -cb .carry/debs/*.deb | tail -n 1 | cut -f 1)
echo "gpu-carry: $(ls .carry/debs | wc -l) packages, $((total / 1024)) KiB in .carry/debs:"
ls .carry/debs
[ "$total" -lt $((48 * 1024 * 1024)) ] || { echo "gpu-carry: over 48 MiB" >&2; exit 1; }
