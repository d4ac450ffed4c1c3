#!/bin/bash
# gpu_run.sh: the one command a GPU session runs: build with CUDA from .carry/, GPU tests, benchmarks.
#
#   bash bench/gpu_run.sh [all|build|test|bench|serve|dry]   (default: all; logs under $OUT)
#
# Runs in the repository root of the lent GPU machine (docs/gpu.md: device tool, carry
# [".carry"] made here by deploy/gpu-carry.sh). Steps:
#   build  unpack .carry/debs into /opt/dds-carry; pkg-config sees only those packages (pkgconf
#          with a sysroot; the DPDK .pc files trimmed to the libraries carried); a CUDA root
#          /tmp/dds-cudaroot of links to the toolkit's headers and libraries, with cuDNN/cuBLAS
#          from PyTorch's nvidia-* wheels where the toolkit lacks them; meson setup build-gpu
#          (-Dgpu=enabled -Ddpdk=disabled, release, no sanitizers, werror off: another gcc may
#          warn differently); ninja the GPU test and the benchmarks
#   test   meson test --suite gpu (tests/gpu/test_backend_gpu.c), then the CPU backend's own
#          test (its cross-backend case also runs "cuda" where one starts)
#   bench  tail_bench --backend cuda --json; tail_torch.py on cuda (TF32 off, then on); compare;
#          merge_bench --backend cuda --json (two splits as separate batches vs merged: a
#          measurement, fails the step only on an error or merged results off the separate ones)
#   serve  as build, but build-gpu-serve with -Ddpdk=enabled: dds-server, dds-ctl, dds-loadgen;
#          then bench/serve_bench.sh (as root: veth pair, network namespace) with 100 devices,
#          the CUDA backend, the worker on CPU 2 and the loadgen on CPUs 4..N-1 (N >= 8 CPUs;
#          else anywhere), the rx lcore on CPU 0 (serve_bench.sh's own); then the same
#          with ZOO (one device in 100 sends ResNet50), one mode and rate. Environment (for a
#          check on a machine without a GPU): DDS_SERVE_BACKEND (cuda), DDS_SERVE_MODES
#          ("50 0:50 inline"), DDS_SERVE_RATES ("1000 5000"), DDS_SERVE_SECONDS (5),
#          DDS_SERVE_ZOO (zoo/resnet50.json; empty: no zoo run)
#   dry    build, then the gpu suite (which must skip where there is no GPU): the check that
#          runs on a machine without one
# Logs (a few files per call, as the device tool returns them): $OUT/gpu_run.log (everything),
# build.log, test_gpu.log, tail_cuda.jsonl, tail_torch.jsonl, tail_torch_tf32.jsonl,
# compare.txt, merge_cuda.jsonl; serve: serve.log (serve_bench's table), serve_bench.json,
# zoo/serve.log, zoo/serve_bench.json.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/out/gpu-run}
STAGE=${1:-all}
# The sysroot is not under /tmp: EAL refuses to load a driver whose path has a world-writable
# directory in it ("directory path /tmp is world-writable and insecure").
ROOT=${DDS_CARRY_ROOT:-/opt/dds-carry}
CROOT=/tmp/dds-cudaroot
BUILD=${DDS_GPU_BUILD:-build-gpu}
SERVE_BUILD=$BUILD-serve
PY=${DDS_PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_run.log") 2>&1

say() { echo "== gpu_run: $*"; }
die() { say "FAILED: $*"; exit 1; }

# Unpack .deb $1 into folder $2 (dpkg-deb, or ar + tar where there is no dpkg).
unpack_deb() {
	if command -v dpkg-deb >/dev/null; then
		dpkg-deb -x "$1" "$2" || die "dpkg-deb -x $1"
	else
		rm -rf /tmp/dds-deb && mkdir -p /tmp/dds-deb && (cd /tmp/dds-deb && ar x "$OLDPWD/$1") &&
			tar -xf /tmp/dds-deb/data.tar.* -C "$2" || die "unpack $1"
	fi
}

# Unpack the carried packages into the sysroot $ROOT.
unpack_carry() {
	ls .carry/debs/*.deb >/dev/null 2>&1 || die "no .carry/debs: run deploy/gpu-carry.sh here and carry .carry"
	rm -rf "$ROOT" && mkdir -p "$ROOT/bin"
	for f in .carry/debs/*.deb; do
		unpack_deb "$f" "$ROOT"
	done
	local lib=$ROOT/usr/lib/x86_64-linux-gnu
	# A pkg-config that knows only the carried .pc files, their paths moved under $ROOT.
	cat >"$ROOT/bin/pkg-config" <<-EOF
	#!/bin/sh
	export PKG_CONFIG_SYSROOT_DIR=$ROOT
	export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$lib/openblas-pthread/pkgconfig:$ROOT/usr/share/pkgconfig
	LD_LIBRARY_PATH=$lib exec $ROOT/usr/bin/pkgconf "\$@"
	EOF
	chmod +x "$ROOT/bin/pkg-config"
	trim_pc "$lib"
	export PATH=$ROOT/bin:$PATH:$ROOT/usr/bin PKG_CONFIG=$ROOT/bin/pkg-config
	RUN_LIBS=$lib:$lib/openblas-pthread
}

# The carried .pc files under $1/pkgconfig, made to fit what is carried: libdpdk-libs.pc keeps
# only the -lrte_ libraries present (a few of ~50: the linker fails on a missing one, and
# --as-needed keeps only what dds-server uses); libdpdk.pc loses its Requires.private and
# Libs.private (static linking only: ~370 drivers and ibverbs, xdp, isal...); OpenSSL's .pc
# files gain the multiarch include dir (x86_64-linux-gnu/openssl/configuration.h), which
# Debian's gcc searches by default and another gcc does not.
trim_pc() {
	local pc=$1/pkgconfig keep='' l
	[ -f "$pc/libdpdk-libs.pc" ] || return 0
	for l in $(sed -n 's/^Libs: //p' "$pc/libdpdk-libs.pc"); do
		case $l in -lrte_*) [ -e "$1/lib${l#-l}.so" ] || continue ;; esac
		keep="$keep $l"
	done
	sed -i "s|^Libs: .*|Libs:$keep|" "$pc/libdpdk-libs.pc"
	sed -i '/^Requires.private:/d; /^Libs.private:/d' "$pc/libdpdk.pc"
	sed -i 's|^Cflags: .*|& -I${includedir}/x86_64-linux-gnu|' "$pc"/libcrypto.pc "$pc"/libssl.pc
}

# The folder of the nvidia-* wheel (under site-packages/nvidia/, any layout: cudnn/, cu13/, ...)
# whose include/ holds header $1, or nothing.
wheel_dir() {
	"$PY" - "$1" <<-'EOF' 2>/dev/null | head -n 1
	import glob, os, sys
	import nvidia
	for d in nvidia.__path__:
	    for h in sorted(glob.glob(os.path.join(d, "**", "include", sys.argv[1]), recursive=True)):
	        print(os.path.dirname(os.path.dirname(h)))
	EOF
}

# /tmp/dds-cudaroot/{include,lib64}: links to the toolkit's files, then the wheels' cuDNN and
# cuBLAS where the toolkit has none, and unversioned .so links where only .so.N exist.
cuda_root() {
	local nvcc home
	nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null) || die "no nvcc"
	home=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
	export PATH=$(dirname "$nvcc"):$PATH
	rm -rf "$CROOT" && mkdir -p "$CROOT/include" "$CROOT/lib64"
	ln -sf "$home"/include/* "$CROOT/include/"
	ln -sf "$home"/lib64/* "$CROOT/lib64/" 2>/dev/null || ln -sf "$home"/targets/x86_64-linux/lib/* "$CROOT/lib64/"
	for hdr in cudnn.h cublas_v2.h cuda_runtime_api.h; do
		[ -e "$CROOT/include/$hdr" ] && continue
		local d
		d=$(wheel_dir $hdr) || true
		[ -n "$d" ] || die "no $hdr in $home nor in an nvidia-* wheel"
		say "$hdr from the wheel in $d"
		ln -s "$d"/include/* "$CROOT/include/" 2>/dev/null
		ln -s "$d"/lib*/* "$CROOT/lib64/" 2>/dev/null
		[ -e "$CROOT/include/$hdr" ] || die "linking $d failed"
	done
	for l in cudart cudnn cublas cublasLt; do
		[ -e "$CROOT/lib64/lib$l.so" ] && continue
		local v
		v=$(ls "$CROOT/lib64/lib$l.so."* 2>/dev/null | sort -V | tail -n 1)
		[ -n "$v" ] && ln -sf "$v" "$CROOT/lib64/lib$l.so"
	done
	RUN_LIBS=$RUN_LIBS:$CROOT/lib64
	say "nvcc $(nvcc --version | tail -n 1); CUDA root $CROOT from $home"
}

# meson and ninja: the machine's, else the carried Debian ones.
find_meson() {
	if command -v meson >/dev/null; then
		MESON=(meson)
	elif "$PY" -c "import mesonbuild" 2>/dev/null; then
		MESON=("$PY" -m mesonbuild.mesonmain)
	else
		MESON=(env PYTHONPATH=$ROOT/usr/lib/python3/dist-packages "$PY" "$ROOT/usr/bin/meson")
	fi
	command -v ninja >/dev/null || die "no ninja"
	say "meson $("${MESON[@]}" --version), ninja $(ninja --version)"
}

# Configure build dir $1 (-Ddpdk=$2) if it is new, then ninja targets $3...: logs in build.log.
build_dir() {
	local dir=$1 dpdk=$2 t0=$SECONDS
	shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		"${MESON[@]}" setup "$dir" -Dgpu=enabled -Ddpdk="$dpdk" -Dgpu_cuda_root=$CROOT \
			--buildtype=release -Db_sanitize=none -Dwerror=false >>"$OUT/build.log" 2>&1 ||
			{ tail -n 40 "$OUT/build.log"; die "meson setup $dir (log: build.log)"; }
	fi
	grep -E "GPU backend|DPDK dataplane|libcrypto|Check unit" "$OUT/build.log" 2>/dev/null || true
	# the linker looks for the carried libraries' own dependencies (libnuma...) there
	LD_LIBRARY_PATH=$RUN_LIBS ninja -C "$dir" -j"$(nproc)" "$@" >>"$OUT/build.log" 2>&1 ||
		{ tail -n 40 "$OUT/build.log"; die "ninja $dir (log: build.log)"; }
	say "built in $dir in $((SECONDS - t0)) s: $*"
}

# Unpack, link the CUDA root, find meson; pkg-config must find packages $@.
prepare() {
	unpack_carry
	cuda_root
	find_meson
	for p in "$@"; do
		pkg-config --exists "$p" || die "pkg-config $p: not in .carry (run deploy/gpu-carry.sh)"
		say "pkg-config $p: $(pkg-config --modversion "$p") $(pkg-config --libs "$p")"
	done
}

do_build() {
	prepare jansson openblas check
	build_dir "$BUILD" disabled tests/gpu/test_backend_gpu tests/scheduler/test_backend \
		bench/tail_bench bench/merge_bench
}

do_test() {
	command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
	LD_LIBRARY_PATH=$RUN_LIBS "${MESON[@]}" test -C $BUILD --suite gpu --no-rebuild -v \
		--print-errorlogs --timeout-multiplier 2 >"$OUT/test_gpu.log" 2>&1
	local rc=$?
	grep -E "^(GPU|SKIP)|err / max abs ref|gpu 4096|no CUDA graph|Checks|Ok:|Fail:|Skipped:" "$OUT/test_gpu.log"
	[ $rc -eq 0 ] || say "the gpu suite FAILED (rc $rc): test_gpu.log"
	# meson counts a skip (exit 77) as a pass: on a machine with a GPU it is a failure
	if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 &&
		grep -q "^SKIP" "$OUT/test_gpu.log"; then
		say "the gpu suite SKIPPED on a machine with a GPU: test_gpu.log"
		rc=1
	fi
	[ "$STAGE" = dry ] && return $rc
	say "the CPU backend's test (its every_op_every_backend case runs cuda too)"
	LD_LIBRARY_PATH=$RUN_LIBS DDS_SOURCE_ROOT=$PWD CK_FORK=no $BUILD/tests/scheduler/test_backend 2>&1 | tail -n 15
	return $rc
}

do_bench() {
	LD_LIBRARY_PATH=$RUN_LIBS DDS_SOURCE_ROOT=$PWD $BUILD/bench/tail_bench --backend cuda --json \
		>"$OUT/tail_cuda.jsonl" || die "tail_bench (see above)"
	say "tail_bench done: $(grep -c batch "$OUT/tail_cuda.jsonl") rows"
	PYTHONUNBUFFERED=1 "$PY" bench/tail_torch.py run "$OUT/tail_cuda.jsonl" --device cuda \
		>"$OUT/tail_torch.jsonl" || die "tail_torch.py"
	PYTHONUNBUFFERED=1 "$PY" bench/tail_torch.py run "$OUT/tail_cuda.jsonl" --device cuda --tf32 \
		>"$OUT/tail_torch_tf32.jsonl" || die "tail_torch.py --tf32"
	{
		echo "### ours (cuda) vs PyTorch eager, TF32 off in both"
		"$PY" bench/tail_torch.py compare "$OUT/tail_cuda.jsonl" "$OUT/tail_torch.jsonl"
		echo "### ours (cuda, TF32 off) vs PyTorch eager with TF32 on"
		"$PY" bench/tail_torch.py compare "$OUT/tail_cuda.jsonl" "$OUT/tail_torch_tf32.jsonl"
	} >"$OUT/compare.txt"
	cat "$OUT/compare.txt"
	do_merge_bench
}

# merge_bench on CUDA into merge_cuda.jsonl, one summary line per (model, N). Merging slower is
# a figure, not a failure; an error or a result mismatch (merge_bench exits 1) is.
do_merge_bench() {
	LD_LIBRARY_PATH=$RUN_LIBS DDS_SOURCE_ROOT=$PWD $BUILD/bench/merge_bench --backend cuda --json \
		>"$OUT/merge_cuda.jsonl"
	local rc=$?
	"$PY" -c 'import json, sys
for r in map(json.loads, open(sys.argv[1])):
    if "batch" in r:
        print("== gpu_run: merge %s %s+%s N %d: separate %.3f ms, merged %.3f ms, ratio %.3f"
              " (>1: merging faster), max_err %.2e of %.2e %s"
              % (r["model"], r["cut_a"], r["cut_m"], r["batch"], r["sep_med_ms"],
                 r["mrg_med_ms"], r["ratio"], r["max_err"], r["out_scale"],
                 "ok" if r["ok"] else "MISMATCH"))' "$OUT/merge_cuda.jsonl"
	[ $rc -eq 0 ] || say "merge_bench FAILED (rc $rc): an error or a mismatch above; merge_cuda.jsonl"
	return $rc
}

do_serve_build() {
	prepare jansson openblas libdpdk libcrypto
	build_dir "$SERVE_BUILD" enabled server/dds-server server/dds-ctl loadgen/dds-loadgen
}

# EAL loads every driver in its built-in directory (RTE_EAL_PMD_PATH: Debian's
# /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0) and fails to start if one cannot load; serve_bench.sh
# passes no -d. On a machine without that directory, make it, with links to the carried drivers
# only (vdev bus, PCI bus, ring mempool, af_packet); an existing one is left alone.
pmd_dir() {
	local d f
	d=$(sed -n 's/^#define RTE_EAL_PMD_PATH "\(.*\)"$/\1/p' \
		"$ROOT/usr/include/x86_64-linux-gnu/dpdk/rte_build_config.h")
	[ -n "$d" ] || die "no RTE_EAL_PMD_PATH in the carried rte_build_config.h"
	if [ -d "$d" ]; then
		say "EAL driver directory $d exists: used as it is"
		return 0
	fi
	mkdir -p "$d" || die "mkdir $d"
	for f in "$ROOT$d"/*; do # EAL opens the names ending .so or .so.23.0 (its ABI_VERSION)
		[ -e "$f" ] && ln -s "$f" "$d/"
	done
	say "EAL driver directory $d made: $(ls "$d" | tr '\n' ' ')"
}

# The carried iproute2 (.carry/iproute2) as "ip" on PATH, for a machine without one. Unpacked
# apart from the sysroot: its libraries (libbpf, libelf, libcap, libmnl, zlib) reach only it and
# what it runs (ip netns exec), never another program's LD_LIBRARY_PATH.
carried_ip() {
	local d=$ROOT/iproute2 f
	ls .carry/iproute2/*.deb >/dev/null 2>&1 || die "serve needs ip (iproute2); no .carry/iproute2"
	rm -rf "$d" && mkdir -p "$d"
	for f in .carry/iproute2/*.deb; do
		unpack_deb "$f" "$d"
	done
	cat >"$ROOT/bin/ip" <<-EOF
	#!/bin/sh
	libs=$d/lib/x86_64-linux-gnu:$d/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu
	LD_LIBRARY_PATH=\$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec $d/bin/ip "\$@"
	EOF
	chmod +x "$ROOT/bin/ip"
	"$ROOT/bin/ip" -V >/dev/null || die "the carried ip does not run"
	say "no ip on this machine: the carried one, $("$ROOT/bin/ip" -V)"
}

# What serve_bench.sh needs besides the build: root, ip (network namespace, veth pair; the
# carried one where the machine has none), taskset, and /usr/bin/python3 (standard library
# only; linked to $PY where there is none).
serve_needs() {
	[ "$(id -u)" = 0 ] || die "serve needs root"
	command -v taskset >/dev/null || die "serve needs taskset (util-linux)"
	command -v ip >/dev/null || carried_ip
	if [ ! -x /usr/bin/python3 ]; then
		ln -s "$(command -v "$PY")" /usr/bin/python3 || die "no /usr/bin/python3"
		say "/usr/bin/python3 -> $(command -v "$PY")"
	fi
}

# serve_bench.sh with the environment's settings; $1: output folder, $2: ZOO, then MODES, RATES.
serve_run() {
	local n lg='' wcpu=''
	n=$(nproc)
	[ "$n" -ge 8 ] && lg=4-$((n - 1)) wcpu=2
	mkdir -p "$1"
	say "serve_bench: backend ${DDS_SERVE_BACKEND:-cuda}, modes '$3', rates '$4', zoo '$2'," \
		"worker CPU ${wcpu:-any}, loadgen CPUs ${lg:-any}"
	LD_LIBRARY_PATH=$RUN_LIBS BACKEND=${DDS_SERVE_BACKEND:-cuda} WORKER_CPU=$wcpu LG_CPUS=$lg \
		ZOO=$2 MODES=$3 RATES=$4 OUT_DIR=$1 \
		bash bench/serve_bench.sh "$SERVE_BUILD" "${DDS_SERVE_SECONDS:-5}" | tee "$1/serve.log" ||
		return 1
	# which backend computed, from dds-ctl sched (a failed cuda start stops serve_bench.sh)
	/usr/bin/python3 -c 'import json, sys
for r in json.load(open(sys.argv[1])):
    s = r["sched"]
    print("== gpu_run: %s at %s/s: backend %s, %d batches, exec_failed %d"
          % (r["mode"], r["rate"], s["backend"], s["batches"], s["exec_failed"]))' \
		"$1/serve_bench.json" | tee -a "$1/serve.log"
}

do_serve() {
	serve_needs
	pmd_dir
	serve_run "$OUT" "" "${DDS_SERVE_MODES:-50 0:50 inline}" "${DDS_SERVE_RATES:-1000 5000}" ||
		die "serve_bench.sh (above)"
	local zoo=${DDS_SERVE_ZOO-zoo/resnet50.json}
	[ -n "$zoo" ] || return 0
	serve_run "$OUT/zoo" "$zoo" 50 1000 || die "serve_bench.sh with ZOO=$zoo (above)"
}

say "stage $STAGE, $(date -u), $(uname -n), $(nproc) cores, OUT=$OUT"
case $STAGE in
all) do_build && { do_test; t=$?; do_bench; b=$?; exit $((t || b)); } ;;
build) do_build ;;
test) do_build && do_test ;;
bench) do_build && do_bench ;;
serve) do_serve_build && do_serve ;;
dry) do_build && do_test ;;
*) die "unknown stage $STAGE (all, build, test, bench, serve, dry)" ;;
esac
