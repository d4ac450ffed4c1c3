#!/bin/bash
# test_veth.sh: dds-server on af_packet over a veth pair (or on a tap), a kernel-UDP device in a namespace, every split checked bit-exact.
set -u
SERVER=$1 CTL=$2 CLIENT=$3 MODEL=$4 MODEL2=$5 KIND=${6:-af_packet}
. "$(dirname "$0")/lib_veth.sh"

veth_setup
server_start
# A capture of the whole exchange, decoded afterwards with the Wireshark dissector.
LUA=${DDS_SOURCE_ROOT:-$(dirname "$0")/../..}/docs/dissector/dds.lua
CAP=
if command -v dumpcap > /dev/null && [ -f "$LUA" ]; then
	CAP=$WORK/session.pcapng
	ip netns exec "$NS" dumpcap -q -i "$VB" -f udp -w "$CAP" 2> /dev/null &
	DPID=$!
	sleep 1
fi
ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --model "$MODEL" --key "$KEY" --reps 2 \
	> "$WORK/client.out" 2>&1 || { cat "$WORK/client.out"; fail "client reported failures"; }
# The second model's output (4 KiB) comes back in several RESULT fragments.
ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --model "$MODEL2" --key "$KEY" --reps 2 \
	--device 2 >> "$WORK/client.out" 2>&1 || { cat "$WORK/client.out"; fail "client 2 reported failures"; }
cat "$WORK/client.out"
if [ -n "$CAP" ]; then
	sleep 0.5
	kill -INT "$DPID"
	wait "$DPID"
	HOME=$WORK tshark -X lua_script:"$LUA" -r "$CAP" -Y dds -T fields -e dds.type \
		> "$WORK/types" 2> "$WORK/tshark.err" || fail "tshark on the capture"
	HOME=$WORK tshark -X lua_script:"$LUA" -r "$CAP" 2>/dev/null | grep -q "Malformed\|Lua Error" &&
		fail "the dissector reported malformed frames in the capture"
	echo "capture decoded: $(sort "$WORK/types" | uniq -c | tr '\n' ' ')(1 REGISTER 2 REPLY 3 REQUEST 4 RESULT 6 ERROR)"
	for t in 1 2 3 4 6; do grep -qx "$t" "$WORK/types" || fail "no DDS type $t in the capture"; done
fi
served=$(counter req_served)
refused=$(counter req_refused)
arp=$(counter tx_arp_reply)
csum=$(counter drop_udp_checksum)
echo "server: served $served, refused $refused, ARP replies $arp, UDP checksum drops $csum (verify=$VERIFY)"
frags=$(counter tx_result_frag)
[ "$served" = 20 ] || fail "req_served $served, want 20 (8 splits x 2 + 2 splits x 2)"
[ "$refused" = 4 ] || fail "req_refused $refused, want 4 (unknown model, bad split, per model)"
[ "$frags" = $((16 + 4 * 3)) ] || fail "tx_result_frag $frags, want 28 (16 x 1 + 4 x 3)"
[ "$arp" -ge 1 ] || fail "the client's ARP request was not answered"
[ "$csum" = 0 ] || fail "UDP checksum drops on clean traffic"
[ "$(counter unknown_model proto)" = 2 ] || fail "proto unknown_model count"
[ "$(counter bad_split proto)" = 2 ] || fail "proto bad_split count"
[ "$(counter budgets_accepted pricing)" = 20 ] || fail "budgets of served requests not in the market"
[ "$(counter round pricing)" -gt 0 ] || fail "no pricing round closed"
[ "$(counter req_served 'queue 0')" = "$served" ] || fail "queue 0 counters differ from the sum"
"$CTL" -p "$PREFIX" nosuch > /dev/null 2>&1; [ $? = 3 ] || fail "dds-ctl: unknown command not exit 3"
"$CTL" -p "$PREFIX" queue 5 > /dev/null 2>&1; [ $? = 3 ] || fail "dds-ctl: bad queue not exit 3"
"$CTL" -p "nosuch$PREFIX" > /dev/null 2>&1; [ $? = 1 ] || fail "dds-ctl: no server not exit 1"
server_stop
echo "PASS"
