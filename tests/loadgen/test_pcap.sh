#!/bin/bash
# test_pcap.sh: dds-loadgen --pcap-only output checked with scapy, hashlib and the protocol library; bad flags give exit 2 and name the flag.
set -u
LG=$1 CHECK=$2 PY=$3 MODEL=$4 MODEL2=$5
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
WORK=$(mktemp -d /tmp/dds-lg-pcap.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 20 slow devices with fast links (they offload), two models, 3 requests each.
"$LG" --pcap-only --pcap "$WORK/a.pcap" --json "$WORK/a.json" --devices 20 --requests 3 \
	--models "$MODEL,$MODEL2" --flops 1e6:1e7 --uplink-mbps 100:1000 --rate 50 \
	--server 10.99.0.1:9000 --src-ip 10.99.0.2 > "$WORK/out" 2>&1 || { cat "$WORK/out"; fail "dds-loadgen --pcap-only"; }
/usr/bin/python3 "$PY" "$WORK/a.pcap" "$WORK/rec" $KEY 10.99.0.2 10.99.0.1 9000 || fail "scapy check"
res=$("$CHECK" "$WORK/rec" $KEY) || fail "protocol check: $res"
echo "$res"
sent=$(/usr/bin/python3 -c "import json; print(json.load(open('$WORK/a.json'))['totals_with_warmup']['sent'])")
set -- $res
[ "$4" = 20 ] || fail "$4 REGISTERs, want 20"
[ "$6" = "$sent" ] || fail "$6 requests in the pcap, the report says $sent"
[ "$sent" -gt 0 ] || fail "no request was sent (all local?)"

# Bad flags: exit 2, one line naming the flag.
bad() {
	"$LG" "$@" > "$WORK/bad.out" 2> "$WORK/bad.err"
	rc=$?
	[ $rc = 2 ] || fail "'$*' exited $rc, want 2"
	grep -q -- "$want" "$WORK/bad.err" || fail "'$*' said '$(cat "$WORK/bad.err")', not naming $want"
}
want=--rate bad --models "$MODEL" --rate -1
want=--pcap-only bad --models "$MODEL" --pcap-only
want=--models bad --models /nonexistent.json
want=--arrival bad --models "$MODEL" --arrival sometimes
want=--nosuch bad --models "$MODEL" --nosuch
"$LG" --help | grep -q -- "--pcap-only" || fail "--help does not list the flags"
echo PASS
