#!/usr/bin/env bash
# tests/fuzz/run.sh: builds one libFuzzer target with clang (ASan + UBSan) and runs it for a
# bounded time over a seed corpus; fails on any crash, leak or sanitizer report.
# usage: run.sh NAME SECONDS OUTDIR CORPUS_DIR [DICT|-] -- SOURCES... [-- CFLAGS/LIBS...]
set -euo pipefail
name=$1 secs=$2 out=$3 corpus=$4 dict=$5
shift 5
[[ $1 == -- ]] && shift
srcs=()
while (($#)) && [[ $1 != -- ]]; do srcs+=("$1"); shift; done
(($#)) && shift
mkdir -p "$out/$name.corpus"
cp -n "$corpus"/* "$out/$name.corpus/" 2>/dev/null || true
clang -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "${srcs[@]}" "$@" -o "$out/$name"
args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=6144 -print_final_stats=1)
[[ $dict != - ]] && args+=(-dict="$dict")
echo "fuzzing $name for ${secs}s"
"$out/$name" "${args[@]}" "$out/$name.corpus" 2>&1 | tail -15
