#!/bin/bash
# test_veth.sh: dds-server on af_packet over a veth pair, a kernel-UDP device in a namespace, every split checked bit-exact.
set -u
SERVER=$1 CTL=$2 CLIENT=$3 MODEL=$4
. "$(dirname "$0")/lib_veth.sh"

veth_setup
server_start
ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --model "$MODEL" --key "$KEY" --reps 2 \
	> "$WORK/client.out" 2>&1 || { cat "$WORK/client.out"; fail "client reported failures"; }
cat "$WORK/client.out"
served=$(counter req_served)
refused=$(counter req_refused)
arp=$(counter tx_arp_reply)
csum=$(counter drop_udp_checksum)
echo "server: served $served, refused $refused, ARP replies $arp, UDP checksum drops $csum (verify=$VERIFY)"
[ "$served" = 16 ] || fail "req_served $served, want 16 (8 splits x 2)"
[ "$refused" = 2 ] || fail "req_refused $refused, want 2 (unknown model, bad split)"
[ "$arp" -ge 1 ] || fail "the client's ARP request was not answered"
[ "$csum" = 0 ] || fail "UDP checksum drops on clean traffic"
[ "$(counter unknown_model proto)" = 1 ] || fail "proto unknown_model count"
[ "$(counter bad_split proto)" = 1 ] || fail "proto bad_split count"
server_stop
echo "PASS"
