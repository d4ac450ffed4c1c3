#!/bin/bash
# test_barrage.sh: a scapy barrage of malformed and hostile traffic while a good device keeps being served; no crash, no leak.
set -u
SERVER=$1 CTL=$2 CLIENT=$3 MODEL=$4 BARRAGE=$5
. "$(dirname "$0")/lib_veth.sh"

veth_setup
LCORES=0,1 # a worker lcore runs the queue; the main lcore waits for the signal
server_start '"reassembly": {"timeout_ms": 300, "max_bytes_per_device": 16384, "max_payload": 16384, "max_requests_per_device": 8}'
mac=$(counter mac state)
hash=$("$CTL" -p "$PREFIX" models | /usr/bin/python3 -c "import json,sys; print(list(json.load(sys.stdin)['/dds/models'])[0])")
before=$(counter mbufs_in_use state)

ip netns exec "$NS" /usr/bin/python3 "$BARRAGE" --iface "$VB" --server-mac "$mac" --key "$KEY" \
	--model-hash "$hash" --seconds 10 > "$WORK/barrage.out" 2>&1 &
BPID=$!
sleep 2
ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --model "$MODEL" --key "$KEY" --reps 3 \
	> "$WORK/client.out" 2>&1
crc=$?
wait $BPID
brc=$?
cat "$WORK/client.out" "$WORK/barrage.out"
[ $crc = 0 ] || fail "the good device was not served correctly during the barrage"
[ $brc = 0 ] || fail "barrage: ARP or ICMP not answered"
kill -0 "$SPID" || fail "dds-server died"
sleep 1 # partial requests time out (300 ms)

bad=0
# drop_ip_fragment is left out: net_af_packet's fanout socket has the kernel defragment IP
# before the PMD sees it (PACKET_FANOUT_FLAG_DEFRAG); test_pkt reaches it.
for c in drop_ip_runt drop_ip_version drop_ip_ihl drop_ip_total_len drop_ip_checksum \
	drop_ip_src drop_ip_proto drop_udp_len drop_udp_port drop_icmp_checksum \
	drop_icmp_type drop_arp_not_for_us drop_eth_type tx_icmp_reply tx_arp_reply; do
	v=$(counter $c)
	[ "$v" -gt 0 ] || { echo "counter $c not reached"; bad=1; }
done
if [ "$VERIFY" = true ] && [ "$(counter drop_udp_checksum)" = 0 ]; then
	echo "counter drop_udp_checksum not reached"; bad=1
fi
for r in truncated bad_magic bad_version bad_type bad_flags bad_length bad_fragment bad_mac \
	unknown_device replay too_large device_slots device_memory duplicate inconsistent \
	overlap_conflict timeout; do
	v=$(counter $r proto)
	[ "$v" -gt 0 ] || { echo "protocol reason $r not reached"; bad=1; }
done
[ $bad = 0 ] || fail "some drop reasons were not reached"
"$CTL" -p "$PREFIX" proto
"$CTL" -p "$PREFIX" state
[ "$(counter reassembly_requests state)" = 0 ] || fail "partial requests still held after their timeout"
[ "$(counter reassembly_bytes state)" = 0 ] || fail "reassembly bytes still held after the timeout"
after=$(counter mbufs_in_use state)
[ "$after" = "$before" ] || fail "mbufs in use: $before before, $after after (leak)"
server_stop # LeakSanitizer checks the heap at exit in sanitized builds
echo "PASS"
