#!/usr/bin/env bash
# tests/fuzz/run.sh: the one runner of the libFuzzer targets: builds one with clang (ASan + UBSan) and runs it for a bounded time over its seeds; fails on any crash, leak or sanitizer report.
# usage: run.sh NAME SECONDS OUTDIR SEEDS [DICT|-] -- SOURCES... [-- CFLAGS/LIBS...]
# SEEDS: a folder of seed inputs, or a Python script that writes them into the folder it is given
# (run with /usr/bin/python3 into OUTDIR/NAME.seeds). Seeds are only read; the inputs the fuzzer
# finds go to OUTDIR/NAME.corpus (kept between runs) and crashes to OUTDIR/NAME-crash-*.
set -euo pipefail
name=$1 secs=$2 out=$3 seeds=$4 dict=$5
shift 5
[[ $1 == -- ]] && shift
srcs=()
while (($#)) && [[ $1 != -- ]]; do srcs+=("$1"); shift; done
(($#)) && shift
mkdir -p "$out/$name.corpus"
if [[ ! -d $seeds ]]; then
	rm -rf "$out/$name.seeds"
	/usr/bin/python3 "$seeds" "$out/$name.seeds"
	seeds=$out/$name.seeds
fi
if ! clang -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	"${srcs[@]}" "$@" -o "$out/$name"; then
	echo "run.sh: cannot build $name with -fsanitize=fuzzer (libclang-rt-dev missing?)"
	exit 1
fi
args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=6144 -print_final_stats=1
	-artifact_prefix="$out/$name-")
[[ $dict != - ]] && args+=(-dict="$dict")
echo "fuzzing $name for ${secs}s"
"$out/$name" "${args[@]}" "$out/$name.corpus" "$seeds" 2>&1 | tail -15
