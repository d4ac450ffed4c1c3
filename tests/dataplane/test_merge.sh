#!/bin/bash
# test_merge.sh: dds-server with models[].merge_at: two devices send five splits of tiny_cnn at once; the splits whose tail holds the meet tail share one batch (bridges first), results bit-exact, dds-ctl sched counts it, dds-ctl splits lists the splits and dds-model meet finds the same merge_at from them.
# usage: test_merge.sh SERVER CTL CLIENT MODEL DDS_MODEL (tiny_cnn: conv1 pool1 conv2a conv2b add gap flat fc)
set -u
SERVER=$1 CTL=$2 CLIENT=$3 MODEL=$4 DDS_MODEL=$5 KIND=af_packet
. "$(dirname "$0")/lib_veth.sh"
veth_setup
REPS=6
client() { ip netns exec "$NS" "$CLIENT" --server "$SERVER_IP" --key "$KEY" --model "$MODEL" --reps $REPS "$@"; }
sched() { "$CTL" -p "$PREFIX" sched | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['/dds/sched']['$1'])"; }

# Meet at the add: its tail is gap, flat, fc. Device 1 sends the cuts after conv1 and after
# conv2a (pool1 and conv2a: pool1 passes through its bridge to conv2b), device 2 the cuts after
# conv2b (conv2a, conv2b), after the add (the meet split itself) and after gap (a tail without
# the gap: its own group). Batches of 2 wait up to 50 ms for company, so the two devices, one
# request outstanding each, mostly share a batch.
MODEL_OPTS='"merge_at": ["add"], "max_batch": 2, "max_delay_us": 50000'
server_start ''
client --device 1 --split 1,3 > "$WORK/d1.out" 2>&1 &
P1=$!
client --device 2 --split 4,5,6 > "$WORK/d2.out" 2>&1 ||
	{ cat "$WORK/d2.out"; fail "device 2: results not exact"; }
wait "$P1" || { cat "$WORK/d1.out"; fail "device 1: results not exact"; }
cat "$WORK/d1.out" "$WORK/d2.out"
"$CTL" -p "$PREFIX" sched
merged=$(sched merged) mixed=$(sched mixed_batches) b2=$(sched batches_2)
echo "groups $(sched groups), plans $(sched plans), bridge_plans $(sched bridge_plans), merged $merged, mixed_batches $mixed, batches of 2: $b2"
[ "$(counter req_served)" = $((5 * REPS)) ] || fail "req_served $(counter req_served), want $((5 * REPS))"
[ "$(sched groups)" = 2 ] || fail "groups $(sched groups), want 2 (the meet group, the gap split's)"
[ "$(sched bridge_plans)" = 3 ] || fail "bridge_plans $(sched bridge_plans), want 3"
[ "$(sched plans)" = 5 ] || fail "plans $(sched plans), want 5 (3 bridges, the meet tail, the gap split's tail)"
[ "$merged" = $((3 * REPS)) ] || fail "merged $merged, want $((3 * REPS))"
[ "$mixed" -ge 1 ] || fail "no batch mixed splits"
[ "$b2" -ge 1 ] || fail "no batch of 2"
[ "$(sched exec_failed)" = 0 ] || fail "exec_failed $(sched exec_failed)"
# dds-ctl splits: the five splits, REPS requests each, four in the meet group (one of them the
# meet split itself, not bridged), the gap split on its own; and dds-model meet, given the four
# meet-group splits as listed, names the same merge_at.
"$CTL" -p "$PREFIX" splits > "$WORK/splits.json" || fail "dds-ctl splits"
meet_args=$(/usr/bin/python3 - "$WORK/splits.json" "$REPS" <<'EOP') || fail "dds-ctl splits: $(cat "$WORK/splits.json")"
import json, sys
d = json.load(open(sys.argv[1]))["/dds/splits"]; reps = int(sys.argv[2])
sp = [{f: d["split%d_%s" % (i, f)] for f in ("model", "values", "group", "bridged", "requests")}
      for i in range(d["shown"])]
for s in sp:
    print(s, file=sys.stderr)
assert d["splits"] == 5 and len(sp) == 5, d
assert all(s["model"] == "tiny_cnn" and s["requests"] == reps for s in sp), sp
meet = [s for s in sp if s["group"] == "meet"]
assert len(meet) == 4 and sum(s["bridged"] for s in meet) == 3, sp
assert [s["values"] for s in sp if s["group"] == "own"] == ["gap"], sp
assert [s["values"] for s in meet if not s["bridged"]] == ["add"], sp
print(" ".join(s["values"] for s in meet))
EOP
"$DDS_MODEL" meet "$MODEL" $meet_args | tee "$WORK/meet.txt"
grep -qx 'merge_at: \["add"\]' "$WORK/meet.txt" || fail "dds-model meet on the listed splits: not [\"add\"]"
server_stop

# Without merge_at (the default) the same traffic forms one group per split, no bridges.
MODEL_OPTS='"max_batch": 2, "max_delay_us": 50000'
server_start ''
client --device 1 --split 1,3 > "$WORK/d1.out" 2>&1 &
P1=$!
client --device 2 --split 4,5,6 > "$WORK/d2.out" 2>&1 || fail "device 2 without merging"
wait "$P1" || fail "device 1 without merging"
echo "no merge_at: groups $(sched groups), merged $(sched merged), bridge_plans $(sched bridge_plans)"
[ "$(sched groups)" = 5 ] && [ "$(sched merged)" = 0 ] && [ "$(sched mixed_batches)" = 0 ] ||
	fail "without merge_at: want 5 groups and nothing merged"
server_stop
echo PASS
