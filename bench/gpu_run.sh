#!/bin/bash
# gpu_run.sh: the one command a GPU session runs: build with CUDA from .carry/, GPU tests, benchmarks.
#
#   bash bench/gpu_run.sh [all|build|test|bench|dry]      (default: all; logs under $OUT)
#
# Runs in the repository root of the lent GPU machine (docs/gpu.md: device tool, carry
# [".carry"] made here by deploy/gpu-carry.sh). Steps:
#   build  unpack .carry/debs into /tmp/dds-carry; pkg-config sees only those packages (pkgconf
#          with a sysroot); a CUDA root /tmp/dds-cudaroot of links to the toolkit's headers and
#          libraries, with cuDNN/cuBLAS from PyTorch's nvidia-* wheels where the toolkit lacks
#          them; meson setup build-gpu (-Dgpu=enabled -Ddpdk=disabled, release, no sanitizers,
#          werror off: another gcc may warn differently); ninja the GPU test and the benchmark
#   test   meson test --suite gpu (tests/gpu/test_backend_gpu.c), then the CPU backend's own
#          test (its cross-backend case also runs "cuda" where one starts)
#   bench  tail_bench --backend cuda --json; tail_torch.py on cuda (TF32 off, then on); compare
#   dry    build, then the gpu suite (which must skip where there is no GPU): the check that
#          runs on a machine without one
# Logs (at most 8 files, as the device tool returns): $OUT/gpu_run.log (everything),
# test_gpu.log, tail_cuda.jsonl, tail_torch.jsonl, tail_torch_tf32.jsonl, compare.txt.
set -uo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out/gpu-run}
STAGE=${1:-all}
ROOT=/tmp/dds-carry
CROOT=/tmp/dds-cudaroot
BUILD=${DDS_GPU_BUILD:-build-gpu}
PY=${DDS_PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_run.log") 2>&1

say() { echo "== gpu_run: $*"; }
die() { say "FAILED: $*"; exit 1; }

# Unpack the carried packages (dpkg-deb, or ar + tar where there is no dpkg).
unpack_carry() {
	ls .carry/debs/*.deb >/dev/null 2>&1 || die "no .carry/debs: run deploy/gpu-carry.sh here and carry .carry"
	rm -rf "$ROOT" && mkdir -p "$ROOT/bin"
	for f in .carry/debs/*.deb; do
		if command -v dpkg-deb >/dev/null; then
			dpkg-deb -x "$f" "$ROOT" || die "dpkg-deb -x $f"
		else
			rm -rf /tmp/dds-deb && mkdir -p /tmp/dds-deb && (cd /tmp/dds-deb && ar x "$OLDPWD/$f") &&
				tar -xf /tmp/dds-deb/data.tar.* -C "$ROOT" || die "unpack $f"
		fi
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
	export PATH=$ROOT/bin:$PATH:$ROOT/usr/bin PKG_CONFIG=$ROOT/bin/pkg-config
	RUN_LIBS=$lib:$lib/openblas-pthread
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

do_build() {
	unpack_carry
	cuda_root
	find_meson
	for p in jansson openblas check; do
		say "pkg-config $p: $(pkg-config --modversion $p) $(pkg-config --libs $p)" || die "pkg-config $p"
	done
	if [ ! -f $BUILD/build.ninja ]; then
		"${MESON[@]}" setup $BUILD -Dgpu=enabled -Ddpdk=disabled -Dgpu_cuda_root=$CROOT \
			--buildtype=release -Db_sanitize=none -Dwerror=false >"$OUT/build.log" 2>&1 ||
			{ tail -n 40 "$OUT/build.log"; die "meson setup (log: build.log)"; }
	fi
	grep -E "GPU backend|Check unit" "$OUT/build.log" 2>/dev/null || true
	ninja -C $BUILD -j"$(nproc)" tests/gpu/test_backend_gpu tests/scheduler/test_backend \
		bench/tail_bench >>"$OUT/build.log" 2>&1 ||
		{ tail -n 40 "$OUT/build.log"; die "ninja (log: build.log)"; }
	say "built"
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
}

say "stage $STAGE, $(date -u), $(uname -n), $(nproc) cores, OUT=$OUT"
case $STAGE in
all) do_build && { do_test; t=$?; do_bench; b=$?; exit $((t || b)); } ;;
build) do_build ;;
test) do_build && do_test ;;
bench) do_build && do_bench ;;
dry) do_build && do_test ;;
*) die "unknown stage $STAGE (all, build, test, bench, dry)" ;;
esac
