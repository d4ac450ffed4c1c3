#!/bin/bash
# test_dpdk_veth.sh: dds-loadgen --dpdk (net_af_packet, in a namespace) against dds-server on af_packet over a veth pair: every request answered, counters agree, one UDP source port per device, ARP both ways and --dst-mac.
set -u
SERVER=$1 CTL=$2 LG=$3 MODEL=$4
N=20
# The veth pair, namespace, cleanup, counter() and server_stop() of the dataplane tests, with
# this test's own names (the library's functions read these variables when called).
. "$(dirname "$0")/../dataplane/lib_veth.sh"
NS=lgdns$TAG VA=lgda$TAG VB=lgdb$TAG PREFIX=ddslgd$TAG LG_PREFIX=lgdl$TAG
SERVER_IP=10.99.9.1 CLIENT_IP=10.99.9.2
. "$(dirname "$0")/lib_lg.sh" # fail (with the loadgen's stderr), jget, lg_config
trap 'veth_cleanup; rm -rf "/var/run/dpdk/$LG_PREFIX"' EXIT
command -v tshark > /dev/null || { echo "SKIP: needs tshark (the server-side capture)"; exit 77; }

veth_setup
# The loadgen's end belongs to DPDK: no kernel address on it, so the namespace's kernel neither
# answers ARP for the loadgen's IP nor sends ICMP port unreachable for the devices' ports.
ip -n "$NS" addr flush dev "$VB"
SERVER_MAC=$(cat "/sys/class/net/$VA/address")
LG_MAC=$(ip netns exec "$NS" cat "/sys/class/net/$VB/address")

lg_config $N 3000 lgd "[{\"graph\": \"$(realpath "$MODEL")\", \"seed\": 1}]" '{}'
START_S=30 server_run "$WORK/node.json"

# lg_cmd NAME EXTRA...: into LG_CMD, dds-loadgen --dpdk with N devices at 10 requests/s for
# 2 s, on lcore 1 (the server has lcore 0), its EAL on net_af_packet over the namespace's end.
lg_cmd() {
	local name=$1
	shift
	LG_CMD=(ip netns exec "$NS" "$LG" --dpdk --config "$WORK/node.json" --devices $N
		--models "$MODEL" --rate 10 --duration 2 --timeout-ms 5000 --flops 1e6:1e7
		--uplink-mbps 100:1000 --seed 7 --src-ip "$CLIENT_IP" --src-port 41000 --quiet
		--json "$WORK/$name.json" "$@"
		-- --no-huge -m 256 --no-pci -l 1 --file-prefix "$LG_PREFIX" --log-level 'lib.eal:warning'
		--vdev "net_af_packet0,iface=$VB")
	echo "${LG_CMD[*]}"
}
lg_run() {
	lg_cmd "$@"
	"${LG_CMD[@]}" > "$WORK/$1.out" 2> "$WORK/lg.err" ||
		{ cat "$WORK/$1.out"; fail "dds-loadgen --dpdk ($1) failed"; }
	head -3 "$WORK/$1.out"
}
# lg_refused WANT EXTRA...: dds-loadgen --dpdk exits 2 with one line naming WANT.
lg_refused() {
	local want=$1 rc
	shift
	lg_cmd refused "$@"
	"${LG_CMD[@]}" > /dev/null 2> "$WORK/lg.err"
	rc=$?
	echo "  -> exit $rc: $(grep '^dds-loadgen:' "$WORK/lg.err")"
	[ "$rc" = 2 ] || fail "exit $rc, not 2"
	[ "$(grep -c '^dds-loadgen:' "$WORK/lg.err")" = 1 ] || fail "not one line of dds-loadgen's"
	grep -q -- "^dds-loadgen: .*$want" "$WORK/lg.err" || fail "the error does not name '$want'"
}

# check_run NAME SERVED_BEFORE: the JSON report against itself and against dds-ctl.
check_run() {
	local J=$WORK/$1.json T="['totals_with_warmup']" sent answered lost late served
	[ "$(jget "$J" "['io']")" = dpdk ] || fail "$1: the report's io is $(jget "$J" "['io']"), not dpdk"
	sent=$(jget "$J" "$T['sent']") answered=$(jget "$J" "$T['answered']")
	lost=$(jget "$J" "$T['lost']") late=$(jget "$J" "$T['late']")
	[ "$sent" -gt 0 ] || fail "$1: nothing sent"
	[ "$answered" = "$sent" ] || fail "$1: $answered of $sent requests answered"
	[ "$lost" = 0 ] || fail "$1: $lost requests lost"
	[ "$(jget "$J" "['generator']['send_errors']")" = 0 ] || fail "$1: send errors"
	served=$(counter req_served)
	echo "$1: loadgen sent $sent, answered $answered, late $late; server served $((served - $2))"
	[ $((served - $2)) = $((answered + late)) ] ||
		fail "$1: the server served $((served - $2)), the loadgen counted $answered + $late late"
	[ "$(jget "$J" "['dpdk_port']['opackets']")" -ge "$(jget "$J" "$T['datagrams']")" ] ||
		fail "$1: the port sent fewer frames than the loadgen's datagrams"
	[ "$(jget "$J" "['dpdk_port']['mbufs_in_use']")" = 0 ] || fail "$1: mbufs not returned at the end"
}

# 1. The server's MAC by ARP; a capture on the server's end sees which ports the devices use.
arp0=$(counter rx_arp_request) regs0=$(counter tx_register_reply) served0=$(counter req_served)
tshark -i "$VA" -f "udp and dst port 9000" -w "$WORK/cap.pcapng" -q 2> "$WORK/tshark.err" &
TSHARK=$!
for _ in $(seq 1 50); do grep -q Capturing "$WORK/tshark.err" && break; sleep 0.1; done
lg_run arp
sleep 0.5
kill -INT "$TSHARK"
wait "$TSHARK"
check_run arp "$served0"
arp1=$(counter rx_arp_request)
[ "$arp1" -gt "$arp0" ] || fail "without --dst-mac the server answered no ARP request"
[ $(($(counter tx_register_reply) - regs0)) -ge $N ] || fail "fewer than $N devices registered"
ports=$(tshark -r "$WORK/cap.pcapng" -T fields -e udp.srcport -Y "ip.src == $CLIENT_IP" 2> /dev/null | sort -n -u)
nports=$(echo "$ports" | grep -c .)
expect=$(seq 41000 $((41000 + N - 1)))
echo "server end: $nports distinct UDP source ports from $CLIENT_IP"
[ "$ports" = "$expect" ] || fail "source ports seen: $(echo $ports), want 41000..$((41000 + N - 1))"
[ "$(tshark -r "$WORK/cap.pcapng" -T fields -e eth.src 2> /dev/null | sort -u)" = "$LG_MAC" ] ||
	fail "frames not from the port's MAC $LG_MAC"

# 2. --dst-mac given: no ARP request; the loadgen answers ARP for its own IP meanwhile; it is
# asked for 30 s and interrupted (SIGINT) once the ARP probe is answered and 1 s more passed:
# it stops starting requests, waits for those in flight, reports as usual and exits 0.
served1=$(counter req_served)
/usr/bin/python3 - "$VA" "$CLIENT_IP" > "$WORK/arp.out" 2>&1 <<'EOP' &
import sys, time
from scapy.all import ARP, Ether, conf, srp1
conf.verb = 0
for _ in range(12):  # while the loadgen runs (about 2 s after its EAL starts)
    r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="10.99.9.7", pdst=sys.argv[2]),
             iface=sys.argv[1], timeout=0.4)
    if r is not None and ARP in r and r[ARP].op == 2:
        print(r[ARP].hwsrc, r[ARP].psrc)
        break
    time.sleep(0.2)
EOP
PROBE=$!
lg_cmd given --dst-mac "$SERVER_MAC" --duration 30
"${LG_CMD[@]}" > "$WORK/given.out" 2> "$WORK/lg.err" &
LPID=$!
wait "$PROBE"
sleep 1
kill -INT "$LPID"
wait "$LPID" || { cat "$WORK/given.out"; fail "dds-loadgen --dpdk exited $? after SIGINT"; }
head -3 "$WORK/given.out"
measured=$(jget "$WORK/given.json" "int(d['measured_s'])")
[ "$measured" -lt 10 ] || fail "SIGINT did not end the run: $measured s measured of 30"
check_run given "$served1"
[ "$(counter rx_arp_request)" = "$arp1" ] || fail "with --dst-mac the loadgen still sent ARP"
echo "ARP for $CLIENT_IP answered: $(cat "$WORK/arp.out")"
[ "$(cat "$WORK/arp.out")" = "$LG_MAC $CLIENT_IP" ] ||
	fail "ARP request for $CLIENT_IP: want '$LG_MAC $CLIENT_IP', got '$(cat "$WORK/arp.out")'"

# 3. Refusals: each exits 2 with one line naming the cause; no ARP answer is a clear failure.
lg_refused "--mtu 9000" --mtu 9000 # af_packet's frames hold 2048 bytes
lg_refused "--port 1" --port 1
lg_cmd noport
"${LG_CMD[@]:0:$((${#LG_CMD[@]} - 2))}" > /dev/null 2> "$WORK/lg.err"; rc=$?
echo "  (the same without --vdev) -> exit $rc: $(grep '^dds-loadgen:' "$WORK/lg.err")"
[ "$rc" = 2 ] && grep -q "^dds-loadgen: --dpdk: no DPDK port" "$WORK/lg.err" || fail "no port: exit $rc"
lg_cmd noarp --server 10.99.9.99:9000
"${LG_CMD[@]}" > /dev/null 2> "$WORK/lg.err"; rc=$?
echo "  -> exit $rc: $(grep '^dds-loadgen:' "$WORK/lg.err")"
[ "$rc" = 1 ] && grep -q "^dds-loadgen: --dpdk: no ARP reply from 10.99.9.99.*--dst-mac" "$WORK/lg.err" ||
	fail "no ARP reply: exit $rc"

server_stop
echo PASS
