#!/bin/bash
# test_config.sh: dds-server --check-config on good and bad configs: every error names the key and the problem.
set -u
SERVER=$1 MODEL=$2
WORK=$(mktemp -d /tmp/dds-cfg-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
IFACE="\"interface\": {\"ip\": \"10.0.0.1\"}"
DEVS="\"devices\": [{\"id\": 1, \"key\": \"$KEY\"}]"
MODELS="\"models\": [{\"graph\": \"$MODEL\"}]"
GOOD="$IFACE, $DEVS, $MODELS"
failures=0

# expect <name> <config body> <text the error must contain> [extra flags...]
expect() {
	local name=$1 body=$2 want=$3
	shift 3
	printf '{%s}\n' "$body" > "$WORK/c.json"
	out=$("$SERVER" -- -c "$WORK/c.json" --check-config "$@" 2>&1)
	rc=$?
	if [ -z "$want" ]; then
		[ $rc = 0 ] || { echo "FAIL $name: rc $rc: $out"; failures=$((failures + 1)); }
	elif [ $rc = 0 ] || ! grep -qF -- "$want" <<< "$out"; then
		echo "FAIL $name: rc $rc, want '$want' in: $out"
		failures=$((failures + 1))
	else
		echo "ok $name: $out"
	fi
}

expect good "$GOOD" ""
expect flags "$GOOD" "" --set interface.mtu=9000 --udp-port 7000 --ip 10.1.1.1
expect json_syntax "$GOOD," "c.json:1:"
expect dup_key "$GOOD, $IFACE" "duplicate object key"
expect unknown_top "$GOOD, \"colour\": 1" "colour: unknown key"
expect unknown_sub "$GOOD, \"dataplane\": {\"bursts\": 3}" "dataplane.bursts: unknown key"
expect range "$GOOD, \"reassembly\": {\"timeout_ms\": 0}" "reassembly.timeout_ms: 0 is out of range"
expect type "$GOOD, \"dataplane\": {\"burst\": \"32\"}" "dataplane.burst: must be an integer"
expect bool "$DEVS, $MODELS, \"interface\": {\"ip\": \"10.0.0.1\", \"promiscuous\": 1}" "interface.promiscuous: must be true or false"
expect ip "$DEVS, $MODELS, \"interface\": {\"ip\": \"10.0.0.300\"}" "interface.ip: must be an IPv4 address"
expect no_ip "\"models\": [{\"graph\": \"$MODEL\"}]" "interface.ip: required"
expect key_hex "$IFACE, $MODELS, \"devices\": [{\"id\": 1, \"key\": \"zz\"}]" "devices[0].key: must be a string of 64 hex digits"
expect dup_dev "$IFACE, $MODELS, \"devices\": [{\"id\": 1, \"key\": \"$KEY\"}, {\"id\": 1, \"key\": \"$KEY\"}]" "devices[1].id: 1 is also devices[0]"
expect no_model "\"interface\": {\"ip\": \"10.0.0.1\"}" "models: at least one model"
expect model_path "$IFACE, $DEVS, \"models\": [{\"graph\": \"/nonexistent/m.json\"}]" "/nonexistent/m.json"
expect model_key "$IFACE, $DEVS, \"models\": [{\"graph\": \"$MODEL\", \"wieghts\": null}]" "models[0].wieghts: unknown key"
expect kernels "$GOOD, \"engine\": {\"kernels\": \"gpu\"}" "engine.kernels: must be \"fast\" or \"reference\""
expect backend "$GOOD, \"engine\": {\"backend\": \"tpu\"}" "engine.backend: must be \"auto\", \"cpu\" or \"cuda\""
expect backend_ok "$GOOD, \"engine\": {\"backend\": \"cpu\"}" ""
expect max_batch "$IFACE, $DEVS, \"models\": [{\"graph\": \"$MODEL\", \"max_batch\": 0}]" "models[0].max_batch: must be an integer in 1..256"
expect max_delay "$IFACE, $DEVS, \"models\": [{\"graph\": \"$MODEL\", \"max_delay_us\": -1}]" "models[0].max_delay_us: must be an integer in 0..1000000"
expect batch_ok "$IFACE, $DEVS, \"models\": [{\"graph\": \"$MODEL\", \"max_batch\": 16, \"max_delay_us\": 500}]" ""
M="\"graph\": \"$MODEL\", \"merge_at\""
expect merge_ok "$IFACE, $DEVS, \"models\": [{$M: [\"add\"]}]" ""
expect merge_ok2 "$IFACE, $DEVS, \"models\": [{$M: [\"conv2a\", \"conv2b\"]}]" ""
expect merge_type "$IFACE, $DEVS, \"models\": [{$M: \"add\"}]" "models[0].merge_at: must be an array of 1..16 layer names"
expect merge_empty "$IFACE, $DEVS, \"models\": [{$M: []}]" "models[0].merge_at: must be an array"
expect merge_name "$IFACE, $DEVS, \"models\": [{$M: [3]}]" "models[0].merge_at[0]: must be a layer name"
expect merge_unknown "$IFACE, $DEVS, \"models\": [{$M: [\"add\", \"addd\"]}]" "models[0].merge_at: model tiny_cnn has no layer 'addd'"
expect merge_not_cut "$IFACE, $DEVS, \"models\": [{$M: [\"conv2a\"]}]" "models[0].merge_at: tiny_cnn: tail: the output needs the raw input, which is not sent (the values sent are not a cut)"
expect merge_output "$IFACE, $DEVS, \"models\": [{$M: [\"fc\"]}]" "models[0].merge_at: tiny_cnn: tail: the output 'fc' is sent: nothing to run"
expect merge_twice "$IFACE, $DEVS, \"models\": [{$M: [\"add\", \"add\"]}]" "models[0].merge_at: tiny_cnn: tail: value 5 is sent twice"
expect merge_unread "$IFACE, $DEVS, \"models\": [{$M: [\"conv1\", \"add\"]}]" "models[0].merge_at: 'conv1' is not read by the layers after the cut"
expect sched_range "$GOOD, \"scheduler\": {\"max_groups\": 0}" "scheduler.max_groups: 0 is out of range"
expect sched_cross "$GOOD, \"scheduler\": {\"max_queued_total\": 4, \"max_queued_per_device\": 8}" "scheduler.max_queued_per_device: 8 is above scheduler.max_queued_total"
expect worker_prio "$GOOD, \"scheduler\": {\"worker_priority\": 100}" "scheduler.worker_priority: 100 is out of range"
expect worker_cpu "$GOOD, \"scheduler\": {\"worker_cpu\": 5000}" "scheduler.worker_cpu: 5000 is out of range"
expect sched_flag "$GOOD" "" --set scheduler.stop_grace_ms=0 --set engine.backend=auto
expect inline_cpu "$GOOD, \"scheduler\": {\"inline\": true, \"worker_cpu\": 0}" "scheduler.worker_cpu: no worker thread with scheduler.inline"
expect inline_prio "$GOOD" "scheduler.worker_priority: no worker thread with scheduler.inline" --set scheduler.inline=true --set scheduler.worker_priority=5
expect inline_ok "$GOOD, \"scheduler\": {\"inline\": true}" ""
expect cross "$GOOD, \"reassembly\": {\"max_requests\": 4, \"max_requests_per_device\": 8}" "reassembly.max_requests_per_device: 8 is above"
expect flag_key "$GOOD" "interface.mtux: unknown key" --set interface.mtux=1
expect flag_range "$GOOD" "interface.udp_port: 70000 is out of range" --udp-port 70000
expect flag_form "$GOOD" "want KEY=VALUE" --set interface.mtu
printf '{%s}\n' "$GOOD" > "$WORK/c.json"
"$SERVER" -- --check-config 2>&1 | grep -q "no config" || { echo "FAIL: missing -c not reported"; failures=$((failures + 1)); }
# The reference documents every key of the config table and every counter.
ROOT=${DDS_SOURCE_ROOT:-$(dirname "$0")/../..}
keys=$(sed -nE 's/^\s*\{"([a-z]+)", "([a-z_]+)",.*/\1.\2/p' "$ROOT/server/config.c")
ctrs=$(sed -nE 's/.*X\(([a-z0-9_]+), ".*/\1/p' "$ROOT/dataplane/dds_dataplane.h")
[ -n "$keys" ] && [ -n "$ctrs" ] || { echo "FAIL: could not list keys or counters"; failures=$((failures + 1)); }
for k in $keys $ctrs; do
	grep -qF "\`$k\`" "$ROOT/docs/server.md" || { echo "FAIL: $k is not in docs/server.md"; failures=$((failures + 1)); }
done
echo "documented: $(wc -w <<< "$keys") config keys, $(wc -w <<< "$ctrs") counters"
[ $failures = 0 ] && echo PASS
exit $((failures > 0))
