#!/usr/bin/env bash
# deploy/test.sh: runs all the tests: installs what they need, builds the test build (ASan +
# UBSan), checks that the tree also builds with the GPU backend off and on, runs the aarch64
# device-side suites under qemu, and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
deploy/install-deps.sh --with-reference || { echo "0 passed, 1 failed"; exit 1; }

# configure DIR [meson options...]: fresh or reconfigured, quietly
configure() {
    local dir=$1; shift
    if [[ -f $dir/build.ninja ]]; then
        meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
    else
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
    fi || { cat "$dir.setup.log"; return 1; }
}

fails=0
logs=()
openssl_mac=false
step "compile check: GPU backend disabled (and the OpenSSL MAC), then enabled (CUDA + cuDNN from /usr/local/cuda)"
for gpu in disabled enabled; do
    if [[ $gpu == enabled && ! -f /usr/local/cuda/include/cudnn.h ]]; then
        echo "no CUDA/cuDNN under /usr/local/cuda: GPU-enabled compile check skipped"; continue
    fi
    # The first build also takes the protocol MAC's other implementation (OpenSSL instead of
    # intel-ipsec-mb) and runs the protocol suite on it: libsodium checks its tags there.
    mac=$([[ $gpu == disabled ]] && echo disabled || echo auto)
    if configure "build-gpu-$gpu" -Dgpu=$gpu -Dipsec_mb=$mac -Dbuildtype=release && ninja -C "build-gpu-$gpu" >"build-gpu-$gpu.log" 2>&1; then
        echo "build with -Dgpu=$gpu -Dipsec_mb=$mac: ok"
        [[ $gpu == disabled ]] && openssl_mac=true
    else
        tail -40 "build-gpu-$gpu.log"; echo "build with -Dgpu=$gpu: FAILED"; fails=$((fails + 1))
    fi
done
if $openssl_mac; then
    meson test -C build-gpu-disabled --print-errorlogs --suite protocol
    logs+=(build-gpu-disabled/meson-logs/testlog.json)
fi

cross=false
if [[ -x deploy/cross-test.sh ]]; then
    step "aarch64 build (the device side; its dds-agent also runs in the native suite under qemu)"
    if deploy/cross-test.sh --build-only >build-aarch64.log 2>&1; then
        cross=true
        export DDS_AARCH64_AGENT=$ROOT/build-aarch64/agent/dds-agent
        echo "aarch64 build: ok ($DDS_AARCH64_AGENT)"
    else
        tail -40 build-aarch64.log; echo "aarch64 build: FAILED"; fails=$((fails + 1))
    fi
fi

step "test build (ASan + UBSan) and tests"
configure build-test -Dbuildtype=debug -Db_sanitize=address,undefined || exit 1
ninja -C build-test || { echo "0 passed, 1 failed"; exit 1; }
meson test -C build-test --print-errorlogs --num-processes 2 "$@"
logs+=(build-test/meson-logs/testlog.json)

if $cross; then
    step "aarch64 device-side tests under qemu"
    deploy/cross-test.sh || true
    [[ -f build-aarch64/meson-logs/testlog.json ]] && logs+=(build-aarch64/meson-logs/testlog.json)
fi

step "summary"
/usr/bin/python3 - "$fails" "${logs[@]}" <<'PY'
import json, sys
extra_fail = int(sys.argv[1])
passed = failed = skipped = 0
for path in sys.argv[2:]:
    for line in open(path):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1; print("failed:", path, json.loads(line)["name"])
failed += extra_fail
if skipped:
    print(f"{skipped} skipped (exit 77: e.g. the GPU suite on a machine without a GPU)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
