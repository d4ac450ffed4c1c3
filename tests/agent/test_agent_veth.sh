#!/bin/bash
# test_agent_veth.sh: dds-agent against a real dds-server (af_packet over a veth pair, agent in a namespace): calibration saved and reused, results bit-exact, 20% loss retried, SIGINT, the uplink estimator's probes; the aarch64 agent under qemu too when DDS_AARCH64_AGENT names it.
# usage: test_agent_veth.sh DDS_SERVER DDS_CTL DDS_AGENT MODEL.json
set -u
SERVER=$1 CTL=$2 AGENT=$3 MODEL=$(realpath "$4")
# The dataplane tests' veth helpers (veth_setup, fail, counter, server_stop, cleanup on exit),
# with this test's own names.
. "$(dirname "$0")/../dataplane/lib_veth.sh"
NS=agtns$TAG VA=agta$TAG VB=agtb$TAG PREFIX=agt$TAG
RPID=
trap '[ -n "$RPID" ] && kill "$RPID" 2>/dev/null; veth_cleanup' EXIT
PY=/usr/bin/python3

# dds-server with the agent's keys (devices 1: native, 2: aarch64), a base price at which the
# budgets buy r = x / p of a few MFLOP/s (where tiny_cnn's interior splits are optimal), a
# short reassembly timeout (lost fragments), and the CPU backend with the agent's kernels and
# thread count (so that results are bit-exact even on a GPU machine).
agent_server_start() {
	$PY "$NODE_CONFIG" --prefix "$PREFIX" --vdev "$VDEV" --ip "$SERVER_IP" \
		--verify-udp-checksum "$VERIFY" --devices 2 --keys "fixed:$KEY" --model "$MODEL,seed=1" \
		--set '{"reassembly": {"timeout_ms": 200}, "engine": {"backend": "cpu", "kernels": "fast", "threads": 1},
		        "pricing": {"base_price": 1e-9, "round_ms": 50}}' -o "$WORK/cfg.json" ||
		fail "node_config.py could not write the config"
	server_run "$WORK/cfg.json"
}

# A field of the summary line of a --json run's output file.
summary() {
	$PY -c "import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if 'summary' in d: print(d['summary'][sys.argv[2]])" "$1" "$2"
}

# Every request line of a --json run: outcome result, verify in the allowed set, retries <= $3.
check_lines() {
	$PY - "$1" "$2" "$3" <<'EOP' || fail "request lines of $1"
import json, sys
path, allowed, max_retries = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3])
reqs = [d for d in map(json.loads, open(path)) if 'request' in d]
bad = [d for d in reqs if d['outcome'] != 'result' or d['verify'] not in allowed
       or d['retries'] > max_retries]
splits = sorted(set((d['piece'], d['local_layers'], tuple(d['values'])) for d in reqs))
print(f"  {len(reqs)} requests, splits (piece, local layers, values) used: {splits}")
if reqs:
    lat = sorted(d['latency_s'] for d in reqs)
    print(f"  latency median {lat[len(lat) // 2] * 1e3:.3f} ms (expected {reqs[-1]['expected_s'] * 1e3:.3f}"
          f" ms at the end), budget x {reqs[0]['x']:.3g} -> {reqs[-1]['x']:.3g}")
sys.exit(1 if bad or not reqs else 0)
EOP
}

# 20% loss: netem on the device's end of the veth where the kernel has it; else (this build
# VM's kernel has no sch_netem) a relay in the namespace that drops 20% of datagrams both ways.
# Sets TARGET, the address the agent sends to.
loss_start() {
	if ip netns exec "$NS" tc qdisc add dev "$VB" root netem loss 20% 2> /dev/null; then
		LOSS=netem TARGET=$SERVER_IP:9000
		echo "  loss: tc netem loss 20% on $VB"
		return
	fi
	LOSS=relay TARGET=127.0.0.1:9100
	ip netns exec "$NS" $PY "$(dirname "$0")/lossy_relay.py" 127.0.0.1 9100 "$SERVER_IP" 9000 \
		0.2 "$WORK/relay.stats" &
	RPID=$!
	sleep 0.5
	echo "  loss: no sch_netem in this kernel; lossy_relay.py drops 20% both ways"
}

loss_stop() {
	if [ "$LOSS" = netem ]; then
		ip netns exec "$NS" tc qdisc del dev "$VB" root
		return
	fi
	kill -TERM "$RPID"
	wait "$RPID"
	RPID=
	echo "  relay: $(cat "$WORK/relay.stats")"
}

# The scenario for one agent binary ("$@" = how to run it, e.g. qemu-aarch64 ... dds-agent).
# $DEV: the device id; $VERIFY_OK: accepted verify outcomes.
scenario() {
	local name=$1 out
	shift
	out=$WORK/$name
	echo "== $name: 20 requests, --verify, momentum rule"
	ip netns exec "$NS" "$@" --server "$SERVER_IP:9000" --device-id "$DEV" --key "$KEY" \
		--model "$MODEL" --calibration "$WORK/cal.txt" --requests 20 --verify --json \
		--uplink-mbps 10 \
		> "$out.clean" 2> "$out.clean.err"
	rc=$?
	[ "$rc" = 0 ] || { cat "$out.clean.err"; tail -3 "$out.clean"; fail "$name: exit $rc"; }
	grep -q "calibration: reused" "$out.clean.err" || fail "$name: calibration not reused"
	grep "registered:" "$out.clean.err"
	check_lines "$out.clean" "$VERIFY_OK" 0
	[ "$(summary "$out.clean" served)" = 20 ] || fail "$name: not 20 results"

	echo "== $name: 20% loss, exact rule"
	loss_start
	ip netns exec "$NS" "$@" --server "$TARGET" --device-id "$DEV" --key "$KEY" \
		--model "$MODEL" --calibration "$WORK/cal.txt" --requests 20 --verify --json \
		--uplink-mbps 10 --rule exact \
		--timeout-ms 300 --retries 30 > "$out.loss" 2> "$out.loss.err"
	rc=$?
	loss_stop
	[ "$rc" = 0 ] || { cat "$out.loss.err"; tail -3 "$out.loss"; fail "$name: exit $rc under loss"; }
	check_lines "$out.loss" "$VERIFY_OK" 30
	retries=$(summary "$out.loss" retries)
	echo "  served $(summary "$out.loss" served), retries $retries, lost $(summary "$out.loss" lost)"
	[ "$(summary "$out.loss" served)" = 20 ] || fail "$name: not 20 results under loss"
	[ "$retries" -gt 0 ] || fail "$name: 20% loss and no retry"

	echo "== $name: SIGINT mid-run, uplink estimated"
	ip netns exec "$NS" "$@" --server "$SERVER_IP:9000" --device-id "$DEV" --key "$KEY" \
		--model "$MODEL" --calibration "$WORK/cal.txt" --requests 0 --interval-ms 20 \
		> "$out.int" 2> "$out.int.err" &
	local apid=$!
	for _ in $(seq 1 150); do
		grep -q "^req 3:" "$out.int" && break
		sleep 0.2
	done
	kill -INT "$apid"
	wait "$apid"
	rc=$?
	[ "$rc" = 0 ] || { cat "$out.int.err"; fail "$name: exit $rc after SIGINT"; }
	grep "^summary:" "$out.int" | grep -q '"stopped_by_signal": true' ||
		fail "$name: no summary after SIGINT"
	echo "  $(grep -c '^req' "$out.int") requests before SIGINT, exit 0, summary printed"
}

# The estimator, without --uplink-mbps: a slow phase (lossy_relay.py holds each uplink datagram
# 300 ms) drags the estimate down until the device decides all-local; then the link is fast
# again (SIGUSR1). With --probe-every 0 an all-local device sends nothing, so it never learns
# that and stays local; with --probe-every 3 a probe (decided at the optimistic start estimate)
# measures the fast link and the device offloads again. $1: --probe-every; $2: the outcomes
# wanted after the slow phase ("local" or "result").
slow_phase_run() {
	local every=$1 want=$2 out=$WORK/probe$1 apid
	ip netns exec "$NS" $PY "$(dirname "$0")/lossy_relay.py" 127.0.0.1 9100 "$SERVER_IP" 9000 \
		0 "$WORK/relay.stats" 300 &
	RPID=$!
	sleep 0.5
	ip netns exec "$NS" "$AGENT" --server 127.0.0.1:9100 --device-id 1 --key "$KEY" \
		--model "$MODEL" --calibration "$WORK/cal.txt" --requests 0 --json --verify \
		--uplink-start-mbps 0.1 --probe-every "$every" --rule exact --timeout-ms 2000 \
		> "$out" 2> "$out.err" &
	apid=$!
	for _ in $(seq 1 300); do grep -q '"outcome": "local"' "$out" && break; sleep 0.1; done
	kill -USR1 "$RPID"
	local n0=$(grep -c '"request"' "$out")
	for _ in $(seq 1 300); do
		[ "$(grep -c '"request"' "$out")" -ge $((n0 + 12)) ] && break
		sleep 0.1
	done
	kill -INT "$apid"
	wait "$apid" || { cat "$out.err"; fail "slow phase, --probe-every $every: agent exit $?"; }
	kill -TERM "$RPID"
	wait "$RPID"
	RPID=
	$PY - "$out" "$n0" "$want" "$every" <<'EOP' || fail "slow phase, --probe-every $every: outcomes"
import json, sys
path, n0, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
reqs = [d for d in map(json.loads, open(path)) if 'request' in d]
if reqs and reqs[-1]['outcome'] == 'abandoned':  # in flight at SIGINT
    reqs.pop()
print('  ' + ' '.join(d['outcome'][0] + ('p' if d['probe'] else '') for d in reqs)
      + '  (r result, l local, p probe)')
bad = [d for d in reqs if d['outcome'] not in ('result', 'local')
       or d['outcome'] == 'result' and d['verify'] != 'exact']
first_local = min(i for i, d in enumerate(reqs) if d['outcome'] == 'local')
after = reqs[n0:]  # decided once the slow phase was over, but for the one in flight
if want == 'local':
    ok = len(after) >= 10 and all(d['outcome'] == 'local' and not d['probe'] for d in after[2:])
else:  # a probe offloads again (the first may still have met the slow link: locals are
      # instant, so a few may be decided before the relay saw SIGUSR1), so does all after it
    every = int(sys.argv[4])
    p = max((i for i, d in enumerate(after) if d['probe']), default=len(after))
    ok = (p <= 2 * (every + 1) + 1 and len(after) - p >= 8
          and all(d['outcome'] == 'result' for d in after[p:]))
sys.exit(0 if ok and not bad and reqs[0]['outcome'] == 'result' and first_local > 0 else 1)
EOP
	echo "  --probe-every $every: after the slow phase all $want; probes $(summary "$out" probes)"
}

veth_setup
agent_server_start

"$AGENT" --server 10.0.0.1 > /dev/null 2>&1; [ $? = 2 ] || fail "usage error not exit 2"
"$AGENT" --server 10.0.0.1 --device-id 1 --key "$KEY" --model /nonexistent.json \
	> /dev/null 2>&1; [ $? = 3 ] || fail "missing model not exit 3"

# Calibration: measured and saved. Then a device whose first two layers are fast and the rest
# slow (10 ms each), under the same model hash: the split after the pool (2 KiB instead of the
# 3 KiB input) is then optimal, so the node runs tails of heads computed here.
echo "== calibration"
ip netns exec "$NS" "$AGENT" --server "$SERVER_IP" --device-id 1 --key "$KEY" --model "$MODEL" \
	--calibration "$WORK/cal.raw" --requests 1 > "$WORK/cal.out" 2> "$WORK/cal.err" ||
	{ cat "$WORK/cal.err"; fail "calibration run"; }
grep "calibration:" "$WORK/cal.err"
grep -q "calibration: measured.*saved to" "$WORK/cal.err" || fail "calibration not saved"
awk '/^#/ {print; next} {printf "%s %s\n", $1, ++n <= 2 ? "1e-6" : "1e-2"}' "$WORK/cal.raw" \
	> "$WORK/cal.txt"

DEV=1 VERIFY_OK=exact scenario native "$AGENT"
echo "== native: uplink estimator: slow phase, then fast again"
slow_phase_run 0 local
slow_phase_run 3 result
served=$(counter req_served)
echo "server: served $served requests so far"

if [ -n "${DDS_AARCH64_AGENT:-}" ]; then
	file "$DDS_AARCH64_AGENT" | grep -q aarch64 || fail "$DDS_AARCH64_AGENT is not an aarch64 binary"
	# Other kernels (aarch64 OpenBLAS, fused multiply-add) give other bits: within the engine's
	# accuracy ("close") is what a cross-architecture split can promise.
	OPENBLAS_NUM_THREADS=1 DEV=2 VERIFY_OK=exact,close scenario aarch64 \
		qemu-aarch64 -L /usr/aarch64-linux-gnu "$DDS_AARCH64_AGENT" --threads 1
	echo "aarch64 verify: exact $(summary "$WORK/aarch64.clean" verify_exact)," \
		"close $(summary "$WORK/aarch64.clean" verify_close)"
else
	echo "aarch64 part skipped: DDS_AARCH64_AGENT is not set"
fi
server_stop
echo "PASS"
