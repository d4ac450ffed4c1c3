#!/bin/bash
# test_dissector.sh: tshark with docs/dissector/dds.lua on captures from the C encoder and from Python; every field checked.
set -u
LUA=$1 BENCH=$2 CHECK=$3
command -v tshark >/dev/null || { echo "SKIP: no tshark"; exit 77; }
WORK=$(mktemp -d /tmp/dds-dissector.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export HOME=$WORK # tshark reads no personal preferences or plugins
"$BENCH" make-pcap "$WORK/req.pcap" 1400 16384 40 > /dev/null || { echo "FAIL: make-pcap"; exit 1; }
/usr/bin/python3 "$CHECK" write "$WORK/msgs.pcap" || exit 1
for cap in req msgs; do
	tshark -X lua_script:"$LUA" -r "$WORK/$cap.pcap" -Y dds -T fields -E occurrence=f \
		-e dds.type -e dds.device_id -e dds.request_id -e dds.frag_index -e dds.frag_count \
		-e dds.body_len -e dds.model_hash -e dds.value -e dds.payload_len -e dds.frag_offset \
		-e dds.rx_mtu -e dds.reason -e dds.price -e dds.nonce -e dds.tag \
		> "$WORK/$cap.fields" 2> "$WORK/$cap.err"
	if [ -s "$WORK/$cap.err" ] && grep -v "Running as user" "$WORK/$cap.err" | grep -q .; then
		echo "FAIL: tshark reported:"; cat "$WORK/$cap.err"; exit 1
	fi
	/usr/bin/python3 "$CHECK" check "$WORK/$cap.pcap" "$WORK/$cap.fields" || exit 1
done
tshark -X lua_script:"$LUA" -r "$WORK/msgs.pcap" -Y dds 2>/dev/null | tee "$WORK/summary"
grep -q "Lua Error\|Malformed" "$WORK/summary" && { echo "FAIL: Lua error in the summary"; exit 1; }
echo PASS
