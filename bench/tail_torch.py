# tail_torch.py: PyTorch eager on the same model tails as tail_bench, and the ours/torch compare.
"""Time PyTorch eager on the tails that `tail_bench --json` timed, and compare.

  run:      /usr/bin/python3 bench/tail_torch.py run OURS.jsonl [--device cuda|cpu]
                [--threads N] [--reps N] [--warmup N] [--tf32] [--quick] > TORCH.jsonl
  compare:  /usr/bin/python3 bench/tail_torch.py compare OURS.jsonl TORCH.jsonl

`run` reads the (model_path, cut, batch) rows of tail_bench's --json output, builds each model
by interpreting our JSON graph (docs/model-format.md) with torch.nn.functional ops (random
weights of the right shapes: this is a timing, the accuracy check is tests/gpu), and times the
tail only: the layers the server runs when the device sends the cut's value. As in tail_bench,
the copy of the input to the device and of the result back is inside the timed region (CUDA:
synchronised). On CUDA, cudnn.benchmark is on and TF32 is off (matmul and cuDNN) unless
--tf32, to match our backend's math. Output: one JSON line per row, tail_bench's keys plus
"impl": "torch".

`compare` prints ours/torch (median latency ratio, below 1 = ours faster) per (model, cut,
batch) against the targets of issue 6: faster than eager at batch <= 8, at least equal
(ratio <= 1) at batch 64; other batches are shown without a target.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def pair(v, default):
    v = default if v is None else v
    return tuple(v) if isinstance(v, list) else (v, v)


class Graph:
    """A model JSON as torch ops; parameters are made at the first forward from input shapes."""

    def __init__(self, path, device):
        with open(path) as f:
            g = json.load(f)
        self.name = g["name"]
        self.in_shape = g["input"]["shape"]
        self.layers = g["layers"]
        self.output = g["output"]
        self.index = {l["name"]: i for i, l in enumerate(self.layers)}
        self.device = device
        self.params = {}

    def param(self, layer, key, shape, scale=None):
        k = (layer["name"], key)
        if k not in self.params:
            fan = max(1, shape[1] if len(shape) > 1 else 1)
            s = scale if scale is not None else (1.0 / fan) ** 0.5
            self.params[k] = (torch.randn(*shape) * s).to(self.device)
        return self.params[k]

    def tail(self, cut):
        """Layer indices the server runs when value `cut` (a layer name or "input") is sent."""
        need, run = {self.output}, []
        for i in range(len(self.layers) - 1, -1, -1):
            l = self.layers[i]
            if l["name"] in need and l["name"] != cut:
                run.append(i)
                need.update(l["inputs"])
        if "input" in need and cut != "input":
            raise ValueError(f"{self.name}: cut {cut} is not a single-tensor cut")
        return run[::-1]

    def forward(self, vals, order):
        for i in order:
            l = self.layers[i]
            vals[l["name"]] = self.op(l, [vals[n] for n in l["inputs"]])
        return vals.get(self.output)

    @staticmethod
    def act(l, x):
        a = l.get("act", "none")
        return F.relu(x) if a == "relu" else F.gelu(x) if a == "gelu" else x

    def op(self, l, xs):
        x, op = xs[0], l["op"]
        if op == "conv2d":
            k, g = pair(l.get("kernel"), 1), l.get("groups", 1)
            w = self.param(l, "w", (l["out_channels"], x.shape[1] // g, k[0], k[1]))
            b = self.param(l, "b", (l["out_channels"],), 0.1) if l.get("bias", False) else None
            y = F.conv2d(x, w, b, pair(l.get("stride"), 1), pair(l.get("padding"), 0),
                         pair(l.get("dilation"), 1), g)
            if l.get("bn", False):
                y = self.bn(l, y, l["out_channels"])
            return self.act(l, y)
        if op == "batchnorm":
            return self.bn(l, x, x.shape[1])
        if op in ("relu", "gelu"):
            return F.relu(x) if op == "relu" else F.gelu(x)
        if op in ("maxpool", "avgpool"):
            k = pair(l.get("kernel"), 1)
            s, p = pair(l.get("stride"), k), pair(l.get("padding"), 0)
            if op == "maxpool":
                return F.max_pool2d(x, k, s, p, ceil_mode=l.get("ceil_mode", False))
            return F.avg_pool2d(x, k, s, p, ceil_mode=l.get("ceil_mode", False),
                                count_include_pad=l.get("count_include_pad", True))
        if op == "adaptive_avgpool":
            return F.adaptive_avg_pool2d(x, pair(l.get("output_size"), 1))
        if op == "linear":
            w = self.param(l, "w", (l["out_features"], x.shape[-1]))
            b = self.param(l, "b", (l["out_features"],), 0.1) if l.get("bias", True) else None
            return self.act(l, F.linear(x, w, b))
        if op == "add":
            y = xs[0]
            for t in xs[1:]:
                y = y + t
            return self.act(l, y)
        if op == "concat":
            return torch.cat(xs, dim=l.get("axis", 0) + 1)
        if op == "flatten":
            return x.flatten(1)
        if op == "softmax":
            return F.softmax(x, dim=-1)
        if op == "layernorm":
            e = x.shape[-1]
            return F.layer_norm(x, (e,), self.param(l, "w", (e,), 1.0),
                                self.param(l, "b", (e,), 0.1), l.get("eps", 1e-5))
        if op == "mha":
            return self.mha(l, x)
        if op == "tokens":
            return x.flatten(2).transpose(1, 2)
        if op == "cls_token":
            tok = self.param(l, "tok", (1, 1, x.shape[2]), 0.02)
            return torch.cat([tok.expand(x.shape[0], -1, -1), x], dim=1)
        if op == "pos_embed":
            return x + self.param(l, "pos", (1, x.shape[1], x.shape[2]), 0.02)
        if op == "select_token":
            return x[:, l.get("index", 0)]
        raise ValueError(f"{self.name}: layer {l['name']}: unknown op {op}")

    def bn(self, l, x, c):
        mean = self.param(l, "mean", (c,), 0.1)
        var = self.param(l, "var", (c,), 0.1).abs() + 0.5
        return F.batch_norm(x, mean, var, self.param(l, "g", (c,), 1.0),
                            self.param(l, "beta", (c,), 0.1), False, 0.0, l.get("eps", 1e-5))

    def mha(self, l, x):
        e, h = x.shape[2], l["heads"]
        q = x.transpose(0, 1)  # nn.MultiheadAttention's (T, N, E) layout
        y, _ = F.multi_head_attention_forward(
            q, q, q, e, h, self.param(l, "in_w", (3 * e, e)), self.param(l, "in_b", (3 * e,), 0.1),
            None, None, False, 0.0, self.param(l, "out_w", (e, e)),
            self.param(l, "out_b", (e,), 0.1), training=False, need_weights=False)
        return y.transpose(0, 1)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_tail(g, cut, batch, a):
    """Median/min/max ms of copy-in + tail + copy-out at `batch`, and the tail's input shape."""
    with torch.no_grad():
        raw = torch.randn(1, *g.in_shape, device=a.device)
        vals = {"input": raw}
        if cut != "input":  # the head once at batch 1: the cut value's shape (and params)
            head = [i for i in range(g.index[cut] + 1)]
            g.forward(vals, head)
        order = g.tail(cut)
        g.forward(dict(vals), order)  # makes the tail's parameters
        x_host = torch.randn(batch, *vals[cut].shape[1:])
        times = []
        for r in range(a.warmup + a.reps):
            sync(a.device)
            t0 = time.perf_counter()
            y = g.forward({cut: x_host.to(a.device)}, order).cpu()
            sync(a.device)
            if r >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        del y
    times.sort()
    return statistics.median(times), times[0], times[-1]


def read_jsonl(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip().startswith("{")]
    return [r for r in rows if "batch" in r], [r for r in rows if "tool" in r]


def cmd_run(a):
    rows, _ = read_jsonl(a.ours)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("tail_torch: --device cuda but torch sees no GPU")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        what = torch.cuda.get_device_name(0)
    else:
        torch.set_num_threads(a.threads)
        what = f"cpu, {a.threads} thread(s)"
    print(json.dumps({"tool": "tail_torch", "torch": torch.__version__, "device": what,
                      "tf32": a.tf32, "cudnn_benchmark": a.device == "cuda",
                      "reps": a.reps, "warmup": a.warmup}), flush=True)
    graphs = {}
    for r in rows:
        g = graphs.setdefault(r["model_path"], Graph(r["model_path"], a.device))
        med, lo, hi = time_tail(g, r["cut"], r["batch"], a)
        print(json.dumps({"impl": "torch", "model": r["model"], "model_path": r["model_path"],
                          "cut": r["cut"], "tail_gflop": r["tail_gflop"], "batch": r["batch"],
                          "med_ms": med, "min_ms": lo, "max_ms": hi,
                          "samples_per_s": r["batch"] / med * 1e3}), flush=True)


def target(batch):
    if batch <= 8:
        return "faster", lambda q: q < 1.0
    if batch >= 64:
        return "<= 1", lambda q: q <= 1.0
    return "-", None


def cmd_compare(a):
    ours, ohead = read_jsonl(a.ours)
    theirs, thead = read_jsonl(a.torch)
    tmap = {(r["model"], r["cut"], r["batch"]): r for r in theirs}
    for h in ohead + thead:
        print("#", json.dumps(h))
    print(f"{'model':10} {'cut (sent value)':24} {'batch':>5} {'ours_ms':>10} {'torch_ms':>10} "
          f"{'ours/torch':>10}  target")
    met = missed = 0
    for r in ours:
        t = tmap.get((r["model"], r["cut"], r["batch"]))
        if not t:
            continue
        q = r["med_ms"] / t["med_ms"]
        name, ok = target(r["batch"])
        verdict = "" if ok is None else ("met" if ok(q) else "MISSED")
        met += verdict == "met"
        missed += verdict == "MISSED"
        print(f"{r['model']:10} {r['cut']:24} {r['batch']:5d} {r['med_ms']:10.3f} "
              f"{t['med_ms']:10.3f} {q:10.3f}  {name} {verdict}")
    print(f"targets: {met} met, {missed} missed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("ours")
    r.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    r.add_argument("--threads", type=int, default=torch.get_num_threads())
    r.add_argument("--reps", type=int, default=9)
    r.add_argument("--warmup", type=int, default=2)
    r.add_argument("--tf32", action="store_true")
    r.add_argument("--quick", action="store_true", help="3 reps after 1 warm-up")
    c = sub.add_parser("compare")
    c.add_argument("ours")
    c.add_argument("torch")
    a = ap.parse_args()
    if a.cmd == "compare":
        return cmd_compare(a)
    if a.quick:
        a.reps, a.warmup = 3, 1
    return cmd_run(a)


if __name__ == "__main__":
    main()
