#!/bin/bash
# test_veth_busy.sh: dds-loadgen against a real dds-server whose scheduler queues are tiny, so that it answers BUSY; retries and every count checked against dds-ctl.
set -u
SERVER=$1 CTL=$2 LG=$3 MODEL=$4
DURATION=${LG_TEST_SECONDS:-4}
# The veth pair, namespace, cleanup, counter() and server_stop() of the dataplane tests, with
# this test's own names (the library's functions read these variables when called).
. "$(dirname "$0")/../dataplane/lib_veth.sh"
NS=lbns$TAG VA=lba$TAG VB=lbb$TAG PREFIX=ddslb$TAG
SERVER_IP=10.99.8.1 CLIENT_IP=10.99.8.2
. "$(dirname "$0")/lib_lg.sh" # fail (with the loadgen's stderr), jget, lg_config
# sched KEY: one member of dds-ctl sched's JSON
sched() { "$CTL" -p "$PREFIX" sched | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['/dds/sched']['$1'])"; }

veth_setup

# 10 devices; at most 1 request queued per device and 2 in all, and each partial batch waits
# 10 ms for more requests (about 2 requests per 10 ms served), so 10 devices at 30 requests/s
# each overflow the queues often; retries are answered as often as not.
lg_config 10 2000 lb "[{\"graph\": \"$(realpath "$MODEL")\", \"seed\": 1, \"max_delay_us\": 10000}]" \
	'{"engine": {"backend": "cpu"}, "scheduler": {"max_queued_per_device": 1, "max_queued_total": 2, "busy_retry_ms": 5}}'
START_S=30 server_run "$WORK/node.json"

# Slow devices with fast links (they offload); 2 retries per request, then it counts busy.
CMD=("$LG" --config "$WORK/node.json" --devices 10 --models "$MODEL" --rate 30 --arrival poisson
     --duration "$DURATION" --warmup 0 --timeout-ms 10000 --busy-retries 2
     --flops 1e6:1e7 --uplink-mbps 100:1000 --seed 5 --quiet --json "$WORK/lg.json")
echo "ip netns exec $NS ${CMD[*]}"
ip netns exec "$NS" "${CMD[@]}" > "$WORK/lg.out" 2> "$WORK/lg.err" || { cat "$WORK/lg.out"; fail "dds-loadgen failed"; }
head -8 "$WORK/lg.out"

J=$WORK/lg.json
T="['totals_with_warmup']"
for k in sent answered errors busy lost busy_replies retries late; do
	eval "$k=\$(jget \"\$J\" \"\$T['$k']\")"
done
req_busy=$(counter req_busy) tx_busy=$(counter tx_busy) served=$(counter req_served)
refused=$(counter req_refused) complete=$(counter req_complete) txfull=$(counter drop_tx_full)
bdev=$(sched enqueue_busy_device) btot=$(sched enqueue_busy_total) ring=$(sched ring_full)
echo "loadgen: sent $sent = answered $answered + errors $errors + busy $busy + lost $lost;" \
	"busy replies $busy_replies, retries $retries, late $late"
echo "server: req_complete $complete, req_served $served, req_refused $refused, req_busy $req_busy," \
	"tx_busy $tx_busy, drop_tx_full $txfull; sched busy_device $bdev, busy_total $btot, ring_full $ring"

[ "$sent" = $((answered + errors + busy + lost)) ] ||
	fail "sent $sent != answered $answered + errors $errors + busy $busy + lost $lost"
[ "$sent" -gt 200 ] || fail "only $sent requests sent by 10 devices at 30/s for $DURATION s"
[ "$answered" -gt 0 ] || fail "no request answered"
[ "$errors" = 0 ] && [ "$lost" = 0 ] || fail "$errors errors, $lost lost on a quiet veth"
# The server answered BUSY, and each BUSY is one scheduler verdict or a full ring.
[ "$req_busy" -gt 0 ] || fail "the server sent no BUSY"
[ "$req_busy" = $((bdev + btot + ring)) ] || fail "req_busy $req_busy != busy_device $bdev + busy_total $btot + ring_full $ring"
[ "$tx_busy" = "$req_busy" ] && [ "$txfull" = 0 ] || fail "tx_busy $tx_busy, req_busy $req_busy, drop_tx_full $txfull"
# Every BUSY sent reached the loadgen (none late: nothing was lost), and each is either a retry
# or a request's last try (--busy-retries 2: a request counted busy got 3 BUSYs).
[ "$busy_replies" = "$tx_busy" ] || fail "loadgen busy replies $busy_replies != server tx_busy $tx_busy"
[ "$busy_replies" = $((retries + busy)) ] || fail "busy replies $busy_replies != retries $retries + gave up $busy"
[ "$retries" -gt 0 ] && [ "$busy_replies" -gt "$busy" ] || fail "no retry after BUSY"
# Every datagram request (first tries and retries) reached the server and got one answer.
[ "$complete" = $((sent + retries)) ] || fail "req_complete $complete != sent $sent + retries $retries"
[ "$complete" = $((served + refused + req_busy)) ] || fail "req_complete $complete != served + refused + busy"
[ "$served" = $((answered + late)) ] || fail "server served $served, loadgen got $answered answers + $late late"
[ "$refused" = "$errors" ] || fail "server refused $refused, loadgen counted $errors errors"

server_stop
echo PASS
