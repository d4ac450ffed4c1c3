#!/usr/bin/env bash
# test_cli.sh: dds-partition's command line: the JSON keys and their sums, the envelope agreeing
# with a direct min-cut, the plot, and clear errors with non-zero exits.
# usage: test_cli.sh DDS_PARTITION_BINARY   (run through $MESON_EXE_WRAPPER when meson sets it)
set -u
read -r -a wrap <<<"${MESON_EXE_WRAPPER:-}"
tool=("${wrap[@]}" "$1")
src=${DDS_SOURCE_ROOT:?}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect CODE PATTERN ARGS...: exit status CODE and stderr matching PATTERN
expect() {
    local code=$1 pat=$2; shift 2
    "${tool[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [[ $rc == "$code" ]] && grep -qE -- "$pat" "$tmp/err"; then ok; else
        ko "dds-partition $* -> exit $rc (want $code), stderr: $(head -c 300 "$tmp/err") (want /$pat/)"
    fi
}

model=$src/tests/model/corpus/small_resnet.json
base=(--model "$model" --uplink-mbps 5.85 --device-gflops 12)

# JSON: the keys, T = T_e + T_t + T_s, T_s = W / r; the envelope's piece at r gives the same T.
if "${tool[@]}" "${base[@]}" --r-gflops 100 --json --envelope --baselines >"$tmp/j" 2>"$tmp/err"; then
    if $py - "$tmp/j" <<'PY'
import json, math, sys
j = json.load(open(sys.argv[1]))
for k in ("local_layers", "cut_tensors", "t_edge", "t_transfer", "t_server", "total", "server_work"):
    assert k in j, k
close = lambda a, b: abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300)
assert close(j["total"], j["t_edge"] + j["t_transfer"] + j["t_server"])
assert close(j["t_server"], j["server_work"] / j["r"])
piece = [p for p in j["envelope"] if p["r_lo"] <= j["r"] < (p["r_hi"] or math.inf)]
assert len(piece) == 1
assert close(piece[0]["a"] + piece[0]["w"] / j["r"], j["total"])
b = j["baselines"]
assert all(j["total"] <= b[k]["total"] * (1 + 1e-9) for k in b)
PY
    then ok; else ko "JSON output checks"; fi
else
    ko "dds-partition --json: $(cat "$tmp/err")"
fi

# Text output names the split and the breakdown.
"${tool[@]}" "${base[@]}" --r-gflops 100 >"$tmp/t" 2>&1 && grep -q "T_e" "$tmp/t" &&
    grep -q "cut tensors" "$tmp/t" && ok || ko "text output: $(head -c 300 "$tmp/t")"

# A profile file replaces the local times.
$py - "$model" "$tmp/prof" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for l in m["layers"]:
        f.write(f"{l['name']} 0.001\n")
PY
"${tool[@]}" --model "$model" --uplink-mbps 5.85 --profile "$tmp/prof" --r-gflops 100 --json \
    >"$tmp/pj" 2>"$tmp/err" && ok || ko "--profile: $(cat "$tmp/err")"

# The plot is a PNG.
if command -v gnuplot >/dev/null; then
    "${tool[@]}" "${base[@]}" --envelope --plot "$tmp/t.png" >/dev/null 2>"$tmp/err" &&
        [[ $(head -c 4 "$tmp/t.png" | od -An -c | tr -d ' ') == *PNG* ]] && ok ||
        ko "--plot: $(cat "$tmp/err")"
fi

echo "bogus 1" >"$tmp/badprof"
expect 2 "--model FILE is required" --uplink-mbps 1 --device-gflops 1 --r-gflops 1
expect 2 "--uplink-mbps B is required" --model "$model" --device-gflops 1 --r-gflops 1
expect 2 "--device-gflops C or --profile" --model "$model" --uplink-mbps 1 --r-gflops 1
expect 2 "--r-gflops R is required" "${base[@]}"
expect 2 "--uplink-mbps: expected a positive number, got 'abc'" --model "$model" --uplink-mbps abc
expect 2 "--r-gflops: expected a positive number, got '-3'" "${base[@]}" --r-gflops -3
expect 2 "unknown option" "${base[@]}" --r-gflops 1 --frobnicate
expect 2 "--plot needs --envelope" "${base[@]}" --r-gflops 1 --plot x.png
expect 1 "$tmp/none.json: cannot open" --model "$tmp/none.json" --uplink-mbps 1 --device-gflops 1 --r-gflops 1
expect 1 "no layer 'bogus'" --model "$model" --uplink-mbps 1 --profile "$tmp/badprof" --r-gflops 1
expect 1 "allocation r|too large" "${base[@]}" --r-gflops 1e-300

echo "test_cli: $pass passed, $fail failed"
((fail == 0))
