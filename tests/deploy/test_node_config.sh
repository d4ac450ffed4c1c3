#!/bin/bash
# test_node_config.sh: deploy/node_config.py: bad flags exit 2 naming the problem and write nothing; its configs pass dds-server --check-config and dds-loadgen, every key it writes is in docs/server.md, keys match b2sum, --set merges as jq does.
# usage: test_node_config.sh NODE_CONFIG.py DDS_SERVER DDS_LOADGEN SERVER.md MODEL.json MODEL2.json
set -u
TOOL=$1 SERVER=$2 LG=$3 DOC=$4 MODEL=$(realpath "$5") MODEL2=$(realpath "$6")
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/dds-node-config.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
BASE=(--ip 10.0.0.1 --prefix cfgt --vdev net_null0 --model "$MODEL")
failures=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
jv() { $PY -c 'import json,sys; print(json.dumps(eval(sys.argv[2], {"c": json.load(open(sys.argv[1]))})))' "$@"; }

# refuse NAME TEXT FLAGS...: exit 2, TEXT in the message, no output file left behind
refuse() {
	local name=$1 want=$2 out rc
	shift 2
	rm -f "$WORK/bad.json"
	out=$($PY "$TOOL" "$@" -o "$WORK/bad.json" 2>&1)
	rc=$?
	if [ $rc != 2 ] || ! grep -qF -- "$want" <<< "$out"; then
		bad "$name: rc $rc, want 2 and '$want' in: $out"
	elif [ -e "$WORK/bad.json" ]; then
		bad "$name: an output file was written"
	else
		echo "ok $name: $(tail -1 <<< "$out")"
	fi
}
refuse no_ip "--ip" --prefix p --vdev net_null0 --model "$MODEL"
refuse no_model "--model" --ip 10.0.0.1 --prefix p --vdev net_null0
refuse no_port "exactly one of --vdev SPEC and --iface IF" --ip 10.0.0.1 --prefix p --model "$MODEL"
refuse two_ports "exactly one of --vdev SPEC and --iface IF" "${BASE[@]}" --iface veth0
refuse lcores_both "--lcores and --lcore-map exclude each other" "${BASE[@]}" --lcores 0 --lcore-map 0@0
refuse model_file "--model: no such file: /nonexistent/m.json" "${BASE[@]}" --model /nonexistent/m.json
refuse model_opt "options are KEY=VALUE" "${BASE[@]}" --model "$MODEL,seed"
refuse model_json "--model: bad JSON" "${BASE[@]}" --model '{"graph": '
refuse model_graph "needs a \"graph\" path" "${BASE[@]}" --model '{"seed": 1}'
refuse weights_file "weights: no such file: /nonexistent/w.bin" "${BASE[@]}" --model "$MODEL2,weights=/nonexistent/w.bin"
refuse set_json "--set: bad JSON" "${BASE[@]}" --set '{"pricing": '
refuse set_object "--set: not a JSON object: [1]" "${BASE[@]}" --set '[1]'
refuse keys_missing "--devices 3 needs --keys" "${BASE[@]}" --devices 3
refuse keys_kind "--keys: random, derived:SEED or fixed:HEX64" "${BASE[@]}" --devices 1 --keys secret
refuse keys_hex "--keys: random, derived:SEED or fixed:HEX64" "${BASE[@]}" --devices 1 --keys fixed:zz
refuse devices_neg "argument --devices: an integer in" "${BASE[@]}" --devices -1
refuse port_range "argument --udp-port: an integer in 1..65535" "${BASE[@]}" --udp-port 0
refuse verify_bool "argument --verify-udp-checksum: invalid choice" "${BASE[@]}" --verify-udp-checksum yes
refuse unknown_flag "unrecognized arguments: --colour" "${BASE[@]}" --colour red
out=$($PY "$TOOL" "${BASE[@]}" -o /nonexistent/dir/node.json 2>&1)
[ $? = 2 ] && grep -qF -- "-o /nonexistent/dir/node.json" <<< "$out" && echo "ok output_dir: $out" ||
	bad "output_dir: $out"

# check NAME FILE: dds-server --check-config accepts FILE
check() {
	local out
	out=$("$SERVER" -- -c "$2" --check-config 2>&1) && echo "ok $1: $out" || bad "$1: $out"
}

# 1. Every flag: the server takes it, the loadgen reads its devices; relative model paths are
# made absolute against the current folder (the config lives elsewhere).
mkdir -p "$WORK/run/m" "$WORK/cfg"
cp "$MODEL" "$WORK/run/m/a.json"
(cd "$WORK/run" && $PY "$TOOL" --ip 10.1.2.3 --udp-port 7000 --verify-udp-checksum false --prefix all \
	--iface veth9 --mem 1024 --lcores 0,1 --devices 5 --first-id 40 --keys derived:seed \
	--model m/a.json,seed=3,max_batch=4,max_delay_us=100 --model "{\"graph\": \"$MODEL2\", \"weights\": null}" \
	--set '{"pricing": {"round_ms": 20}, "scheduler": {"max_groups": 8}}' -o "$WORK/cfg/all.json") ||
	bad "the every-flag config was refused"
check all "$WORK/cfg/all.json"
[ "$(jv "$WORK/cfg/all.json" 'c["models"][0]["graph"]')" = "\"$WORK/run/m/a.json\"" ] ||
	bad "relative model path: $(jv "$WORK/cfg/all.json" 'c["models"][0]["graph"]')"
[ "$(jv "$WORK/cfg/all.json" '[d["id"] for d in c["devices"]]')" = "[40, 41, 42, 43, 44]" ] || bad "device ids"
"$LG" --pcap-only --pcap "$WORK/lg.pcap" --config "$WORK/cfg/all.json" --devices 5 --models "$MODEL" \
	--requests 1 --flops 1e6:1e6 --uplink-mbps 1000:1000 --quiet > "$WORK/lg.out" 2>&1 &&
	echo "ok loadgen reads the devices" || { cat "$WORK/lg.out"; bad "dds-loadgen --config"; }

# 2. derived:SEED keys are BLAKE2b-256 of SEED and the index (b2sum, coreutils' own code).
before=$failures
for i in 0 1 4; do
	want=$(printf 'seed%d' "$i" | b2sum -l 256 | cut -d' ' -f1)
	got=$(jv "$WORK/cfg/all.json" "c['devices'][$i]['key']")
	[ "$got" = "\"$want\"" ] || bad "derived key $i: $got, b2sum $want"
done
[ $failures = "$before" ] && echo "ok derived keys equal b2sum's"
$PY "$TOOL" "${BASE[@]}" --devices 3 --keys "fixed:$KEY" -o "$WORK/fixed.json" && check fixed "$WORK/fixed.json"
[ "$(jv "$WORK/fixed.json" 'sorted(set(d["key"] for d in c["devices"]))')" = "[\"$KEY\"]" ] || bad "fixed keys"
$PY "$TOOL" "${BASE[@]}" --devices 50 --keys random -o "$WORK/random.json" && check random "$WORK/random.json"
[ "$(jv "$WORK/random.json" 'len(set(d["key"] for d in c["devices"]))')" = 50 ] || bad "50 random keys, not distinct"

# 3. Every key written without --set is in docs/server.md's reference: a row `a.b`, or for an
# entry of a list `a[].b` a row of its own or its list's row naming "b".
$PY - "$WORK/cfg/all.json" "$DOC" <<'EOP' || bad "a key the tool writes is not documented"
import json, re, sys
cfg, doc = json.load(open(sys.argv[1])), open(sys.argv[2]).read()
rows = dict(re.findall(r"^\| `([a-z_.\[\]]+)` \|(.*)$", doc, re.M))
def keys(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from keys(x, path + ("." if path else "") + k)
    elif isinstance(v, list) and v and isinstance(v[0], dict):
        for k in {k for e in v for k in e}:
            yield path + "[]." + k
    else:
        yield path
written = sorted(set(keys({k: v for k, v in cfg.items() if k not in ("pricing", "scheduler")}, "")))
missing = [k for k in written if k not in rows and not (
    "[]." in k and ('"%s"' % k.split("[].")[1]) in rows.get(k.split("[].")[0], ""))]
print("documented: %d keys written (%s)" % (len(written), ", ".join(written)))
sys.exit("not in docs/server.md: %s" % missing if missing else 0)
EOP

# 4. --set: objects merged key by key, anything else replaced, in order (as jq's * does).
if command -v jq > /dev/null; then
	S1='{"pricing": {"round_ms": 20, "base_price": 2.5}, "eal": ["--no-huge"], "interface": {"mtu": 9000}}'
	S2='{"pricing": {"round_ms": 30}, "engine": {"backend": "cpu"}}'
	$PY "$TOOL" "${BASE[@]}" -o "$WORK/plain.json" && $PY "$TOOL" "${BASE[@]}" --set "$S1" --set "$S2" -o "$WORK/set.json"
	jq -S -s ".[0] * $S1 * $S2" "$WORK/plain.json" > "$WORK/want.json"
	if cmp -s <(jq -S . "$WORK/set.json") "$WORK/want.json"; then echo "ok --set merges as jq's *"
	else bad "--set merge differs from jq's: $(diff <(jq -S . "$WORK/set.json") "$WORK/want.json")"; fi
else
	echo "skip --set against jq: no jq"
fi

[ $failures = 0 ] && echo PASS || { echo "$failures failures"; exit 1; }
