# lib_veth.sh: shared by the dataplane integration tests: a veth pair into a fresh network
# namespace, dds-server on its root end (net_af_packet), cleanup on any exit. Sourced, not run.
# With KIND=tap the server makes a tap interface (net_tap) instead, moved into the namespace.
# The memif test uses server_start alone, with its own VDEV and VERIFY.
# Needs: SERVER CTL MODEL set by the caller. Sets: NS, PREFIX, WORK, SPID, CLIENT_IP, SERVER_IP,
# NODE_CONFIG (deploy/node_config.py, which writes every config of these tests).
# shellcheck shell=bash

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
TAG=$$
NS=ddsns$TAG
VA=ddsa$TAG
VB=ddsb$TAG
PREFIX=ddst$TAG
SERVER_IP=10.99.0.1
CLIENT_IP=10.99.0.2
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
WORK=$(mktemp -d /tmp/dds-dp-test.XXXXXX)
NODE_CONFIG=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/deploy/node_config.py
SPID=

veth_cleanup() {
	if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
		kill -KILL "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	ip link del "$VA" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK" "/var/run/dpdk/$PREFIX"
}
trap veth_cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- server stderr:"; tail -30 "$WORK/server.err" 2>/dev/null
	exit 1
}

# The pair, the client end in the namespace. Checksum offload off on the client end, so the
# frames af_packet hands the server carry real UDP checksums (veth leaves them partial).
veth_setup() {
	ip netns add "$NS" || fail "ip netns add"
	if [ "${KIND:-af_packet}" = tap ]; then
		VERIFY=true # the kernel fills in checksums for a tap without offloads
		VDEV="net_tap0,iface=$VB"
		return
	fi
	VDEV="net_af_packet0,iface=$VA"
	ip link add "$VA" type veth peer name "$VB" || fail "ip link add veth"
	ip link set "$VB" netns "$NS"
	ip link set "$VA" up
	ip -n "$NS" link set lo up
	ip -n "$NS" addr add "$CLIENT_IP/24" dev "$VB"
	ip -n "$NS" link set "$VB" up
	VERIFY=false
	if command -v ethtool >/dev/null && ip netns exec "$NS" ethtool -K "$VB" tx off >/dev/null 2>&1; then
		VERIFY=true
	fi
}

# Start dds-server with the config written from $1 (extra JSON members for the top level), on
# lcores $LCORES (default 0: the main lcore runs the only queue); $MODEL_OPTS: extra members of
# each model's entry ("\"max_delay_us\": 1000"); $ROUND_MS: the pricing round (default 50).
server_start() {
	server_config "$@"
	server_run "$WORK/cfg.json"
	tap_into_ns
}

# Write $WORK/cfg.json with deploy/node_config.py: the test's two devices (key $KEY) and models,
# $1 extra top-level members ("\"scheduler\": {...}", deep-merged over the rest). $LCORE_FLAG
# (-l, the default, or --lcores) says how the EAL reads $LCORES.
server_config() {
	local opts=${MODEL_OPTS:+, $MODEL_OPTS} lcores=(--lcores "${LCORES:-0}")
	local models=(--model "{\"graph\": \"$MODEL\", \"seed\": 1$opts}")
	[ -n "${MODEL2:-}" ] && models+=(--model "{\"graph\": \"$MODEL2\", \"seed\": 1$opts}")
	case ${LCORE_FLAG:--l} in
	-l) ;;
	--lcores) lcores=(--lcore-map "${LCORES:-0}") ;;
	*) fail "LCORE_FLAG is -l or --lcores, not $LCORE_FLAG" ;;
	esac
	/usr/bin/python3 "$NODE_CONFIG" --prefix "$PREFIX" --vdev "$VDEV" "${lcores[@]}" --ip "$SERVER_IP" \
		--verify-udp-checksum "$VERIFY" --devices 2 --keys "fixed:$KEY" "${models[@]}" \
		--set "{\"engine\": {\"backend\": \"cpu\"}, \"pricing\": {\"base_price\": 1.0, \"round_ms\": ${ROUND_MS:-50}}}" \
		${1:+--set "{$1}"} -o "$WORK/cfg.json" || fail "node_config.py could not write the config"
}

# Start dds-server with the config file $1; returns when its telemetry answers (within
# ${START_S:-20} s), fails the test if it exits or does not answer.
server_run() {
	"$SERVER" -- -c "$1" > "$WORK/server.out" 2> "$WORK/server.err" &
	SPID=$!
	for _ in $(seq 1 $((${START_S:-20} * 5))); do
		"$CTL" -p "$PREFIX" state > /dev/null 2>&1 && return 0
		kill -0 "$SPID" 2>/dev/null || fail "dds-server exited during start"
		sleep 0.2
	done
	fail "dds-server did not answer on its telemetry socket"
}

# The tap interface the server made goes into the namespace as the client's end.
tap_into_ns() {
	[ "${KIND:-af_packet}" = tap ] || return 0
	ip link set "$VB" netns "$NS" || fail "moving the tap into the namespace"
	ip -n "$NS" link set lo up
	ip -n "$NS" addr add "$CLIENT_IP/24" dev "$VB"
	ip -n "$NS" link set "$VB" up
}

# One counter from dds-ctl's JSON; $2 is the command and its parameter ("queue 0").
counter() {
	"$CTL" -p "$PREFIX" ${2:-counters} | /usr/bin/python3 -c \
		"import json,sys; d=json.load(sys.stdin); print(list(d.values())[0]['$1'])"
}

# SIGTERM, then the daemon must exit 0 within 10 s and print its counters.
server_stop() {
	kill -TERM "$SPID"
	for _ in $(seq 1 50); do
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$SPID" 2>/dev/null && fail "dds-server still running 10 s after SIGTERM"
	wait "$SPID"
	rc=$?
	SPID=
	[ "$rc" = 0 ] || fail "dds-server exited with $rc after SIGTERM"
	tail -1 "$WORK/server.out" | /usr/bin/python3 -c "import json,sys; json.load(sys.stdin)['counters']" ||
		fail "no counters flushed at stop"
}
