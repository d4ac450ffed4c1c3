#!/usr/bin/env bash
# deploy/demo.sh: the main job (the README's first command): 100 simulated devices against dds-server
# over a veth pair for a fixed time, then a report of prices, budgets, splits, latency and drops.
#
# Needs root (a network namespace and a veth pair; DPDK's af_packet PMD). Installs what it
# needs, builds the release build `build/` if needed, and writes everything under out/demo/:
# report.txt (what it prints), report.json, price.png, latency_cdf.png, stages.png, and the raw
# inputs (loadgen.json, server_*.json, server.log, and node.json: the node's config, written by
# deploy/node_config.py with fresh random keys).
#
# Knobs (environment): DDS_DEMO_SECONDS (measured time, default 60), DDS_DEMO_DEVICES (100),
# DDS_DEMO_OUT (out/demo), DDS_DEMO_MODELS (zoo graphs, default squeezenet1_1,resnet18,resnet50),
# DDS_DEMO_DEVICE_FLOPS (the devices' compute range, FLOP/s, default 1e9:4e9: low-end phones),
# DDS_DEMO_RATE (requests/s per device, default: sized to the node's measured capacity),
# DDS_DEMO_BACKEND (auto: the GPU if one is usable, else the CPU).
set -euo pipefail
case ${1:-} in
-h | --help) sed -n '2,/^set -euo/s/^# \{0,1\}//p' "$0"; exit 0 ;;
'') ;;
*) echo "demo: takes no arguments, only the DDS_DEMO_* variables (--help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_RUN=${DDS_DEMO_SECONDS:-60}
DEVICES=${DDS_DEMO_DEVICES:-100}
OUT=${DDS_DEMO_OUT:-out/demo}
MODELS=${DDS_DEMO_MODELS:-squeezenet1_1,resnet18,resnet50}
FLOPS=${DDS_DEMO_DEVICE_FLOPS:-1e9:4e9}
BACKEND=${DDS_DEMO_BACKEND:-auto}
WARMUP=5

[[ $(id -u) == 0 ]] || { echo "demo: run as root (it makes a network namespace and a veth pair)"; exit 1; }
say() { printf '\n== %s\n' "$*"; }

say "dependencies and build (release build in build/)"
deploy/install-deps.sh
[[ -f build/build.ninja ]] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build >/dev/null
B=$ROOT/build
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

NS=ddsdemo VA=ddsdemo0 VB=ddsdemo1 PREFIX=ddsdemo
SERVER_IP=10.98.0.1 DEVICE_IP=10.98.0.2
SPID=
cleanup() {
    if [[ -n $SPID ]] && kill -0 "$SPID" 2>/dev/null; then kill -KILL "$SPID"; wait "$SPID" 2>/dev/null || true; fi
    ip link del "$VA" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# OpenBLAS 0.3.21 takes AVX-512 CPUs it does not know (AMD Zen 4) for Haswell: its AVX-512
# kernels are 1.5x faster there (docs/scheduler.md). An explicit setting is kept.
if [[ -z ${OPENBLAS_CORETYPE:-} ]] && grep -qw avx512bw /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
fi

say "the node's capacity on this machine (backend $BACKEND)"
# R in the price is the node's compute rate: measured here with the tail benchmark's
# server-only ResNet50 run at batch 8, so the market sells what the machine can do.
"$B/bench/tail_bench" --backend "$BACKEND" --threads 1 --batches 8 --reps 3 --warmup 1 --json \
    "$ROOT/zoo/resnet50.json" >"$OUT/capacity.json" 2>"$OUT/capacity.log" ||
    { cat "$OUT/capacity.log"; exit 1; }
read -r CAPACITY BACKEND_USED < <(/usr/bin/python3 "$ROOT/deploy/report.py" capacity "$OUT/capacity.json")
echo "backend $BACKEND_USED: $(/usr/bin/python3 -c "print('%.1f' % ($CAPACITY / 1e9))") GFLOP/s (ResNet50 tail, batch 8)"

say "config: $DEVICES devices, models $MODELS"
# Fresh random keys (dds-loadgen reads them from node.json). The CPU backend runs a batch's
# requests one by one (bit-exact): batching only adds waiting there, so batch 1; a GPU batches.
MAX_BATCH=32
if [[ $BACKEND_USED == cpu ]]; then MAX_BATCH=1; fi
MODEL_FLAGS=()
for m in ${MODELS//,/ }; do MODEL_FLAGS+=(--model "$ROOT/zoo/${m%.json}.json,seed=1,max_batch=$MAX_BATCH"); done
/usr/bin/python3 "$ROOT/deploy/node_config.py" --prefix "$PREFIX" --iface "$VA" --mem 2048 \
    --ip "$SERVER_IP" --verify-udp-checksum false --devices "$DEVICES" --keys random "${MODEL_FLAGS[@]}" \
    --set "{\"engine\": {\"backend\": \"$BACKEND_USED\", \"threads\": 1},
            \"pricing\": {\"capacity\": $CAPACITY, \"base_price\": 1e-12, \"round_ms\": 1000}}" \
    -o "$OUT/node.json"
RATE=${DDS_DEMO_RATE:-$(/usr/bin/python3 "$ROOT/deploy/report.py" rate --config "$OUT/node.json" \
    --devices "$DEVICES" --capacity "$CAPACITY" --load 0.4)}
echo "open loop, Poisson arrivals, $RATE requests/s per device (40% of the capacity if every device offloaded everything)"

say "network: veth $VA (dds-server, af_packet) <-> $VB in namespace $NS ($DEVICE_IP)"
ip netns add "$NS"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VB" netns "$NS"
ip link set "$VA" up
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$DEVICE_IP/24" dev "$VB"
ip -n "$NS" link set "$VB" up
ip netns exec "$NS" ethtool -K "$VB" tx off >/dev/null 2>&1 || true

say "dds-server"
"$B/server/dds-server" -- -c "$OUT/node.json" >"$OUT/server.out" 2>"$OUT/server.log" &
SPID=$!
for _ in $(seq 1 300); do
    "$B/server/dds-ctl" -p "$PREFIX" state >/dev/null 2>&1 && break
    kill -0 "$SPID" 2>/dev/null || { tail -20 "$OUT/server.log"; echo "demo: dds-server exited during start"; exit 1; }
    sleep 0.2
done
"$B/server/dds-ctl" -p "$PREFIX" state >/dev/null || { echo "demo: dds-server did not come up"; exit 1; }

say "$DEVICES devices for ${WARMUP} s warm-up + ${SECONDS_RUN} s (dds-loadgen in $NS)"
ip netns exec "$NS" "$B/loadgen/dds-loadgen" --config "$OUT/node.json" --devices "$DEVICES" \
    --rate "$RATE" --flops "$FLOPS" --timeout-ms 30000 --duration "$SECONDS_RUN" --warmup "$WARMUP" \
    --bind "$DEVICE_IP" --json "$OUT/loadgen.json" >"$OUT/loadgen.txt" 2> >(tee "$OUT/loadgen.log" | grep --line-buffered -E "^\[ *[0-9]*0\.[0-9] s\]" >&2) &
LPID=$!
# The server's histograms start when the warm-up ends (the first progress line not marked so).
until grep -q '^\[.*\] sent' "$OUT/loadgen.log" 2>/dev/null && ! tail -1 "$OUT/loadgen.log" | grep -q warmup; do
    kill -0 "$LPID" 2>/dev/null || break
    sleep 0.2
done
"$B/server/dds-ctl" -p "$PREFIX" latency --reset >/dev/null
wait "$LPID" || { echo "demo: dds-loadgen failed (see $OUT/loadgen.log)"; exit 1; }
for c in latency counters proto pricing sched; do
    if [[ $c == latency ]]; then
        "$B/server/dds-ctl" -p "$PREFIX" latency --json >"$OUT/server_latency.json"
        # and per model, by the names the server lists
        "$B/server/dds-ctl" -p "$PREFIX" models >"$OUT/server_models.json"
        for m in $(/usr/bin/python3 -c 'import json, sys; print(" ".join(list(json.load(open(sys.argv[1])).values())[0].values()))' "$OUT/server_models.json"); do
            "$B/server/dds-ctl" -p "$PREFIX" latency --json --model "$m" >"$OUT/server_latency_$m.json"
        done
    else
        "$B/server/dds-ctl" -p "$PREFIX" "$c" >"$OUT/server_$c.json"
    fi
done
kill -TERM "$SPID"
wait "$SPID" || echo "demo: dds-server exited with $?"
SPID=

say "report (also $OUT/report.txt, report.json and the PNGs)"
/usr/bin/python3 "$ROOT/deploy/report.py" report "$OUT" | tee "$OUT/report.txt"
