#!/bin/sh
# gpu-carry.sh: fetch the Debian packages the GPU machine lacks into .carry/ (for bench/gpu_run.sh).
#
# The lent GPU machine (docs/gpu.md) has CUDA, nvcc, PyTorch, gcc, and pip's meson and ninja,
# but none of jansson, OpenBLAS, Check, DPDK, OpenSSL's headers or pkg-config's .pc files for
# them, and no network. This downloads the .deb files with apt-get download (run apt-get update
# first if the lists are old) into .carry/debs/; gpu_run.sh unpacks them into a sysroot there.
#   - build and GPU tests: jansson, OpenBLAS, Check (+ subunit), pkgconf (its sysroot option
#     relocates the .pc files), and meson + ninja as a fallback for a machine without them;
#   - the serve stage (dds-server, dds-ctl, dds-loadgen): libdpdk-dev (headers, .pc files), the
#     DPDK runtime libraries dds-server links (eal, ethdev, mbuf, mempool, ring, telemetry and
#     what they need) and the three drivers serve_bench.sh loads (vdev bus, ring mempool,
#     net_af_packet, which needs the PCI bus library), their deps libnuma, libfdt, libbsd
#     (+ headers: DPDK's string functions use them), libmd; OpenSSL 3 (libcrypto, headers).
#     The other ~370 DPDK drivers and their deps (ibverbs, xdp, bpf, isal, ipsec-mb, pcap...)
#     are left out: gpu_run.sh trims the carried libdpdk .pc files to what is carried;
#   - .carry/iproute2/: ip and its libraries, used by the serve stage only where the machine has
#     no ip (kept apart: gpu_run.sh unpacks them outside the sysroot's library path).
# About 28 MB in all; the device tool carries 64 MiB at most, working tree included.
#
#   deploy/gpu-carry.sh          then, in the device tool: carry [".carry"], and run
#                                bench/gpu_run.sh (see docs/gpu.md for the calls)
set -eu

cd "$(dirname "$0")/.."
PKGS="libjansson4 libjansson-dev libopenblas0-pthread libopenblas-pthread-dev libgfortran5
libquadmath0 check libsubunit0 libsubunit-dev pkgconf-bin libpkgconf3 meson ninja-build"
SERVE_PKGS="libdpdk-dev librte-eal23 librte-kvargs23 librte-telemetry23 librte-ring23
librte-mempool23 librte-mbuf23 librte-net23 librte-meter23 librte-ethdev23 librte-pci23
librte-bus-pci23 librte-bus-vdev23 librte-mempool-ring23 librte-net-af-packet23 libnuma1 libfdt1
libbsd0 libbsd-dev libmd0 libssl3 libssl-dev"
IP_PKGS="iproute2 libbpf1 libelf1 libmnl0 libcap2 zlib1g"

rm -rf .carry/debs .carry/iproute2
mkdir -p .carry/debs .carry/iproute2
(cd .carry/debs && apt-get download -o APT::Architecture=amd64 $PKGS $SERVE_PKGS) >/dev/null
(cd .carry/iproute2 && apt-get download -o APT::Architecture=amd64 $IP_PKGS) >/dev/null
total=$(du -cb .carry/debs/*.deb .carry/iproute2/*.deb | tail -n 1 | cut -f 1)
tree=$(git ls-files -z | xargs -0 du -cb | tail -n 1 | cut -f 1)
n=$(ls .carry/debs/*.deb .carry/iproute2/*.deb | wc -l)
echo "gpu-carry: $n packages, $((total / 1024)) KiB in .carry; with the working tree" \
	"($((tree / 1024)) KiB): $(((total + tree) / 1024)) KiB of the 64 MiB"
[ "$total" -lt $((48 * 1024 * 1024)) ] || { echo "gpu-carry: over 48 MiB" >&2; exit 1; }
