# engine_vs_torch.py: benchmark printing dds-model run latency beside PyTorch CPU latency per zoo model.
"""For each model at batch 1 and the same thread count, alternate PyTorch CPU and
`dds-model run --json --repeat K` for several rounds and print the medians and their ratio.

Usage: /usr/bin/python3 bench/engine_vs_torch.py [--threads 1] [--rounds 3] [--repeat 5]
       [--tool BUILD/tools/dds-model] [--models vgg11,resnet34,resnet50,vit_b_16]
Use an optimised build without sanitizers (meson setup build-rel --buildtype=release).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "reference"))
import export_torchvision as ex  # noqa: E402

ZOO = "vgg11,resnet34,resnet50,vit_b_16"
TARGET = ("resnet50", 2.0)  # the engine should be within 2x of PyTorch on ResNet50


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown (no lscpu)"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def torch_median(model, x, warmup, repeat):
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def ours_median(tool, json_path, weights, threads, warmup, repeat):
    cmd = [tool, "run", json_path, "--weights", weights, "--batch", "1", "--threads",
           str(threads), "--warmup", str(warmup), "--repeat", str(repeat), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"engine_vs_torch: {' '.join(cmd)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)["ms_median"]


def bench_model(name, a, tmp):
    model, graph, tensors = ex.export(name, a.seed)
    json_path, weights = os.path.join(tmp, f"{name}.json"), os.path.join(tmp, f"{name}.ddsw")
    with open(json_path, "w") as f:
        f.write(ex.graph_text(graph))
    ex.write_weights(weights, tensors)
    del tensors
    x = torch.randn([1] + graph["input"]["shape"], generator=torch.Generator().manual_seed(a.seed))
    ours, theirs = [], []
    for r in range(a.rounds):
        theirs.append(torch_median(model, x, a.warmup, a.repeat))
        ours.append(ours_median(a.tool, json_path, weights, a.threads, a.warmup, a.repeat))
        print(f"  {name} round {r + 1}: ours {ours[-1]:.1f} ms, torch {theirs[-1]:.1f} ms",
              file=sys.stderr, flush=True)
    os.unlink(weights)
    return statistics.median(ours), statistics.median(theirs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per round and side")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--models", default=ZOO, help=f"comma-separated [{ZOO}]")
    ap.add_argument("--tool", default=os.path.join(os.environ.get("DDS_BUILD_ROOT", "build"),
                                                   "tools", "dds-model"))
    a = ap.parse_args()
    if a.threads < 1 or a.rounds < 1 or a.repeat < 1 or a.warmup < 0:
        ap.error("--threads, --rounds and --repeat must be >= 1, --warmup >= 0")
    if not os.access(a.tool, os.X_OK):
        ap.error(f"{a.tool}: not an executable (build dds-model, or pass --tool)")
    torch.set_num_threads(a.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="engine-vs-torch-") as tmp:
        for name in a.models.split(","):
            rows.append((name, *bench_model(name, a, tmp)))
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; threads {a.threads}; batch 1; "
          f"medians of {a.rounds} rounds x {a.repeat} runs; torch {torch.__version__}; "
          f"tool {a.tool}")
    print(f"{'model':<12} {'ours ms':>10} {'torch ms':>10} {'ours/torch':>11}")
    for name, ours, theirs in rows:
        print(f"{name:<12} {ours:>10.1f} {theirs:>10.1f} {ours / theirs:>11.2f}")
    for name, ours, theirs in rows:
        if name == TARGET[0]:
            ok = ours / theirs <= TARGET[1]
            print(f"target {name} ratio <= {TARGET[1]}: {'met' if ok else 'NOT met'} "
                  f"({ours / theirs:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
