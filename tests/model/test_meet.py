#!/usr/bin/python3
"""test_meet.py: dds-model meet against a brute force: random splits of small graphs (heads closed under predecessors), their tails intersected in Python, the merge_at cut compared; and bad splits refused.

usage: test_meet.py DDS_MODEL GRAPH.json...
"""
import json
import random
import subprocess
import sys


def graph(tool, path):
    """layer names, each layer's input names ('input' for the raw input), the output layer."""
    info = json.loads(subprocess.run([tool, "info", path, "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    return [l["name"] for l in info["layers"]], {l["name"]: l["inputs"] for l in info["layers"]}, info["output"]


def random_split(names, ins, out, rng):
    """A random head closed under predecessors (without the output); returns (sent, tail)."""
    head = set()
    for n in names:  # topological order: a layer may join when all its producers did
        if n != out and all(p == "input" or p in head for p in ins[n]) and rng.random() < 0.5:
            head.add(n)
    tail = [n for n in names if n not in head]
    sent = sorted({p for n in tail for p in ins[n] if p == "input" or p in head},
                  key=lambda v: -1 if v == "input" else names.index(v))
    return sent, set(tail)


def check_model(tool, path, rng, trials):
    names, ins, out = graph(tool, path)
    checked = 0
    for _ in range(trials):
        splits = [random_split(names, ins, out, rng) for _ in range(rng.randint(2, 3))]
        meet = set.intersection(*(t for _, t in splits))
        want = sorted({p for n in meet for p in ins[n] if p == "input" or p not in meet},
                      key=lambda v: -1 if v == "input" else names.index(v))
        r = subprocess.run([tool, "meet", path] + [",".join(s) for s, _ in splits] + ["--json"],
                           capture_output=True, text=True)
        if "input" in want:
            assert r.returncode == 1 and "raw input" in r.stderr, (path, splits, r.stderr)
            continue
        assert r.returncode == 0, (path, [s for s, _ in splits], r.stderr)
        got = json.loads(r.stdout)
        assert got["meet"]["merge_at"] == want, (path, [s for s, _ in splits], got, want)
        assert got["meet"]["tail_layers"] == len(meet)
        for (s, t), g in zip(splits, got["splits"]):
            assert g["tail_layers"] == len(t), (s, g, len(t))
        checked += 1
    return checked


def main():
    tool, paths = sys.argv[1], sys.argv[2:]
    rng = random.Random(7)
    for p in paths:
        n = check_model(tool, p, rng, 40)
        print("%s: %d random split sets, merge_at as the brute force" % (p, n))
        assert n >= 10, "too few comparable cases"
    bad = [(["a"], "usage"), (["x,y", "conv1"], "no layer 'x'"), (["input", "input,input"], "sent twice")]
    for args, msg in bad:
        r = subprocess.run([tool, "meet", paths[0]] + args, capture_output=True, text=True)
        assert r.returncode in (1, 2) and msg in r.stderr, (args, r.returncode, r.stderr)
    print("bad splits refused with a message")


if __name__ == "__main__":
    main()
