#!/usr/bin/python3
"""nx_check.py: the partitioner's min-cut values against networkx's minimum_cut on the same
latency graphs (written by part_dump); relative tolerance 1e-9.

usage: nx_check.py PART_DUMP N_RANDOM SEED [MODEL.json ...]
Runs PART_DUMP through $MESON_EXE_WRAPPER when meson sets it (cross builds under qemu)."""
import os
import shlex
import subprocess
import sys

import networkx as nx

TOL = 1e-9


def graphs(text):
    """Yield (label, r, total, flow, DiGraph) for each graph in part_dump's output."""
    g = None
    for line in text.splitlines():
        f = line.split()
        if f[0] == "graph":
            head, g = f[1:], nx.DiGraph()
        elif f[0] == "end":
            yield head[0], float(head[1]), float(head[2]), float(head[3]), g
        elif f[2] == "inf":
            g.add_edge(f[0], f[1])  # no capacity attribute: infinite for networkx
        else:
            g.add_edge(f[0], f[1], capacity=float(f[2]))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    wrapper = shlex.split(os.environ.get("MESON_EXE_WRAPPER", ""))
    out = subprocess.run(wrapper + sys.argv[1:], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"nx_check: {sys.argv[1]} failed (exit {out.returncode}): {out.stderr.strip()}")
    count = bad = 0
    for label, r, total, flow, g in graphs(out.stdout):
        value, (side_e, _) = nx.minimum_cut(g, "e", "s")
        count += 1
        for mine, what in ((total, "split latency"), (flow, "max-flow")):
            if abs(mine - value) > TOL * max(abs(mine), abs(value)):
                bad += 1
                print(f"MISMATCH {label} r={r:g}: {what} {mine!r}, networkx {value!r}")
        if "in" not in side_e:
            bad += 1
            print(f"MISMATCH {label}: networkx put the raw input on the server side")
    print(f"nx_check: {count} latency graphs, {bad} mismatches (relative tolerance {TOL})")
    sys.exit(1 if bad or count == 0 else 0)


main()
