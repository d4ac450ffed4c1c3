# lib_lg.sh: what the loadgen's veth tests share on top of tests/dataplane/lib_veth.sh: fail() that
# also shows the loadgen's stderr, jget() over its JSON report, and the node.json both read. Sourced after lib_veth.sh.
# shellcheck shell=bash
fail() {
	echo "FAIL: $*"
	echo "--- server stderr:"; tail -20 "$WORK/server.err" 2>/dev/null
	echo "--- loadgen stderr:"; tail -20 "$WORK/lg.err" 2>/dev/null
	exit 1
}
# jget FILE EXPR: a Python expression over the JSON report d (a path like "['a']['b']" is d's)
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=sys.argv[2]; print(eval(e if e[0] != "[" else "d" + e))' "$1" "$2"; }

# lg_config N ID0 SEED MODEL_JSON EXTRA_JSON: $WORK/node.json for dds-server on $VDEV (one lcore)
# with devices ID0 .. ID0+N-1, each its own key (BLAKE2b of SEED and its index), the models
# MODEL_JSON (a JSON list of models[] entries) and the top-level sections EXTRA_JSON (a JSON
# object) deep-merged over the defaults. The loadgen reads the same file. deploy/node_config.py
# writes it (lib_veth.sh's $NODE_CONFIG).
lg_config() {
	local models=() m list
	list=$(/usr/bin/python3 -c 'import json,sys; [print(json.dumps(m)) for m in json.loads(sys.argv[1])]' \
		"$4") || fail "lg_config: MODEL_JSON is not a JSON list: $4"
	while read -r m; do models+=(--model "$m"); done <<< "$list"
	/usr/bin/python3 "$NODE_CONFIG" --prefix "$PREFIX" --vdev "$VDEV,framecnt=4096" --ip "$SERVER_IP" \
		--verify-udp-checksum "$VERIFY" --devices "$1" --first-id "$2" --keys "derived:$3" "${models[@]}" \
		--set '{"pricing": {"base_price": 1e-12, "round_ms": 100}}' --set "$5" -o "$WORK/node.json" ||
		fail "node_config.py could not write the config"
}
