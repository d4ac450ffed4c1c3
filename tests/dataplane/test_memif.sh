#!/bin/bash
# test_memif.sh: dds-server on a memif port (role=server) serving a second DPDK process, dpdk-testpmd as the memif client forwarding a dds-loadgen capture of real requests in and the replies out to a pcap; every reply parses, its MAC verifies, every request gets its RESULT equal to the model's tail recomputed from the request, and dds-ctl's counters agree.
# usage: test_memif.sh DDS_SERVER DDS_CTL DDS_LOADGEN REPLY_CHECK MODEL.json
set -u
SERVER=$1 CTL=$2 LG=$3 CHECK=$4 MODEL=$5
TESTPMD=${DDS_TESTPMD:-dpdk-testpmd}
. "$(dirname "$0")/lib_veth.sh" # server_start, counter, fail, cleanup (no veth pair made here)
command -v "$TESTPMD" > /dev/null || { echo "SKIP: $TESTPMD not installed"; exit 77; }
CPREFIX=tidyc$TAG
SOCK=/run/tidy-memif$TAG.sock # abstract (DPDK's memif default): no file to remove
VDEV="net_memif0,role=server,socket=$SOCK"
VERIFY=true
ROUND_MS=3600000 # no PRICE round during the test: every datagram sent is a reply
TPID=
memif_cleanup() {
	exec 3>&-
	[ -n "$TPID" ] && kill -KILL "$TPID" 2> /dev/null && wait "$TPID" 2> /dev/null
	rm -rf "/var/run/dpdk/$CPREFIX"
	veth_cleanup
}
trap memif_cleanup EXIT
trap "" PIPE # a write to a testpmd that died fails (and is seen) instead of killing the test

# The UDP payloads of a pcap as [u32 length][datagram] records for reply_check; scapy checks on
# the way that every frame is IPv4/UDP with correct IP and UDP checksums. Prints the frame count.
records() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import struct, sys
from scapy.all import IP, UDP, rdpcap
frames = rdpcap(sys.argv[1])
with open(sys.argv[2], "wb") as out:
    for i, f in enumerate(frames):
        assert IP in f and UDP in f, f"frame {i}: not IPv4/UDP: {f.summary()}"
        ip = f[IP]
        redo = IP(bytes(ip))
        del redo.chksum, redo[UDP].chksum
        redo = IP(bytes(redo))
        assert (ip.chksum, ip[UDP].chksum) == (redo.chksum, redo[UDP].chksum), f"frame {i}: checksum"
        data = bytes(ip[UDP].payload)
        out.write(struct.pack("<I", len(data)) + data)
print(len(frames))
EOF
}

# Requests of devices 1 and 2 for the server's config, computed remotely (slow devices, fast
# uplink): REGISTERs, then 5 requests each.
server_start
"$LG" --pcap-only --pcap "$WORK/req.pcap" --config "$WORK/cfg.json" --devices 2 --requests 5 \
	--flops 1e6:1e6 --uplink-mbps 1000:1000 --quiet > "$WORK/lg.out" 2>&1 ||
	{ cat "$WORK/lg.out"; fail "dds-loadgen --pcap-only"; }
sent=$(sed -n 's/^totals with warmup: .* sent \([0-9]*\) = .*/\1/p' "$WORK/lg.out")
[ "${sent:-0}" -gt 0 ] || { cat "$WORK/lg.out"; fail "the capture holds no request"; }
n_req=$(records "$WORK/req.pcap" "$WORK/req.rec") || fail "the frames of req.pcap"

# testpmd, interactive on a fifo: port 0 the memif client, port 1 the pcap (its rx the capture,
# read once; its tx the replies); io forwarding pairs them. --no-flush-rx: testpmd would
# otherwise drain (and drop) the whole capture before forwarding starts.
mkfifo "$WORK/cmd"
"$TESTPMD" --no-huge -m 256 --no-pci -l 0,1 --file-prefix="$CPREFIX" --log-level=lib.eal:error \
	--vdev="net_memif1,role=client,socket=$SOCK" \
	--vdev="net_pcap1,rx_pcap=$WORK/req.pcap,tx_pcap=$WORK/reply.pcap" -- \
	-i --forward-mode=io --no-flush-rx --total-num-mbufs=4096 < "$WORK/cmd" > "$WORK/testpmd.out" 2>&1 &
TPID=$!
exec 3> "$WORK/cmd"
for _ in $(seq 1 50); do # the memif link is up once the client has connected
	echo "show port summary all" >&3
	sleep 0.2
	grep -q "net_memif .* up" "$WORK/testpmd.out" && break
	kill -0 "$TPID" 2> /dev/null || { cat "$WORK/testpmd.out"; fail "testpmd exited during start"; }
done
grep -q "net_memif .* up" "$WORK/testpmd.out" || { cat "$WORK/testpmd.out"; fail "no memif link"; }
echo start >&3
for _ in $(seq 1 150); do
	[ "$(counter req_served)" -ge "$sent" ] && break
	sleep 0.2
done
sleep 0.5 # the last RESULT's fragments on their way through testpmd
printf 'stop\nquit\n' >&3
exec 3>&-
wait "$TPID" || { cat "$WORK/testpmd.out"; fail "testpmd exited with an error"; }
TPID=
grep -A1 "statistics for port" "$WORK/testpmd.out" | grep RX-packets

# What came back, checked with the protocol library (and every RESULT against the model's tail
# recomputed by the reference kernels), against the server's own counters.
n_reply=$(records "$WORK/reply.pcap" "$WORK/reply.rec") || fail "the frames of reply.pcap"
"$CHECK" "$KEY" "$MODEL" 1 "$WORK/req.rec" "$WORK/reply.rec" > "$WORK/check.json" || fail "reply_check"
echo "capture: $n_req frames, $sent requests; replies: $n_reply frames: $(cat "$WORK/check.json")"
"$CTL" -p "$PREFIX" counters > "$WORK/counters.json"
/usr/bin/python3 - "$WORK/check.json" "$WORK/counters.json" "$n_req" "$n_reply" "$sent" <<'EOF' ||
import json, sys
got = json.load(open(sys.argv[1]))
c = list(json.load(open(sys.argv[2])).values())[0]
n_req, n_reply, sent = map(int, sys.argv[3:6])
want = {"rx_pkts": n_req, "rx_udp": n_req, "tx_pkts": n_reply, "req_served": sent,
        "req_complete": sent, "tx_result_frag": got["result_frags"],
        "tx_register_reply": got["register_replies"], "tx_price": got["prices"],
        "tx_error": got["errors"], "tx_busy": got["busy"], "req_refused": 0}
bad = {k: (c[k], v) for k, v in want.items() if c[k] != v}
print("dds-ctl:", {k: c[k] for k in want})
assert got["results"] == got["equal"] == got["requests"] == sent, f"results {got} of {sent}"
assert got["register_replies"] == 2 and got["errors"] == got["busy"] == 0, got
assert not bad, f"counters (server, want): {bad}"
EOF
	fail "counters disagree"
server_stop
echo "PASS: memif: $sent requests served to a second DPDK process"
