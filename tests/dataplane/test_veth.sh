#!/bin/bash
# test_veth.sh: dds-server on af_packet over a veth pair (or on a tap), a kernel-UDP device in a namespace, every split checked bit-exact; PRICE rounds and latency telemetry.
set -u
SERVER=$1 CTL=$2 CLIENT=$3 MODEL=$4 MODEL2=$5 KIND=${6:-af_packet}
. "$(dirname "$0")/lib_veth.sh"

veth_setup
server_start
# dds-ctl rates samples the counters every 0.2 s through the whole exchange below.
served0=$(counter req_served)
"$CTL" -p "$PREFIX" rates --interval 0.2 --count 0 --json > "$WORK/rates.jsonl" &
RPID=$!
sleep 0.3
# A capture of the whole exchange, decoded afterwards with the Wireshark dissector.
LUA=${DDS_SOURCE_ROOT:-$(dirname "$0")/../..}/docs/dissector/dds.lua
CAP=
if command -v dumpcap > /dev/null && [ -f "$LUA" ]; then
	CAP=$WORK/session.pcapng
	ip netns exec "$NS" dumpcap -q -i "$VB" -f udp -w "$CAP" 2> /dev/null &
	DPID=$!
	sleep 1
fi
# The first device also waits for 3 PRICE messages (rounds of 50 ms), rounds increasing.
ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --model "$MODEL" --key "$KEY" --reps 2 \
	--prices 3 > "$WORK/client.out" 2>&1 || { cat "$WORK/client.out"; fail "client reported failures"; }
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
sleep 0.5
kill "$RPID"
wait "$RPID" 2>/dev/null
served=$(counter req_served)
# Its intervals add up to what the counters grew by, each rate is its delta over its interval.
/usr/bin/python3 - "$WORK/rates.jsonl" $((served - served0)) <<'EOP' || fail "dds-ctl rates"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) >= 5, f"{len(rows)} intervals"
total = sum(r["delta"]["req_served"] for r in rows)
assert total == int(sys.argv[2]), f"rates add up to {total} served, the counters grew by {sys.argv[2]}"
for r in rows:
    assert 0.15 < r["interval_s"] < 2.0, r["interval_s"]
    for k, d in r["delta"].items():
        assert d >= 0 and abs(r["per_s"][k] - d / r["interval_s"]) <= 1e-6 * max(1, d), k
print(f"dds-ctl rates: {len(rows)} intervals, {total} served in them, peak "
      f"{max(r['per_s']['rx_pkts'] for r in rows):.0f} rx packets/s")
EOP
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
[ "$(counter tx_price)" -ge 3 ] || fail "tx_price $(counter tx_price), want >= 3"
grep -q '"prices": [3-9]' "$WORK/client.out" || fail "the client did not count 3 PRICE messages"
# Checksums: af_packet offers no rx checksum offload (the parser sums); net_tap checks IPv4 and
# UDP checksums in its PMD when asked (the parser then trusts its verdicts). Either way a frame
# with a bad IPv4 header checksum, and one with a bad UDP checksum (when verified), are dropped
# as such.
want=none
[ "$KIND" = tap ] && want=ipv4,udp
[ "$(counter rx_checksum_offload state)" = "$want" ] || fail "rx_checksum_offload: want $want"
case "$(counter mac_impl state)" in
"intel-ipsec-mb "* | "OpenSSL "*) ;;
*) fail "mac_impl: '$(counter mac_impl state)' names no MAC library" ;;
esac
ip0=$(counter drop_ip_checksum) udp0=$(counter drop_udp_checksum)
ip netns exec "$NS" /usr/bin/python3 - "$(counter mac state)" "$VB" "$CLIENT_IP" "$SERVER_IP" \
	<<'EOP' || fail "scapy: sending frames with bad checksums"
import sys
from scapy.all import IP, UDP, Ether, Raw, conf, sendp
conf.verb = 0
mac, iface, src, dst = sys.argv[1:]
udp = UDP(sport=4000, dport=9000)
sendp(Ether(dst=mac) / IP(src=src, dst=dst, chksum=0x1234) / udp / Raw(b"x" * 20), iface=iface)
sendp(Ether(dst=mac) / IP(src=src, dst=dst) / UDP(sport=4000, dport=9000, chksum=0x4321) /
      Raw(b"x" * 20), iface=iface)
EOP
sleep 0.5
[ "$(counter drop_ip_checksum)" = $((ip0 + 1)) ] || fail "a bad IPv4 checksum was not dropped"
if [ "$VERIFY" = true ]; then
	[ "$(counter drop_udp_checksum)" = $((udp0 + 1)) ] || fail "a bad UDP checksum was not dropped"
fi
echo "checksums: offload $want; bad IPv4 and UDP (verify=$VERIFY) checksums dropped"
# Latency telemetry: every stage counted once per served request, sub-intervals within the
# end-to-end maximum; the text table; a reset returns the snapshot and zeroes the counts.
"$CTL" -p "$PREFIX" latency --json > "$WORK/lat.json" || fail "dds-ctl latency --json"
"$CTL" -p "$PREFIX" latency > "$WORK/lat.txt" || fail "dds-ctl latency"
cat "$WORK/lat.txt"
/usr/bin/python3 - "$WORK/lat.json" "$served" <<'EOP' || fail "latency telemetry inconsistent"
import json, sys
d = json.load(open(sys.argv[1])); served = int(sys.argv[2])
stages = ["reassembly", "handoff", "queue", "compute", "return", "end_to_end", "overhead"]
assert sorted(d) == sorted(stages), sorted(d)
e2e = d["end_to_end"]
for s in stages:
    r = d[s]
    assert r["count"] == served, (s, r["count"], served)
    assert r["p50_us"] <= r["p90_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"], (s, r)
    assert r["max_us"] <= e2e["max_us"], (s, r["max_us"], e2e["max_us"])
assert e2e["max_us"] > 0 and d["compute"]["max_us"] > 0
print("latency: %d per stage; end_to_end p50 %.3f us, max %.3f us; overhead p99 %.3f us" %
      (served, e2e["p50_us"], e2e["max_us"], d["overhead"]["p99_us"]))
EOP
[ "$(grep -c '^[a-z_]\+ \+[0-9]' "$WORK/lat.txt")" = 7 ] || fail "latency table: want 7 stage rows"
head -1 "$WORK/lat.txt" | grep -q "stage.*count.*p50.*p90.*p99.*p99.9.*max" || fail "latency table header"
# Per model (--model, by the names `dds-ctl models` lists): both test models were served, their
# counts add up to all models' in every stage, and no model's maximum exceeds the total's.
"$CTL" -p "$PREFIX" models > "$WORK/models.json" || fail "dds-ctl models"
for name in $(/usr/bin/python3 -c "import json,sys; print(' '.join(list(json.load(open(sys.argv[1])).values())[0].values()))" "$WORK/models.json"); do
	"$CTL" -p "$PREFIX" latency --json --model "$name" > "$WORK/lat_$name.json" ||
		fail "dds-ctl latency --model $name"
done
/usr/bin/python3 - "$WORK/lat.json" "$WORK"/lat_*.json <<'EOP' || fail "per-model latency inconsistent"
import json, sys
total = json.load(open(sys.argv[1]))
per = [json.load(open(f)) for f in sys.argv[2:]]
assert len(per) == 2 and all(p["end_to_end"]["count"] > 0 for p in per), [p["end_to_end"] for p in per]
for s, r in total.items():
    assert sum(p[s]["count"] for p in per) == r["count"], (s, [p[s]["count"] for p in per], r["count"])
    assert max(p[s]["max_us"] for p in per) == r["max_us"], (s, [p[s]["max_us"] for p in per], r["max_us"])
print("latency per model: end_to_end counts %s, p50 %s us" %
      ([p["end_to_end"]["count"] for p in per], [round(p["end_to_end"]["p50_us"], 1) for p in per]))
EOP
"$CTL" -p "$PREFIX" latency --model nosuch > /dev/null 2>&1; [ $? = 3 ] || fail "latency --model nosuch: not exit 3"
"$CTL" -p "$PREFIX" latency --reset | grep -q "^end_to_end \+$served " || fail "latency --reset: snapshot"
"$CTL" -p "$PREFIX" latency --json | /usr/bin/python3 -c \
	"import json,sys; d=json.load(sys.stdin); assert all(r['count'] == 0 for r in d.values()), d" ||
	fail "latency counts not zero after --reset"
"$CTL" -p "$PREFIX" latency --json --model "$name" | /usr/bin/python3 -c \
	"import json,sys; d=json.load(sys.stdin); assert all(r['count'] == 0 for r in d.values()), d" ||
	fail "a model's latency counts not zero after --reset"
"$CTL" -p "$PREFIX" sched | grep -q '"backend":"cpu"' || fail "dds-ctl sched: backend"
"$CTL" -p "$PREFIX" nosuch > /dev/null 2>&1; [ $? = 3 ] || fail "dds-ctl: unknown command not exit 3"
"$CTL" -p "$PREFIX" queue 5 > /dev/null 2>&1; [ $? = 3 ] || fail "dds-ctl: bad queue not exit 3"
"$CTL" -p "nosuch$PREFIX" > /dev/null 2>&1; [ $? = 1 ] || fail "dds-ctl: no server not exit 1"
server_stop
echo "PASS"
