#!/usr/bin/python3
"""report.py: the main job's helpers: the node's capacity, the load it can take, and the final report (text, JSON, PNG).

Used by deploy/demo.sh (which writes the node's config with deploy/node_config.py); standard
library only, plots with gnuplot.

  report.py capacity TAIL_BENCH.jsonl        -> "FLOP_PER_S BACKEND" (server-only ResNet50 tail)
  report.py rate --config node.json --devices N --capacity C --load F
                                             -> requests/s per device
  report.py report OUT_DIR                   -> prints the report; writes report.json and PNGs
"""
import argparse
import json
import os
import subprocess
import sys


def die(msg):
    print("report.py: " + msg, file=sys.stderr)
    sys.exit(1)


def load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die("%s (%s): %s" % (what, path, e))


def telemetry(path):
    """A dds-ctl reply: {"/dds/cmd": {...}} -> the inner dict."""
    j = load_json(path, "dds-ctl output")
    if isinstance(j, dict) and len(j) == 1 and isinstance(next(iter(j.values())), dict):
        return next(iter(j.values()))
    return j


# ---- capacity, rate ----

def cmd_capacity(a):
    backend, best = None, None
    with open(a.file) as f:
        for line in f:
            row = json.loads(line)
            if row.get("tool") == "tail_bench":
                backend = row["backend"]
            elif "samples_per_s" in row and (best is None or row["tail_gflop"] > best["tail_gflop"]):
                best = row
    if best is None or backend is None:
        die("no tail_bench rows in " + a.file)
    print("%.6g %s" % (best["tail_gflop"] * 1e9 * best["samples_per_s"], backend))


def model_flops(path):
    """FLOPs of a whole forward pass, summed over the graph's layers (as dds-model info)."""
    out = subprocess.run([os.path.join(os.path.dirname(__file__), "..", "build", "tools", "dds-model"),
                          "info", path, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        die("dds-model info %s: %s" % (path, out.stderr.strip()))
    return json.loads(out.stdout)["gflops"] * 1e9


def cmd_rate(a):
    cfg = load_json(a.config, "config")
    flops = [model_flops(m["graph"]) for m in cfg["models"]]
    # dds-loadgen deals devices round-robin over the models: N/len each.
    per_device_all_offloaded = sum(flops) / len(flops)
    print("%.4g" % (a.load * a.capacity / (a.devices * per_device_all_offloaded)))


# ---- the report ----

def gnuplot(script):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        print("report.py: gnuplot failed: %s" % getattr(e, "stderr", e), file=sys.stderr)
        return False


def us(ns):
    return ns / 1e3


STAGES = ["reassembly", "handoff", "queue", "compute", "return", "end_to_end", "overhead"]


def server_stages(lat):
    """dds-ctl latency --json: {stage: {count, p50_us, ...}} in the stage order of STAGES."""
    order = lambda s: STAGES.index(s) if s in STAGES else len(STAGES)
    return {s: lat[s] for s in sorted(lat, key=order) if isinstance(lat[s], dict)}


def price_rounds(timeline):
    """[(t, round, price)]: every device hears each round's PRICE; keep its first report."""
    seen, res = set(), []
    for p in timeline:
        if p.get("round") is not None and p["round"] not in seen:
            seen.add(p["round"])
            res.append((p["t"], p["round"], p["price"]))
    return res


def plot_price(out, timeline):
    pts = [(t, pr) for t, _, pr in price_rounds(timeline)]
    if not pts:
        return None
    dat = os.path.join(out, "price.dat")
    with open(dat, "w") as f:
        for t, p in pts:
            f.write("%.6f %.9g\n" % (t, p))
    png = os.path.join(out, "price.png")
    ok = gnuplot('set terminal pngcairo size 900,500\nset output "%s"\n'
                 'set title "Price published by the node (PRICE messages, per round)"\n'
                 'set xlabel "time since the start (s)"\nset ylabel "price p (money per FLOP/s)"\n'
                 'set grid\nplot "%s" using 1:2 with steps lw 2 title "p"\n' % (png, dat))
    return png if ok else None


def plot_cdfs(out, models):
    lines, files = [], []
    for i, m in enumerate(models):
        cdf = m.get("cdf_ms") or []
        if not cdf:
            continue
        dat = os.path.join(out, "cdf_%d.dat" % i)
        with open(dat, "w") as f:
            for ms, frac in cdf:
                f.write("%.6f %.6f\n" % (ms, frac))
        files.append(dat)
        lines.append('"%s" using 1:2 with steps lw 2 title "%s"' % (dat, m["name"]))
    if not lines:
        return None
    png = os.path.join(out, "latency_cdf.png")
    ok = gnuplot('set terminal pngcairo size 900,500\nset output "%s"\n'
                 'set title "End-to-end latency per model (client side, from the intended start)"\n'
                 'set xlabel "latency (ms)"\nset ylabel "fraction of requests"\nset logscale x\n'
                 'set key bottom right noenhanced\nset grid\nplot %s\n' % (png, ", ".join(lines)))
    return png if ok else None


def plot_stages(out, stages):
    dat = os.path.join(out, "stages.dat")
    with open(dat, "w") as f:
        for s, v in stages.items():
            if v["count"]:
                f.write("%s %.3f %.3f %.3f\n" % (s, max(v["p50_us"], 1e-3), max(v["p99_us"], 1e-3),
                                                 max(v["max_us"], 1e-3)))
    png = os.path.join(out, "stages.png")
    ok = gnuplot('set terminal pngcairo size 900,500\nset output "%s"\n'
                 'set title "Server-side latency per stage (dds-ctl latency)"\n'
                 'set style data histograms\nset style histogram clustered\nset style fill solid 0.8\n'
                 'set logscale y\nset yrange [0.1:*]\nset ylabel "microseconds"\nset grid ytics\n'
                 'set termoption noenhanced\nset key outside right top\nset xtics rotate by -20\n'
                 'plot "%s" using 2:xtic(1) title "p50", "" using 3 title "p99", "" using 4 title "max"\n'
                 % (png, dat))
    return png if ok else None


def num3(*v):
    return "/".join("-" if x is None or x != x else "%.3g" % x for x in v)


def fmt_ms(v):
    return "%.3f" % v if v < 100 else "%.1f" % v


def cmd_report(a):
    out = a.dir
    lg = load_json(os.path.join(out, "loadgen.json"), "dds-loadgen report")
    lat = telemetry(os.path.join(out, "server_latency.json"))
    ctr = telemetry(os.path.join(out, "server_counters.json"))
    proto = telemetry(os.path.join(out, "server_proto.json"))
    pricing = telemetry(os.path.join(out, "server_pricing.json"))
    sched_path = os.path.join(out, "server_sched.json")
    sched = telemetry(sched_path) if os.path.exists(sched_path) else {}
    stages = server_stages(lat)
    c = lg["config"]
    p = print
    p("dds-server (%s backend) on a veth pair; %d simulated devices (dds-loadgen), %s loop, %s arrivals," % (
        sched.get("backend", "?"), c["devices"], c["loop"], c.get("arrival", "-")))
    p("%.0f s measured after %.0f s warm-up; budget rule %s; models %s" % (
        lg["measured_s"], c["warmup_s"], c["rule"], ", ".join(m["name"] for m in lg["models"])))
    p("")
    rounds = price_rounds(lg["price_timeline"])
    node = load_json(os.path.join(out, "node.json"), "node config")["pricing"]
    p("Price per round (PRICE messages; base price p0 %s, capacity R %s FLOP/s, round %d ms):" % (
        num3(node["base_price"]), num3(node["capacity"]), node["round_ms"]))
    for i in range(0, len(rounds), 6):
        p("  " + "  ".join("r%-4d %-9s" % (r, num3(pr)) for _, r, pr in rounds[i:i + 6]))
    p("  market now: round %s, price %s, sum of budgets %s, active devices %s" % (
        pricing.get("round"), num3(float(pricing.get("price", "nan"))),
        num3(float(pricing.get("sum_budget", "nan"))), pricing.get("active_devices")))
    p("")
    p("Per model (client side):")
    p("  %-14s %7s %8s %7s %6s %6s %5s  %-24s %s" % ("model", "devices", "answered", "errors", "busy",
                                                      "lost", "local", "budget min/mean/max", "splits (cut: requests)"))
    for m in lg["models"]:
        k, b = m["counts"], m["budget"]
        splits = ", ".join("%s: %d" % (s, n) for s, n in sorted(m["splits"].items(), key=lambda x: -x[1])[:4])
        p("  %-14s %7d %8d %7d %6d %6d %5d  %-24s %s" % (
            m["name"], m["devices"], k["answered"], k["errors"], k["busy"], k["lost"], k["local"],
            num3(b["min"], b["mean"], b["max"]), splits or "-"))
    p("")
    p("End-to-end latency, client side (ms; from the intended start, free of coordinated omission):")
    p("  %-14s %8s %9s %9s %9s %9s %9s" % ("model", "count", "p50", "p90", "p99", "p99.9", "max"))
    for m in lg["models"] + [dict(lg["overall"], name="all")]:
        l = m["latency_ms"]
        q = [fmt_ms(l[k]) if l["count"] else "-" for k in ("p50", "p90", "p99", "p99.9", "max")]
        p("  %-14s %8d %9s %9s %9s %9s %9s" % (m["name"], l["count"], *q))
    p("")
    p("Server-side latency per stage (us; dds-ctl latency, after the warm-up):")
    p("  %-11s %8s %10s %10s %10s %10s %10s" % ("stage", "count", "p50", "p90", "p99", "p99.9", "max"))
    for s, v in stages.items():
        p("  %-11s %8d %10.1f %10.1f %10.1f %10.1f %10.1f" % (s, v["count"], v["p50_us"], v["p90_us"],
                                                            v["p99_us"], v["p999_us"], v["max_us"]))
    p("  (reassembly: first fragment -> complete; handoff: -> taken by the worker, which includes")
    p("  waiting while it computes; queue: in the scheduler; compute: the batch; return: -> sent;")
    p("  overhead = end_to_end - compute, so it holds all waiting when the node is loaded: the")
    p("  unloaded path's cost, target p99 <= 50 us, is measured by bench/serve_bench.sh, docs/latency.md)")
    per_model = {}
    for m in lg["models"]:
        path = os.path.join(out, "server_latency_%s.json" % m["name"])
        if os.path.exists(path):
            per_model[m["name"]] = server_stages(load_json(path, "dds-ctl latency --model"))
    if per_model:
        p("Server-side latency per model (us; dds-ctl latency --model):")
        p("  %-14s %8s %10s %10s %10s %10s %10s %10s" % (
            "model", "count", "compute50", "compute99", "e2e p50", "e2e p99", "ovh p50", "ovh p99"))
        for name, st in per_model.items():
            cp, e2e, ov = st["compute"], st["end_to_end"], st["overhead"]
            p("  %-14s %8d %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f" % (
                name, e2e["count"], cp["p50_us"], cp["p99_us"], e2e["p50_us"], e2e["p99_us"],
                ov["p50_us"], ov["p99_us"]))
    p("")
    drops = {k: v for k, v in ctr.items() if k.startswith("drop_") and v}
    pdrops = {k: v for k, v in proto.items() if k != "ok" and isinstance(v, int) and v}
    p("Node: rx %d frames, %d requests served, %d refused; drops: %s; protocol drops: %s" % (
        ctr.get("rx_pkts", 0), ctr.get("req_served", 0), ctr.get("req_refused", 0),
        ", ".join("%s %d" % kv for kv in drops.items()) or "none",
        ", ".join("%s %d" % kv for kv in pdrops.items()) or "none"))
    gen = lg["generator"]
    p("Generator: %.1f requests/s sent, lag p99 %.2f ms (when large, the load generator is the limit)" % (
        gen["sent_per_s"], gen["lag_p99_ms"]))
    figs = [f for f in (plot_price(out, lg["price_timeline"]), plot_cdfs(out, lg["models"]),
                        plot_stages(out, stages)) if f]
    p("")
    p("Figures: " + (" ".join(figs) if figs else "none (gnuplot missing?)"))
    report = {"config": c, "measured_s": lg["measured_s"], "backend": sched.get("backend"),
              "price_timeline": lg["price_timeline"], "pricing": pricing,
              "models": [{k: m[k] for k in ("name", "devices", "counts", "budget", "splits", "latency_ms",
                                            "errors_by_reason") if k in m} for m in lg["models"]],
              "overall_latency_ms": lg["overall"]["latency_ms"], "server_stages_us": stages,
              "server_stages_us_by_model": per_model,
              "node_counters": ctr, "protocol_drops": pdrops, "generator": gen, "figures": figs}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("capacity")
    s.add_argument("file")
    s = sub.add_parser("rate")
    for k, t in (("config", str), ("devices", int), ("capacity", float), ("load", float)):
        s.add_argument("--" + k, type=t, required=True)
    s = sub.add_parser("report")
    s.add_argument("dir")
    a = ap.parse_args()
    {"capacity": cmd_capacity, "rate": cmd_rate, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
