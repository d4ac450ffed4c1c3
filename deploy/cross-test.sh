#!/usr/bin/env bash
# Builds the device-side code for aarch64 with deploy/aarch64-linux-gnu.ini and runs its tests
# (meson suite 'device': model, partitioner, ...) under qemu-aarch64. Idempotent; quick when the
# packages are already installed and build-aarch64 is configured.
# usage: deploy/cross-test.sh [--build-only] [BUILD_DIR] [-- extra meson test arguments]
# --build-only: install and build, no tests (deploy/test.sh builds first: the native suite runs
# the aarch64 dds-agent under qemu against a native dds-server).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
[[ "${1:-}" == "--build-only" ]] && { build_only=true; shift; }
build=${1:-build-aarch64}
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == "--" ]] && shift

# The cross compiler, its C library, qemu, and the arm64 builds of the libraries we link.
CROSS_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
            libjansson-dev:arm64 libopenblas-dev:arm64 check:arm64 libsodium-dev:arm64
            libssl-dev:arm64)
missing=()
for p in "${CROSS_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
    echo "cross-test: installing ${missing[*]}"
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f "$build/build.ninja" ]]; then
    meson setup "$build" --cross-file deploy/aarch64-linux-gnu.ini
fi
ninja -C "$build" -j"${NINJA_JOBS:-2}"
file "$build"/partitioner/dds-partition
$build_only && exit 0
meson test -C "$build" --no-rebuild --suite device --print-errorlogs "$@"
