#!/bin/bash
# test_serve.sh: dds-server's serving rules over a veth: RESULT fragments sized by the device's rx_mtu, BUSY under a flood while another device is served, and what a stop answers.
# usage: test_serve.sh SERVER CTL CLIENT MODEL MODEL2 [thread|inline]: the worker on its own
# thread (the default), or run to completion on the rx lcore (scheduler.inline).
set -u
SERVER=$1 CTL=$2 CLIENT=$3 MODEL=$4 MODEL2=$5 KIND=af_packet MODE=${6:-thread}
. "$(dirname "$0")/lib_veth.sh"
veth_setup

echo "worker mode: $MODE"
# The config's scheduler section with keys $1, and "inline": true in inline mode.
sched() {
	local k=$1
	[ "$MODE" = inline ] && k="${k:+$k, }\"inline\": true"
	echo "\"scheduler\": {$k}"
}
client() { ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --key "$KEY" "$@"; }
proto_at_stop() { # a protocol counter from the JSON the daemon printed when it stopped
	tail -1 "$WORK/server.out" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1']['$2'])"
}

# 1. rx_mtu: a device that registers with rx_mtu 600 gets RESULTs in datagrams of at most 600
# bytes of IP (the client checks each); the number of fragments follows from the protocol's
# sizes (header 32, MAC 16, tensor message 20, one descriptor 20, 8-byte aligned chunks).
server_start "$(sched '')"
client --model "$MODEL2" --device 2 --reps 1 --mtu 600 > "$WORK/mtu.out" 2>&1 ||
	{ cat "$WORK/mtu.out"; fail "rx_mtu client"; }
cat "$WORK/mtu.out"
want=$(/usr/bin/python3 -c "
import json, math
out = json.load(open('$WORK/mtu.out'))
chunk = (600 - 28 - 32 - 16 - 20 - 20) // 8 * 8
print(out['requests'] * math.ceil(out['result_bytes'] / chunk))")
frags=$(counter tx_result_frag)
echo "rx_mtu 600: $frags RESULT fragments, want $want"
[ "$frags" = "$want" ] || fail "tx_result_frag $frags, want $want at rx_mtu 600"
server_stop

# In inline mode the rx lcore computes: a second rx queue (three lcores: the main one and two
# rx lcores, mapped onto CPUs 0 and 1) is refused at start.
if [ "$MODE" = inline ]; then
	LCORE_FLAG=--lcores LCORES='0@0,1@0,2@1' server_config "$(sched '')"
	out=$(timeout 60 "$SERVER" -- -c "$WORK/cfg.json" 2>&1) && fail "inline with two rx queues started"
	grep -qF "scheduler.inline: needs exactly one rx queue" <<< "$out" ||
		fail "inline with two rx queues: $out"
	echo "inline with two rx queues refused: $(grep -F scheduler.inline <<< "$out")"
fi

# 2. With room for one (model, split) group, the first split is served and a request of any
# other split is refused with ERROR exec_failed (the client reports those as failures).
server_start "$(sched '"max_groups": 1')"
client --model "$MODEL" --device 1 --reps 1 > "$WORK/groups.out" 2>&1
ef=$(counter exec_failed proto)
echo "max_groups 1: served $(counter req_served), exec_failed $ef; client: $(grep -c 'want RESULT' "$WORK/groups.out") refusals seen"
[ "$(counter req_served)" = 1 ] || fail "req_served with one group"
n_splits=$(/usr/bin/python3 -c "import json; print(len(json.load(open('$MODEL'))['layers']))")
[ "$ef" = $((n_splits - 1)) ] || fail "exec_failed $ef, want $((n_splits - 1))"
[ "$(grep -c 'reason 26' "$WORK/groups.out")" = "$ef" ] || fail "the client did not get ERROR exec_failed"
server_stop

# 3. BUSY: with 2 queued requests per device and 100 ms batching delays, a device flooding 40
# requests gets BUSY for most and exact RESULTs for the rest, while device 2, one request at a
# time, is served throughout.
MODEL_OPTS='"max_delay_us": 100000'
server_start "$(sched '"max_queued_per_device": 2, "max_queued_total": 4')"
client --model "$MODEL" --device 1 --flood 40 > "$WORK/flood.out" 2>&1 &
FPID=$!
client --model "$MODEL" --device 2 --reps 1 > "$WORK/steady.out" 2>&1 ||
	{ cat "$WORK/steady.out"; fail "device 2 not served during the flood"; }
wait "$FPID" || { cat "$WORK/flood.out"; fail "flood client"; }
cat "$WORK/flood.out" "$WORK/steady.out"
busy=$(counter req_busy)
read -r bd wmode <<< "$("$CTL" -p "$PREFIX" sched | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin)['/dds/sched']; print(s['enqueue_busy_device'], s['worker'])")"
[ "$wmode" = "$MODE" ] || fail "dds-ctl sched says worker $wmode, want $MODE"
echo "server: req_busy $busy, scheduler busy_device verdicts $bd"
[ "$busy" -ge 1 ] && [ "$busy" = "$bd" ] || fail "req_busy $busy, busy_device $bd"
server_stop

# 4. Stop: SIGTERM while a whole request waits 300 ms for its batch and another is partial: the
# whole one is still computed and answered (within the 2 s grace), the partial one refused with
# ERROR shutting_down; the counters at stop say so.
MODEL_OPTS='"max_delay_us": 300000'
stop_probe() { # $1: extra client flags; $2: extra config
	server_start "$2"
	client --model "$MODEL" --device 1 --stop-probe $1 > "$WORK/probe.out" 2>&1 &
	PPID_=$!
	for _ in $(seq 1 50); do grep -q ready "$WORK/probe.out" && break; sleep 0.1; done
	grep -q ready "$WORK/probe.out" || fail "stop probe did not start"
	server_stop
	wait "$PPID_" || { cat "$WORK/probe.out"; fail "stop probe: $1"; }
	tail -1 "$WORK/probe.out"
}
stop_probe "" "$(sched '"stop_grace_ms": 2000')"
[ "$(proto_at_stop proto shutting_down)" = 1 ] || fail "shutting_down at stop, want 1"
[ "$(proto_at_stop counters drop_stop_partial)" = 1 ] || fail "drop_stop_partial, want 1"
[ "$(proto_at_stop counters req_served)" = 1 ] || fail "req_served at stop, want 1"
# With no grace the queued request is refused too.
MODEL_OPTS='"max_delay_us": 1000000'
stop_probe --stop-refuses "$(sched '"stop_grace_ms": 0')"
[ "$(proto_at_stop proto shutting_down)" = 2 ] || fail "shutting_down at stop, want 2"
[ "$(proto_at_stop sched refused_stop)" = 1 ] || fail "the worker refused_stop, want 1"
echo "PASS"
