#!/bin/bash
# test_agent_cli.sh: dds-agent without a node: every usage error exits 2, setup failures exit 3 with the step named, the calibration file is saved, reused, and remade when it does not match.
# usage: test_agent_cli.sh DDS_AGENT MODEL.json OTHER_MODEL.json
set -u
AGENT=$1 MODEL=$2 OTHER=$3
KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
WORK=$(mktemp -d /tmp/dds-agent-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Nothing listens on 127.0.0.1:9 (discard) here: REGISTER gets no answer.
BASE=(--server 127.0.0.1:9 --device-id 1 --key "$KEY" --model "$MODEL" --timeout-ms 30
      --retries 1)

expect() { # expect CODE PATTERN ARGS...: exit status and a line of stderr
	local code=$1 pat=$2
	shift 2
	"$AGENT" "$@" > "$WORK/out" 2> "$WORK/err"
	rc=$?
	[ "$rc" = "$code" ] || { cat "$WORK/err"; fail "exit $rc, want $code: $*"; }
	grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err"; fail "no '$pat' for: $*"; }
	echo "ok: exit $code, '$(grep -m1 -- "$pat" "$WORK/err")'"
}

"$AGENT" --help | grep -q "^usage: dds-agent" || fail "--help"
expect 2 "are required" --server 127.0.0.1
expect 2 "want IPv4" --server :9000 --device-id 1 --key "$KEY" --model "$MODEL"
expect 2 "1..65535" "${BASE[@]}" --server 127.0.0.1:0
expect 2 "want 64 hex digits" "${BASE[@]}" --key 00112233
expect 2 "want 64 hex digits" "${BASE[@]}" --key "${KEY%?}g"
echo "$KEY" > "$WORK/key"
echo "xyz" > "$WORK/badkey"
expect 2 "want 64 hex digits" "${BASE[@]}" --key-file "$WORK/badkey"
expect 2 "No such file" "${BASE[@]}" --key-file "$WORK/nokey"
expect 2 "want momentum or exact" "${BASE[@]}" --rule newton
expect 2 "finite number > 0" "${BASE[@]}" --x0 0
expect 2 "finite number > 0" "${BASE[@]}" --lambda nan
expect 2 "finite number > 0" "${BASE[@]}" --uplink-mbps -3
expect 2 "finite number > 0" "${BASE[@]}" --uplink-start-mbps 0
expect 2 "nothing to start an estimate from" "${BASE[@]}" --uplink-mbps 10 --uplink-start-mbps 5
expect 2 "integer in 0..1000000" "${BASE[@]}" --probe-every -1
expect 2 "576..65535" "${BASE[@]}" --mtu 100
expect 2 "integer in" "${BASE[@]}" --requests -1
expect 2 "integer in" "${BASE[@]}" --threads 0
expect 2 "integer in" "${BASE[@]}" --device-id 4294967296
expect 2 "exclude each other" "${BASE[@]}" --weights "$WORK/w" --seed 3
expect 2 "unexpected argument" "${BASE[@]}" extra
expect 3 "init step 'model' failed" "${BASE[@]}" --model "$WORK/none.json"
expect 3 "init step 'link' failed" "${BASE[@]}" --server 300.1.1.1
expect 3 "init step 'calibration' failed" "${BASE[@]}" --calibration "$WORK/nodir/cal.txt"

# Calibration happens before the link: saved, reused, remade for another model or thread count.
expect 3 "init step 'register' failed: no REGISTER_REPLY" "${BASE[@]}" --key-file "$WORK/key" \
	--calibration "$WORK/cal.txt"
grep -q "calibration: measured .* saved to $WORK/cal.txt" "$WORK/err" || fail "not saved"
n=$(grep -vc '^#' "$WORK/cal.txt")
[ "$n" -gt 0 ] || fail "empty calibration file"
expect 3 "calibration: reused $WORK/cal.txt" "${BASE[@]}" --calibration "$WORK/cal.txt"
expect 3 "made for hash" "${BASE[@]}" --calibration "$WORK/cal.txt" --model "$OTHER"
grep -q "saved to" "$WORK/err" || fail "not remade for another model"
expect 3 "calibration: measured" "${BASE[@]}" --calibration "$WORK/cal.txt" --threads 2
head -1 "$WORK/cal.txt" > "$WORK/cal2.txt"
echo "nosuchlayer 1e-3" >> "$WORK/cal2.txt"
expect 3 "bad line 'nosuchlayer" "${BASE[@]}" --calibration "$WORK/cal2.txt" --threads 2
{ cat "$WORK/cal2.txt"; tail -1 "$WORK/cal2.txt"; } > "$WORK/cal3.txt" # a layer twice
expect 3 "bad line" "${BASE[@]}" --calibration "$WORK/cal3.txt" --threads 2
echo "PASS"
