#!/bin/sh
# fuzz.sh: builds fuzz_proto with clang's libFuzzer + ASan + UBSan and runs it for a bounded time.
# Usage: fuzz.sh SOURCE_ROOT BUILD_DIR [SECONDS]. Exits 77 (meson: skipped) without clang/libFuzzer.
set -eu
src=$1
out=$2/fuzz
secs=${3:-30}
command -v clang >/dev/null 2>&1 || { echo "fuzz.sh: clang not found: skipped"; exit 77; }
mkdir -p "$out/corpus"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
libs=$(pkg-config --cflags --libs libsodium jansson)
# shellcheck disable=SC2086
if ! clang $flags -I"$src/protocol" -I"$src/model" "$src"/protocol/*.c "$src"/model/*.c \
	"$src/tests/protocol/fuzz_proto.c" $libs -lm -o "$out/fuzz_proto"; then
	echo "fuzz.sh: cannot build with -fsanitize=fuzzer (libclang-rt-14-dev missing?)"
	exit 1
fi
/usr/bin/python3 "$src/tests/protocol/fuzz_seeds.py" "$out/seeds"
# New inputs go to corpus/ (kept between runs in the build dir); seeds/ is read only.
exec "$out/fuzz_proto" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$out/" "$out/corpus" "$out/seeds"
