#!/bin/bash
# serve_bench.sh: dds-server's per-stage latency at 100 devices (dds-loadgen, open loop) beside the client's, worker sleeping vs polling.
#
# usage: bench/serve_bench.sh [BUILD_DIR] [SECONDS]   (as root; BUILD_DIR default build, a
#        release build: meson setup BUILD_DIR -Dbuildtype=release; ninja -C BUILD_DIR)
# Builds nothing. Makes a veth pair into a network namespace (names lat*), starts dds-server on
# af_packet (one rx lcore on CPU 0, CPU backend, tests/dataplane/tiny_cnn.json so that compute
# is small), and for each worker mode and total rate runs dds-loadgen with 100 devices in the
# namespace: a 1 s warm-up run, then `dds-ctl latency --reset`, then SECONDS (default 5)
# measured, open loop (Poisson arrivals, RATES requests/s in total). It prints, side by side
# per mode, the server's stages (p50/p99/p99.9 from `dds-ctl latency --json`) and the
# loadgen's client-side end-to-end, and says whether the overhead p99 is <= 50 us.
# Environment: RATES (default "1000 5000"; "closed": a closed loop, each device's next request
# when its last is answered, and the rate then achieved is printed), MODES (worker modes, each POLL_US[:PRIORITY]:
# scheduler.worker_poll_us and scheduler.worker_priority, or "inline": scheduler.inline, no
# worker thread; default "0 50 1000000 0:50 inline": sleep at once, poll 50 us (the daemon's
# default), poll, sleep at once at SCHED_FIFO 50, run to completion on the rx lcore), WORKER_CPU
# (scheduler.worker_cpu, default unset), BACKEND (engine.backend, default cpu; cuda on a GPU
# machine), LG_CPUS (a CPU list: dds-loadgen runs under taskset -c LG_CPUS), ZOO (a zoo model,
# e.g. zoo/resnet34.json, sent by 1 device in 100 at 0.2/s), OUT_DIR (default /tmp:
# serve_bench.json, every figure). Figures and what they mean: docs/latency.md.
set -u
BUILD=${1:-build}
SECS=${2:-5}
RATES=${RATES:-"1000 5000"}
MODES=${MODES:-"0 50 1000000 0:50 inline"}
ZOO=${ZOO:-}
OUT_DIR=${OUT_DIR:-/tmp}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SERVER=$BUILD/server/dds-server CTL=$BUILD/server/dds-ctl LG=$BUILD/loadgen/dds-loadgen
MODEL=$SRC/tests/dataplane/tiny_cnn.json
for b in "$SERVER" "$CTL" "$LG"; do
	[ -x "$b" ] || { echo "no $b: build first (meson setup $BUILD -Dbuildtype=release; ninja -C $BUILD)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, veth pair)"; exit 1; }
bt=$(/usr/bin/python3 -c "import json,sys; print([o['value'] for o in json.load(open(sys.argv[1])) if o['name'] == 'buildtype'][0])" "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null)
[ "$bt" = release ] || echo "warning: $BUILD is a '$bt' build, not release: figures will be slow"

NS=latns$$ VA=lata$$ VB=latb$$ PREFIX=ddslat$$
SERVER_IP=10.99.42.1 CLIENT_IP=10.99.42.2
WORK=$(mktemp -d /tmp/dds-lat-bench.XXXXXX)
SPID=
cleanup() {
	[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	ip link del "$VA" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK" "/var/run/dpdk/$PREFIX"
}
trap cleanup EXIT
die() { echo "serve_bench: $*"; tail -5 "$WORK/server.err" 2>/dev/null; exit 1; }

ip netns add "$NS" && ip link add "$VA" type veth peer name "$VB" && ip link set "$VB" netns "$NS" &&
	ip link set "$VA" up && ip -n "$NS" link set lo up &&
	ip -n "$NS" addr add "$CLIENT_IP/24" dev "$VB" && ip -n "$NS" link set "$VB" up ||
	die "could not make the veth pair and namespace"
# checksums filled in by the client's end, so that the server can verify them
VERIFY=false
ip netns exec "$NS" ethtool -K "$VB" tx off >/dev/null 2>&1 && VERIFY=true

# node.json for mode $1 (POLL_US[:PRIORITY] or inline), by deploy/node_config.py: 100 devices with
# their own keys (the loadgen reads the same file).
write_config() {
	local sched='"inline": true' poll=${1%%:*} prio=0 graphs=(--model "$MODEL")
	[[ $1 == *:* ]] && prio=${1#*:}
	[ "$1" != inline ] &&
		sched="\"worker_poll_us\": $poll, \"worker_cpu\": ${WORKER_CPU:--1}, \"worker_priority\": $prio"
	[ -n "$ZOO" ] && graphs+=(--model "$ZOO")
	/usr/bin/python3 "$SRC/deploy/node_config.py" --prefix "$PREFIX" --iface "$VA" --ip "$SERVER_IP" \
		--verify-udp-checksum "$VERIFY" --devices 100 --first-id 1000 --keys derived:lat "${graphs[@]}" \
		--set "{\"engine\": {\"backend\": \"${BACKEND:-cpu}\"}, \"scheduler\": {$sched},
		        \"reassembly\": {\"timeout_ms\": 2000}, \"pricing\": {\"base_price\": 1e-12, \"round_ms\": 100}}" \
		-o "$WORK/node.json" || die "node_config.py could not write the config"
}

server_start() {
	write_config "$1"
	"$SERVER" -- -c "$WORK/node.json" > "$WORK/server.out" 2> "$WORK/server.err" &
	SPID=$!
	for _ in $(seq 1 100); do
		"$CTL" -p "$PREFIX" state > /dev/null 2>&1 && return 0
		kill -0 "$SPID" 2>/dev/null || die "dds-server exited during start"
		sleep 0.1
	done
	die "dds-server did not answer on its telemetry socket"
}

server_stop() {
	kill -TERM "$SPID"
	wait "$SPID"
	SPID=
}

# loadgen TOTAL_RATE SECONDS JSON: 100 devices, open loop (or closed loop, think time 0, for
# TOTAL_RATE "closed"); slow devices on fast links, so that they offload everything and the
# server computes every layer.
loadgen() {
	local models=$MODEL mix=() load=(--closed) per
	if [ "$1" != closed ]; then
		per=$(/usr/bin/python3 -c "print($1 / 100)")
		load=(--rate "$per" --arrival poisson)
		[ -n "$ZOO" ] && load=(--rate "$per,0.2" --arrival poisson)
	fi
	[ -n "$ZOO" ] && { models="$MODEL,$(realpath "$ZOO")"; mix=(--mix 99,1); }
	ip netns exec "$NS" ${LG_CPUS:+taskset -c "$LG_CPUS"} "$LG" --config "$WORK/node.json" --devices 100 --models "$models" \
		"${mix[@]}" "${load[@]}" --duration "$2" --timeout-ms 2000 \
		--flops 1e6:1e7 --uplink-mbps 100:1000 --seed 7 --quiet --json "$3" \
		> "$WORK/lg.out" 2> "$WORK/lg.err" || { cat "$WORK/lg.err"; die "dds-loadgen failed"; }
}

RESULTS=()
for mode in $MODES; do
	server_start "$mode"
	for rate in $RATES; do
		tag=$mode-$rate
		loadgen "$rate" 1 "$WORK/warm.json"
		"$CTL" -p "$PREFIX" latency --reset > /dev/null || die "dds-ctl latency --reset"
		load=$(cut -d' ' -f1-3 /proc/loadavg)
		loadgen "$rate" "$SECS" "$WORK/lg-$tag.json"
		"$CTL" -p "$PREFIX" latency --json > "$WORK/srv-$tag.json" || die "dds-ctl latency"
		"$CTL" -p "$PREFIX" sched > "$WORK/sched-$tag.json" || die "dds-ctl sched"
		echo "{\"mode\": \"$mode\", \"rate\": \"$rate\", \"loadavg\": \"$load\"}" > "$WORK/run-$tag.json"
		RESULTS+=("$tag")
	done
	server_stop
done

/usr/bin/python3 - "$WORK" "$OUT_DIR/serve_bench.json" "$SECS" "${RESULTS[@]}" <<'EOP'
import json, sys
work, out, secs, tags = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ld = lambda f: json.load(open("%s/%s" % (work, f)))
runs = []
for t in tags:
    r = ld("run-%s.json" % t)
    r["server_us"] = ld("srv-%s.json" % t)
    r["client"] = ld("lg-%s.json" % t)["overall"]
    r["sched"] = list(ld("sched-%s.json" % t).values())[0]
    runs.append(r)
json.dump(runs, open(out, "w"), indent=1)
def name(mode):
    if mode == "inline":
        return "inline (rx lcore)"
    poll, prio = [int(x) for x in (mode.split(":") + ["0"])[:2]]
    s = "sleep (poll 0)" if poll == 0 else "poll %d us" % poll if poll < 1000000 else "poll (1 s)"
    return s + (", FIFO %d" % prio if prio else "")
stages = ["reassembly", "handoff", "queue", "compute", "return", "end_to_end", "overhead"]
for rate in dict.fromkeys(r["rate"] for r in runs):
    rs = [r for r in runs if r["rate"] == rate]
    w = 30
    what = ("closed loop (100 devices, one request each, no think time)" if rate == "closed"
            else "%s requests/s in total (100 devices, Poisson)" % rate)
    print("\n== %s, %s s measured after a 1 s warm-up" % (what, secs))
    print("%-22s" % "" + "".join("%-*s" % (w, name(r["mode"])) for r in rs))
    print("%-22s" % "load average" + "".join("%-*s" % (w, r["loadavg"]) for r in rs))
    print("%-22s" % "server stage (us)" + "".join("%-*s" % (w, "p50 / p99 / p99.9") for r in rs))
    for s in stages:
        cells = []
        for r in rs:
            v = r["server_us"].get(s, {})
            cells.append("%.1f / %.1f / %.1f" % (v.get("p50_us", 0), v.get("p99_us", 0),
                                                 v.get("p999_us", 0)))
        print("%-22s" % s + "".join("%-*s" % (w, c) for c in cells))
    print("%-22s" % "requests timed" + "".join(
        "%-*s" % (w, r["server_us"].get("end_to_end", {}).get("count", 0)) for r in rs))
    for k, lab in (("latency_ms", "client e2e (ms)"), ("after_send_ms", "client after send")):
        print("%-22s" % lab + "".join("%-*s" % (w, "%.3f / %.3f / %.3f" % (
            r["client"][k]["p50"], r["client"][k]["p99"], r["client"][k]["p99.9"])) for r in rs))
    print("%-22s" % "answered/lost/busy" + "".join("%-*s" % (w, "%d / %d / %d" % (
        r["client"]["counts"]["answered"], r["client"]["counts"]["lost"],
        r["client"]["counts"]["busy"])) for r in rs))
    print("%-22s" % "answered per second" + "".join("%-*s" % (w, "%.0f" % (
        r["client"]["counts"]["answered"] / float(secs))) for r in rs))
    print("%-22s" % "overhead p99 <= 50 us" + "".join("%-*s" % (w, "yes" if r["server_us"].get(
        "overhead", {}).get("p99_us", 1e9) <= 50 else "NO (%.0f us)" % r["server_us"].get(
        "overhead", {}).get("p99_us", 0)) for r in rs))
print("\nall figures: %s" % out)
EOP
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); uptime:$(uptime)"
