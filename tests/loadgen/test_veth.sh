#!/bin/bash
# test_veth.sh: dds-server on af_packet over a veth pair, dds-loadgen with 100 devices in a namespace; every request accounted, counters agree.
set -u
SERVER=$1 CTL=$2 LG=$3 MODEL=$4 MODEL2=$5
DURATION=${LG_TEST_SECONDS:-10}
# The veth pair, namespace, cleanup, counter() and server_stop() of the dataplane tests, with
# this test's own names (the library's functions read these variables when called).
. "$(dirname "$0")/../dataplane/lib_veth.sh"
NS=lgns$TAG VA=lga$TAG VB=lgb$TAG PREFIX=ddslg$TAG
SERVER_IP=10.99.7.1 CLIENT_IP=10.99.7.2
. "$(dirname "$0")/lib_lg.sh" # fail (with the loadgen's stderr), jget, lg_config

veth_setup

# 100 devices, each with its own key; the loadgen reads them from this same file.
lg_config 100 1000 lg "[{\"graph\": \"$(realpath "$MODEL")\", \"seed\": 1}, {\"graph\": \"$(realpath "$MODEL2")\", \"seed\": 1}]" \
	'{"reassembly": {"timeout_ms": 2000}}'
START_S=30 server_run "$WORK/node.json"

# 99 devices on the tiny model at 1 request/s each, 1 on the zoo model at 0.3/s (a ResNet34
# request is 602 KB, 436 fragments, and blocks the CPU server's only lcore for about a second
# in a sanitizer build); slow devices with fast links, so that they offload.
CMD=("$LG" --config "$WORK/node.json" --devices 100 --models "$MODEL,$MODEL2" --mix 99,1
     --rate 1,0.3 --arrival poisson --duration "$DURATION" --warmup 1 --timeout-ms 10000
     --flops 1e6:1e7 --uplink-mbps 100:1000 --seed 3 --json "$WORK/lg.json" --pcap "$WORK/lg.pcap")
echo "ip netns exec $NS ${CMD[*]}"
ip netns exec "$NS" "${CMD[@]}" > "$WORK/lg.out" 2> "$WORK/lg.err" || { cat "$WORK/lg.out"; fail "dds-loadgen failed"; }
cat "$WORK/lg.out"
tail -3 "$WORK/lg.err"

J=$WORK/lg.json
T="['totals_with_warmup']"
sent=$(jget "$J" "$T['sent']") answered=$(jget "$J" "$T['answered']")
errors=$(jget "$J" "$T['errors']") busy=$(jget "$J" "$T['busy']") lost=$(jget "$J" "$T['lost']")
late=$(jget "$J" "$T['late']") dgrams=$(jget "$J" "$T['datagrams']")
[ "$sent" = $((answered + errors + busy + lost)) ] ||
	fail "sent $sent != answered $answered + errors $errors + busy $busy + lost $lost"
[ "$sent" -gt 500 ] || fail "only $sent requests sent by 100 devices at 1/s for $DURATION s"
# Losses are possible (the af_packet ring overflows while the CPU server runs a ResNet34 tail
# on its only lcore), but must stay a small part; each one is accounted above.
[ $((lost * 10)) -le "$sent" ] || fail "$lost of $sent requests lost with a 10 s timeout"
[ "$errors" = 0 ] || fail "$errors requests refused"
for k in 0 1; do
	a=$(jget "$J" "['models'][$k]['counts']['answered']")
	[ "$a" -gt 0 ] || fail "model $k: no request answered"
	[ "$(jget "$J" "len(d['models'][$k]['splits'])")" -gt 0 ] || fail "model $k: no split counted"
	[ "$(jget "$J" "len(d['models'][$k]['cdf_ms'])")" -gt 0 ] || fail "model $k: no CDF"
done
[ "$(jget "$J" "len(d['price_timeline'])")" -gt 0 ] || fail "no price received"
[ "$(jget "$J" "['io']")" = kernel ] || fail "the report's io is $(jget "$J" "['io']"), not kernel"

served=$(counter req_served) refused=$(counter req_refused) regs=$(counter tx_register_reply)
echo "server: served $served, refused $refused, register replies $regs; loadgen: sent $sent, answered $answered, late $late"
[ "$served" = $((answered + late)) ] || fail "server served $served, loadgen got $answered answers + $late late"
[ "$refused" = "$errors" ] || fail "server refused $refused, loadgen counted $errors errors"
[ "$regs" -ge 100 ] || fail "$regs REGISTER_REPLYs for 100 devices"

# Closed loop on the same server (a second run: its request ids must not look like replays).
CMD2=("$LG" --config "$WORK/node.json" --models "$MODEL" --closed --think-ms 50 --duration 3
      --timeout-ms 10000 --flops 1e6:1e7 --uplink-mbps 100:1000 --quiet --json "$WORK/lg2.json")
echo "ip netns exec $NS ${CMD2[*]}"
ip netns exec "$NS" "${CMD2[@]}" > "$WORK/lg2.out" 2> "$WORK/lg.err" || { cat "$WORK/lg2.out"; fail "closed-loop dds-loadgen failed"; }
head -6 "$WORK/lg2.out"
J2=$WORK/lg2.json
sent2=$(jget "$J2" "$T['sent']") answered2=$(jget "$J2" "$T['answered']") late2=$(jget "$J2" "$T['late']")
[ "$sent2" = "$((answered2 + $(jget "$J2" "$T['errors']") + $(jget "$J2" "$T['busy']") + $(jget "$J2" "$T['lost']")))" ] ||
	fail "closed loop: requests not accounted"
[ "$sent2" -gt 300 ] || fail "closed loop: only $sent2 requests from 100 devices in 3 s"
served=$(counter req_served)
[ "$served" = $((answered + late + answered2 + late2)) ] ||
	fail "server served $served in both runs, loadgen got $answered + $late, $answered2 + $late2"

# The capture of the run holds every datagram the loadgen sent.
frames=$(/usr/bin/python3 - "$WORK/lg.pcap" <<'EOP'
import struct, sys
f = open(sys.argv[1], "rb"); f.read(24); n = 0
while True:
    h = f.read(16)
    if len(h) < 16: break
    f.seek(struct.unpack("<IIII", h)[2], 1); n += 1
print(n)
EOP
)
[ "$frames" = "$dgrams" ] || fail "pcap has $frames frames, the loadgen sent $dgrams datagrams"

# A --pcap-only capture replayed with tcpreplay into the same server: every request served.
if command -v tcpreplay > /dev/null; then
	"$LG" --pcap-only --pcap "$WORK/replay.pcap" --config "$WORK/node.json" --models "$MODEL" \
		--requests 5 --rate 1 --flops 1e6:1e7 --uplink-mbps 100:1000 --json "$WORK/lg3.json" \
		--server "$SERVER_IP:9000" --src-ip "$CLIENT_IP" > "$WORK/lg3.out" 2>&1 ||
		{ cat "$WORK/lg3.out"; fail "dds-loadgen --pcap-only"; }
	sent3=$(jget "$WORK/lg3.json" "$T['sent']")
	before=$(counter req_served)
	ip netns exec "$NS" tcpreplay -q -i "$VB" --multiplier 4 "$WORK/replay.pcap" > "$WORK/tcpreplay.out" 2>&1 ||
		{ cat "$WORK/tcpreplay.out"; fail "tcpreplay"; }
	sleep 1
	after=$(counter req_served)
	echo "tcpreplay of a --pcap-only capture: $sent3 requests in it, the server served $((after - before))"
	[ $((after - before)) = "$sent3" ] || fail "replayed $sent3 requests, the server served $((after - before))"
	# The same capture again: every datagram is a replay now, dropped after its MAC.
	replays=$(counter replay proto)
	replay_pass() {
		ip netns exec "$NS" tcpreplay -q -i "$VB" --multiplier 4 "$WORK/replay.pcap" > "$WORK/tcpreplay.out" 2>&1 ||
			{ cat "$WORK/tcpreplay.out"; fail "tcpreplay"; }
		sleep 1
	}
	replay_pass
	[ "$(counter req_served)" = "$after" ] || fail "a second pass of the capture was served"
	[ $(($(counter replay proto) - replays)) -ge "$sent3" ] || fail "a second pass: fewer replay drops than requests"
	[ "$(counter accept_replays state)" = false ] || fail "accept_replays is on by default"
	# A load-test node (reassembly.accept_replays) serves a looped capture on every pass.
	server_stop
	/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c.setdefault("reassembly", {})["accept_replays"] = True; json.dump(c, open(sys.argv[2], "w"))' \
		"$WORK/node.json" "$WORK/node_loadtest.json" || fail "writing the load-test config"
	START_S=30 server_run "$WORK/node_loadtest.json"
	[ "$(counter accept_replays state)" = true ] || fail "dds-ctl state: accept_replays is not true"
	grep -q "WARNING: reassembly.accept_replays is on" "$WORK/server.err" || fail "no start warning for accept_replays"
	replay_pass
	replay_pass
	echo "accept_replays: two passes of the capture, the server served $(counter req_served)"
	[ "$(counter req_served)" = $((2 * sent3)) ] || fail "accept_replays: served $(counter req_served), want $((2 * sent3))"
	[ "$(counter replay proto)" = 0 ] || fail "accept_replays: replay drops counted"
else
	echo "tcpreplay not installed: replay check skipped"
fi

server_stop
echo PASS
