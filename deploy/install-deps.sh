#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs; idempotent, and quick when all are present.
# Usage: deploy/install-deps.sh [--with-reference]   (--with-reference adds PyTorch etc. for tests)
set -euo pipefail

BUILD_PKGS=(meson ninja-build pkg-config gcc libjansson-dev libopenblas-dev check
            libssl-dev libsodium-dev libdpdk-dev dpdk dpdk-dev gnuplot-nox iproute2 ethtool python3)
CROSS_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
TEST_PKGS=(python3-torch python3-torchvision python3-networkx python3-scapy python3-cryptography
           clang libclang-rt-14-dev valgrind tshark tcpreplay jq)

want=("${BUILD_PKGS[@]}")
# intel-ipsec-mb, the protocol MAC's fast path, exists for amd64 only (libdpdk-dev pulls it in
# there too; named so that the build does not depend on that).
[[ $(dpkg --print-architecture) == amd64 ]] && want+=(libipsec-mb-dev)
if [[ "${1:-}" == "--with-reference" ]]; then
    want+=("${CROSS_PKGS[@]}" "${TEST_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#want[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
