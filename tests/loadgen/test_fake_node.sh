#!/bin/bash
# test_fake_node.sh: dds-loadgen against a scripted node (fake_node.py): RESULT, ERROR, BUSY and silence each accounted as the node says it answered.
set -u
LG=$1 NODE=$2 MODEL=$3
WORK=$(mktemp -d /tmp/dds-lg-fake.XXXXXX)
NPID=
trap '[ -n "$NPID" ] && kill "$NPID" 2>/dev/null; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; cat "$WORK/lg.err" 2>/dev/null | tail -5; exit 1; }
PORT=$((20000 + $$ % 20000))

/usr/bin/python3 "$NODE" $PORT 7 "$WORK/node.json" &
NPID=$!
sleep 1
# Every 4th request the node leaves unanswered: a 300 ms timeout makes it lost; BUSY retries
# once after 5 ms (a fresh id), so some requests end busy.
"$LG" --server 127.0.0.1:$PORT --bind 127.0.0.1 --devices 5 --models "$MODEL" --rate 20 \
	--duration 3 --timeout-ms 300 --busy-retries 1 --flops 1e6:1e7 --uplink-mbps 100:1000 \
	--json "$WORK/lg.json" > "$WORK/lg.out" 2> "$WORK/lg.err" || fail "dds-loadgen failed"
wait "$NPID"
NPID=
cat "$WORK/lg.out" | sed -n '1,4p'
/usr/bin/python3 - "$WORK/lg.json" "$WORK/node.json" <<'EOP' || fail "accounting differs"
import json, sys
lg, node = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
t = lg["totals_with_warmup"]
print("node:", node)
print("loadgen:", {k: t[k] for k in ("sent", "answered", "errors", "busy", "lost", "busy_replies", "retries", "late")})
checks = [
    ("sent = answered + errors + busy + lost", t["sent"], t["answered"] + t["errors"] + t["busy"] + t["lost"]),
    ("requests at the node = sent + retries", node["requests"], t["sent"] + t["retries"]),
    ("RESULTs = answered", node["result"], t["answered"]),
    ("ERRORs = errors", node["error"], t["errors"]),
    ("bad_split errors", node["error"], lg["overall"]["errors_by_reason"].get("bad_split", 0)),
    ("BUSYs = busy replies", node["busy"], t["busy_replies"]),
    ("BUSYs = retries + gave up", node["busy"], t["retries"] + t["busy"]),
    ("silences = lost", node["drop"], t["lost"]),
    ("no bad MAC", node["bad_mac"], 0),
    ("5 registrations", node["register"], 5),
    ("no late answers", t["late"], 0),
]
bad = [c for c in checks if c[1] != c[2]]
for c in bad:
    print("FAIL:", c)
rounds = [p["round"] for p in lg["price_timeline"] if p["round"] is not None]
if not rounds or t["sent"] < 100 or t["busy"] == 0 or t["retries"] == 0:
    print("FAIL: too little exercised: rounds", len(rounds), "sent", t["sent"], "busy", t["busy"])
    bad.append(1)
sys.exit(1 if bad else 0)
EOP
echo PASS
