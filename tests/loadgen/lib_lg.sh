# lib_lg.sh: what the loadgen's veth tests share on top of tests/dataplane/lib_veth.sh: fail() that
# also shows the loadgen's stderr, jget() over its JSON report, and the node.json both read. Sourced after lib_veth.sh.
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
# object) over the defaults. The loadgen reads the same file.
lg_config() {
	/usr/bin/python3 - "$WORK/node.json" "$SERVER_IP" "$PREFIX" "$VDEV" "$VERIFY" "$@" <<'EOP'
import hashlib, json, sys
path, ip, prefix, vdev, verify, n, id0, seed, models, extra = sys.argv[1:]
cfg = {
    "eal": ["--no-huge", "-m", "512", "--no-pci", "-l", "0", "--file-prefix=" + prefix,
            "--vdev=" + vdev + ",framecnt=4096", "--log-level=lib.eal:error"],
    "interface": {"ip": ip, "udp_port": 9000, "verify_udp_checksum": verify == "true"},
    "devices": [{"id": int(id0) + i,
                 "key": hashlib.blake2b(b"%s%d" % (seed.encode(), i), digest_size=32).hexdigest()}
                for i in range(int(n))],
    "models": json.loads(models),
    "pricing": {"base_price": 1e-12, "round_ms": 100},
}
cfg.update(json.loads(extra))
json.dump(cfg, open(path, "w"), indent=1)
EOP
}
