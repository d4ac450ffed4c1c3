#!/usr/bin/env bash
# test_cli.sh: dds-model's command line: JSON output keys, and clear errors with non-zero exits.
# usage: test_cli.sh DDS_MODEL_BINARY
set -u
tool=$1
src=${DDS_SOURCE_ROOT:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect CODE PATTERN CMD...: exit status CODE and stderr matching PATTERN
expect() {
    local code=$1 pat=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [[ $rc == "$code" ]] && grep -qE -- "$pat" "$tmp/err"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $* -> exit $rc (want $code), stderr: $(head -c 300 "$tmp/err") (want /$pat/)"
    fi
}

good=$src/tests/model/corpus/small_resnet.json
echo '{"format": "dds-model/1", ' >"$tmp/trunc.json"
expect 1 "$tmp/none.json: cannot open" "$tool" info "$tmp/none.json"
expect 1 "trunc.json:[0-9]+:[0-9]+: invalid JSON" "$tool" info "$tmp/trunc.json"
expect 2 "usage" "$tool" frobnicate "$good"
expect 2 "usage" "$tool"
expect 2 "--batch must be an integer" "$tool" run "$good" --batch 0
expect 2 "--kernels must be fast or ref" "$tool" run "$good" --kernels turbo
expect 1 "nope.ddsw: cannot open weights" "$tool" run "$good" --weights "$tmp/nope.ddsw"
head -c 100 /dev/urandom >"$tmp/in.bin"
expect 1 "expected exactly 192 float32" "$tool" run "$good" --input "$tmp/in.bin"
sed 's/"relu"/"rleu"/' "$src/tests/model/corpus/small_resnet.json" >"$tmp/badop.json"
expect 1 "layer 'c1': attribute 'act'" "$tool" info "$tmp/badop.json"

# info --json carries the documented keys and agrees with the text table's layer count
if "$tool" info "$good" --json >"$tmp/info.json" &&
   /usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert all(k in j for k in ("vertices", "edges", "gflops", "gmacs", "layers")), j.keys()
assert j["vertices"] == len(j["layers"]) == 7 and j["edges"] == 8
assert abs(sum(l["flops"] for l in j["layers"]) / 1e9 - j["gflops"]) < 1e-9
' "$tmp/info.json"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: info --json"; fi

# run writes exactly batch x output floats
if "$tool" run "$good" --batch 3 --output "$tmp/out.bin" >/dev/null &&
   [[ $(stat -c %s "$tmp/out.bin") == $((3 * 5 * 4)) ]]; then pass=$((pass + 1))
else fail=$((fail + 1)); echo "FAIL: run --output size"; fi

echo "$pass passed, $fail failed"
((fail == 0))
