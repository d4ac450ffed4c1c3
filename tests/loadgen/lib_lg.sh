# lib_lg.sh: what the loadgen's veth tests share on top of tests/dataplane/lib_veth.sh: fail() that
# also shows the loadgen's stderr, and jget() over its JSON report. Sourced after lib_veth.sh.
fail() {
	echo "FAIL: $*"
	echo "--- server stderr:"; tail -20 "$WORK/server.err" 2>/dev/null
	echo "--- loadgen stderr:"; tail -20 "$WORK/lg.err" 2>/dev/null
	exit 1
}
# jget FILE EXPR: a Python expression over the JSON report d (a path like "['a']['b']" is d's)
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=sys.argv[2]; print(eval(e if e[0] != "[" else "d" + e))' "$1" "$2"; }
