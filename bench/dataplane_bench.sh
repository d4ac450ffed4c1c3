#!/bin/bash
# dataplane_bench.sh: requests/s, packets/s and payload Gbit/s of one rx core on pcap replay, beside testpmd io and memcpy limits.
#
# usage: bench/dataplane_bench.sh [BUILD_DIR] [SECONDS]    (run as root; BUILD_DIR default build)
# For each fragment size (data bytes per fragment: 256, 1400, 8900) and request size, it writes a
# capture of whole authenticated REQUESTs (8 devices), replays it with net_pcap infinite_rx=1
# through the daemon's burst handler on one core (bench/dataplane/dp_bench.c), and in the same
# run measures the two limits: dpdk-testpmd io forwarding on the same capture and device, and
# one core's memcpy of the same fragments into request-sized buffers. It also measures one
# core's per-fragment MAC verification, the ceiling the protocol itself sets, and the rate of
# the L2-L4 path alone (the same capture sent to another UDP port: every datagram is parsed,
# its UDP checksum verified, then dropped; once per fragment size). Results go to
# stdout and to $OUT_DIR/dataplane_bench.tsv (default /tmp). DP_BENCH_UDP_CSUM=0 in the
# environment runs the daemon's path with interface.verify_udp_checksum false (the MAC still
# covers every payload byte; the L2-L4 column then sums nothing either). With gnuplot, also
# $OUT_DIR/dataplane_bench.png: each point's rate beside its limits.
set -u
BUILD=${1:-build}
SECONDS_PER=${2:-3}
OUT_DIR=${OUT_DIR:-/tmp}
BENCH=$BUILD/bench/dp_bench
[ -x "$BENCH" ] || BENCH=$BUILD/dataplane/dp_bench
[ -x "$BENCH" ] || { echo "no $BENCH: build first (meson setup $BUILD -Dbuildtype=release; ninja -C $BUILD)"; exit 1; }
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing (apt-get install dpdk-dev)"; exit 1; }
WORK=$(mktemp -d /tmp/dds-dpbench.XXXXXX)
trap 'rm -rf "$WORK" /var/run/dpdk/ddsdb$$ /var/run/dpdk/ddstp$$' EXIT
TSV=$OUT_DIR/dataplane_bench.tsv
EAL="--no-huge -m 1536 --no-pci --log-level=lib.eal:error"
FRAGS=${FRAGS:-"256 1400 8900"}
REQS=${REQS:-"16384 262144"}

field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

# testpmd io forwarding on the capture: the median of its per-period Rx-pps figures.
testpmd_pps() {
	local pcap=$1 mbuf=$2
	timeout $((SECONDS_PER + 12)) dpdk-testpmd $EAL -l 0,1 --file-prefix ddstp$$ \
		--vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" -- --forward-mode=io --no-flush-rx \
		--stats-period 1 --total-num-mbufs=32768 --mbuf-size="$mbuf" --max-pkt-len=9200 -a \
		2>/dev/null | awk '/Rx-pps:/ && $2 > 0 {print $2}' | sort -n |
		awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'
}

printf "# machine: %s, %s cores; %s s per point; dds dataplane_bench; MAC by %s\n" \
	"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" "$SECONDS_PER" \
	"$("$BENCH" mac 1400 0.01 | field impl)"
printf "frag\treq\trps\tpps\tpayload_gbps\ttestpmd_pps\tmemcpy_pps\tmac_pps\tl2l4_pps\tpct_of_lower_limit\n" | tee "$TSV"
for frag in $FRAGS; do
	mbuf=$((frag < 1400 ? 2176 : frag + 400))
	tp=
	for req in $REQS; do
		pcap=$WORK/f${frag}_r${req}.pcap
		pkts=$("$BENCH" make-pcap "$pcap" "$frag" "$req" 4096) || exit 1
		if [ -z "$tp" ]; then
			tp=$(testpmd_pps "$pcap" "$mbuf")
			l4=$("$BENCH" run-l4 "$pkts" "$frag" "$req" "$SECONDS_PER" -- $EAL -l 0 \
				--file-prefix ddsdb$$ --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" 2>/dev/null |
				field pps)
		fi
		run=$("$BENCH" run "$pkts" "$frag" "$req" "$SECONDS_PER" -- $EAL -l 0 \
			--file-prefix ddsdb$$ --vdev "net_pcap0,rx_pcap=$pcap,infinite_rx=1" 2>/dev/null)
		mc=$("$BENCH" memcpy "$frag" "$req" "$SECONDS_PER")
		mac=$("$BENCH" mac "$frag" 1)
		pps=$(field pps <<< "$run")
		mpps=$(field pps <<< "$mc")
		lower=$(( ${tp%.*} < ${mpps%.*} ? ${tp%.*} : ${mpps%.*} ))
		pct=$(/usr/bin/python3 -c "print(f'{100 * $pps / max($lower, 1):.1f}')")
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$frag" "$req" "$(field rps <<< "$run")" \
			"$pps" "$(field gbps <<< "$run")" "$tp" "$mpps" "$(field pps <<< "$mac")" "$l4" "$pct" |
			tee -a "$TSV"
	done
done
echo "# target: >= 70% of the lower limit at 1400-byte fragments; mac_pps is the protocol's own ceiling"

# The table as a picture: per point, our rate beside its limits and ceilings (log scale).
if command -v gnuplot >/dev/null; then
	gnuplot <<-EOG && echo "plot: $OUT_DIR/dataplane_bench.png"
	set terminal pngcairo size 1000,560
	set output "$OUT_DIR/dataplane_bench.png"
	set title "One rx core, pcap replay: packets/s against the limits (${SECONDS_PER} s per point)"
	set style data histograms
	set style histogram clustered gap 1
	set style fill solid 0.8 border -1
	set logscale y
	set yrange [1e5:*]
	set ylabel "packets/s (log)"
	set xlabel "fragment size, request size" offset 0,-1
	set bmargin 5
	set key outside right
	set grid ytics
	set datafile separator "\t"
	set format y "%.0e"
	plot "$TSV" every ::1 using 4:xtic(sprintf("%s B\\n%d KiB", strcol(1), column(2) / 1024)) \
	     title "dds dataplane", "" every ::1 using 6 title "testpmd io", \
	     "" every ::1 using 7 title "memcpy", "" every ::1 using 8 title "MAC alone", \
	     "" every ::1 using 9 title "L2-L4 alone"
	EOG
fi
