# export_torchvision.py: writes a seeded-random torchvision model as a DDS graph + weights (the PyTorch reference).
"""Export a torchvision model into the DDS model formats (docs/model-format.md).

CNNs are traced with torch.fx and mapped node by node; conv -> batchnorm -> relu chains, linear ->
relu/gelu and add -> relu are fused into one layer when the intermediate value has a single
consumer. The ViT (VisionTransformer) does not fx-trace (shape asserts) and is walked module by
module instead. Weights are random but seeded: torch.manual_seed(seed) before the model is built,
then batchnorm statistics, layernorm affines and every all-zero parameter are re-drawn so no layer
is an identity and no output is trivially zero.

Run with Debian's Python: /usr/bin/python3 reference/export_torchvision.py --model resnet50 ...
"""

import argparse
import json
import operator
import struct
import sys

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.fx.passes.shape_prop import ShapeProp

FORMAT = "dds-model/1"
NAME_MAX = 63


class ExportError(Exception):
    """An op or a configuration the DDS formats cannot express; the message names the node."""


# ----------------------------------------------------------------------------- the model

def build_model(name, seed):
    """The torchvision model `name` in eval mode, with seeded random weights."""
    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError as e:
        raise ExportError(f"unknown torchvision model '{name}': {e}") from None
    torch.manual_seed(seed)
    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # silences the "default init will change" warning
    model = builder(**kwargs)
    randomize(model)
    return model.eval()


@torch.no_grad()
def randomize(model):
    """Redraw what torchvision initialises to constants, from the current torch RNG state."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
            m.running_var.copy_(1 + 0.5 * torch.rand_like(m.running_var))
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)) and m.weight is not None:
            m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
            m.bias.copy_(0.1 * torch.randn_like(m.bias))
    for p in model.parameters():
        if not p.any():  # e.g. ViT's class token and head, attention biases
            if p.dim() >= 2:
                p.normal_(0.0, p.shape[-1] ** -0.5)
            else:
                p.normal_(0.0, 0.1)


def input_shape(model, name):
    """Per-sample input shape [C, H, W]."""
    size = getattr(model, "image_size", 299 if name == "inception_v3" else 224)
    return [3, size, size]


# ----------------------------------------------------------------------------- layers

class Layer:
    """One DDS layer being built: `inputs` are Layer objects or the string "input"."""

    def __init__(self, base, op, inputs, attrs=None, params=None):
        self.base = base  # readable name before uniquifying
        self.name = base
        self.op = op
        self.inputs = list(inputs)
        self.attrs = dict(attrs or {})
        self.params = list(params or [])  # [(param name, tensor)] in docs/model-format.md order
        self.alias = None  # set when fused into another layer

    def resolve(self):
        layer = self
        while layer.alias is not None:
            layer = layer.alias
        return layer


def pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def conv_layer(base, m, x, where):
    if not isinstance(m.padding, tuple) or m.padding_mode != "zeros" or len(m.kernel_size) != 2:
        raise ExportError(f"{where}: Conv2d with padding={m.padding!r} padding_mode="
                          f"{m.padding_mode!r} is not supported (numeric zero padding only)")
    attrs = {"out_channels": m.out_channels, "kernel": pair(m.kernel_size),
             "stride": pair(m.stride), "padding": pair(m.padding)}
    if pair(m.dilation) != [1, 1]:
        attrs["dilation"] = pair(m.dilation)
    if m.groups != 1:
        attrs["groups"] = m.groups
    params = [("weight", m.weight)]
    if m.bias is not None:
        attrs["bias"] = True
        params.append(("bias", m.bias))
    return Layer(base, "conv2d", [x], attrs, params)


def batchnorm_layer(base, m, x, where):
    if not m.track_running_stats or m.running_mean is None:
        raise ExportError(f"{where}: BatchNorm without running statistics is not supported")
    n = m.num_features
    w = m.weight if m.affine else torch.ones(n)
    b = m.bias if m.affine else torch.zeros(n)
    return Layer(base, "batchnorm", [x], {"eps": m.eps},
                 [("weight", w), ("bias", b), ("mean", m.running_mean), ("var", m.running_var)])


def pool_attrs(kernel, stride, padding, ceil_mode, where, dilation=1):
    if pair(dilation) != [1, 1]:
        raise ExportError(f"{where}: pooling with dilation {dilation} is not supported")
    attrs = {"kernel": pair(kernel), "stride": pair(stride if stride else kernel),
             "padding": pair(padding)}
    if ceil_mode:
        attrs["ceil_mode"] = True
    return attrs


def maxpool_layer(base, m, x, where):
    return Layer(base, "maxpool", [x],
                 pool_attrs(m.kernel_size, m.stride, m.padding, m.ceil_mode, where, m.dilation))


def avgpool_layer(base, m, x, where):
    if m.divisor_override is not None:
        raise ExportError(f"{where}: AvgPool2d divisor_override is not supported")
    attrs = pool_attrs(m.kernel_size, m.stride, m.padding, m.ceil_mode, where)
    if not m.count_include_pad:
        attrs["count_include_pad"] = False
    return Layer(base, "avgpool", [x], attrs)


def adaptive_layer(base, output_size, x, where):
    sizes = [output_size] * 2 if isinstance(output_size, int) else list(output_size)
    if None in sizes:
        raise ExportError(f"{where}: adaptive pooling with a None output size is not supported")
    return Layer(base, "adaptive_avgpool", [x], {"output_size": [int(s) for s in sizes]})


def linear_layer(base, m, x, where):
    params = [("weight", m.weight)]
    attrs = {"out_features": m.out_features}
    if m.bias is None:
        attrs["bias"] = False
    else:
        params.append(("bias", m.bias))
    return Layer(base, "linear", [x], attrs, params)


def layernorm_layer(base, m, x, where):
    if len(m.normalized_shape) != 1:
        raise ExportError(f"{where}: LayerNorm over {m.normalized_shape} is not supported "
                          "(last axis only)")
    e = m.normalized_shape[0]
    w = m.weight if m.elementwise_affine else torch.ones(e)
    b = m.bias if m.elementwise_affine else torch.zeros(e)
    return Layer(base, "layernorm", [x], {"eps": m.eps}, [("weight", w), ("bias", b)])


def gelu_layer(base, approximate, x, where):
    if approximate != "none":
        raise ExportError(f"{where}: GELU approximate='{approximate}' is not supported (erf only)")
    return Layer(base, "gelu", [x])


def mha_layer(base, m, x, where):
    if (not m._qkv_same_embed_dim or m.in_proj_bias is None or m.bias_k is not None
            or m.add_zero_attn or not m.batch_first):
        raise ExportError(f"{where}: only batch_first MultiheadAttention with packed biased "
                          "projections is supported")
    return Layer(base, "mha", [x], {"heads": m.num_heads},
                 [("in_proj_weight", m.in_proj_weight), ("in_proj_bias", m.in_proj_bias),
                  ("out_proj_weight", m.out_proj.weight), ("out_proj_bias", m.out_proj.bias)])


SKIP = object()  # a module that is the identity at inference


def module_layer(base, m, x, where):
    """The layer for a leaf module applied to x, SKIP for inference identities."""
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return SKIP
    table = [(nn.Conv2d, conv_layer), (nn.BatchNorm2d, batchnorm_layer),
             (nn.MaxPool2d, maxpool_layer), (nn.AvgPool2d, avgpool_layer),
             (nn.Linear, linear_layer), (nn.LayerNorm, layernorm_layer),
             (nn.MultiheadAttention, mha_layer)]
    for cls, make in table:
        if type(m) is cls:
            return make(base, m, x, where)
    if type(m) is nn.ReLU:
        return Layer(base, "relu", [x])
    if type(m) is nn.GELU:
        return gelu_layer(base, m.approximate, x, where)
    if type(m) is nn.AdaptiveAvgPool2d:
        return adaptive_layer(base, m.output_size, x, where)
    if type(m) is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
        return Layer(base, "flatten", [x])
    if type(m) is nn.Softmax and m.dim in (-1, None):
        return Layer(base, "softmax", [x])
    raise ExportError(f"{where}: module {type(m).__name__} ({m}) is not supported")


# ----------------------------------------------------------------------------- fx tracing

class ScopeTracer(fx.Tracer):
    """A tracer that records, on each node, the path of the module whose forward created it."""

    def __init__(self):
        super().__init__()
        self.scope = [""]

    def call_module(self, m, forward, args, kwargs):
        self.scope.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self.scope.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["dds_scope"] = self.scope[-1]
        return node


def arg(node, i, key, default):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def batched_shape(node):
    meta = node.meta.get("tensor_meta")
    return list(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def function_kind(node):
    """A short name for what a call_function/call_method node does, or None if unknown."""
    t = node.target
    names = {operator.add: "add", operator.iadd: "add", torch.add: "add", torch.cat: "cat",
             torch.flatten: "flatten", F.relu: "relu", torch.relu: "relu", torch.relu_: "relu",
             F.gelu: "gelu", F.max_pool2d: "maxpool", F.avg_pool2d: "avgpool",
             F.adaptive_avg_pool2d: "adaptive_avgpool", F.dropout: "dropout",
             torch.softmax: "softmax", F.softmax: "softmax"}
    if node.op == "call_function":
        return names.get(t)
    methods = {"add": "add", "add_": "add", "relu": "relu", "relu_": "relu",
               "flatten": "flatten", "view": "reshape", "reshape": "reshape",
               "contiguous": "contiguous", "softmax": "softmax"}
    return methods.get(t)


def pool_function_layer(node, kind, base, x, where):
    """F.max_pool2d / F.avg_pool2d, arguments as PyTorch orders them."""
    kernel = arg(node, 1, "kernel_size", None)
    stride = arg(node, 2, "stride", None)
    padding = arg(node, 3, "padding", 0)
    if kind == "maxpool":
        attrs = pool_attrs(kernel, stride, padding, arg(node, 5, "ceil_mode", False), where,
                           arg(node, 4, "dilation", 1))
        return Layer(base, "maxpool", [x], attrs)
    if arg(node, 6, "divisor_override", None) is not None:
        raise ExportError(f"{where}: avg_pool2d divisor_override is not supported")
    attrs = pool_attrs(kernel, stride, padding, arg(node, 4, "ceil_mode", False), where)
    if not arg(node, 5, "count_include_pad", True):
        attrs["count_include_pad"] = False
    return Layer(base, "avgpool", [x], attrs)


def function_layer(node, kind, inputs, where):
    """The layer for a call_function/call_method node (inputs: its tensor args, mapped)."""
    shape = batched_shape(node)
    x = inputs[0] if inputs else None
    base = ((node.meta["dds_scope"] + ".") if node.meta["dds_scope"] else "") + kind
    if kind in ("dropout", "contiguous"):
        return SKIP
    if kind == "add":
        if len(inputs) != 2 or node.kwargs.get("alpha", 1) != 1:
            raise ExportError(f"{where}: add of a tensor and a non-tensor is not supported")
        a, b = (batched_shape(n) for n in node.args[:2])
        if a != b:
            raise ExportError(f"{where}: add with broadcasting ({a} + {b}) is not supported")
        return Layer(base, "add", inputs)
    if kind == "cat":
        if len(inputs) == 1:  # DenseNet concatenates a one-element list
            return SKIP
        dim = arg(node, 1, "dim", 0)
        dim = dim + len(shape) if dim < 0 else dim
        if dim < 1:
            raise ExportError(f"{where}: concatenation over the batch axis is not supported")
        return Layer(base, "concat", inputs, {"axis": dim - 1})
    if kind in ("flatten", "reshape"):
        if len(shape) != 2 or (kind == "flatten" and (arg(node, 1, "start_dim", 0) != 1 or
                                                     arg(node, 2, "end_dim", -1) != -1)):
            raise ExportError(f"{where}: only flattening to [batch, features] is supported "
                              f"(got shape {shape})")
        return Layer(base, "flatten", [x])
    if kind == "relu":
        return Layer(base, "relu", [x])
    if kind == "gelu":
        return gelu_layer(base, node.kwargs.get("approximate", "none"), x, where)
    if kind == "softmax":
        dim = arg(node, 1, "dim", None)
        if dim not in (-1, len(shape) - 1):
            raise ExportError(f"{where}: softmax over axis {dim} is not supported (last only)")
        return Layer(base, "softmax", [x])
    if kind == "adaptive_avgpool":
        return adaptive_layer(base, arg(node, 1, "output_size", None), x, where)
    if kind in ("maxpool", "avgpool"):
        return pool_function_layer(node, kind, base, x, where)
    raise AssertionError(kind)


def tensor_args(node, env):
    """The mapped layers of a node's tensor arguments (nested lists flattened), in order."""
    out = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: out.append(n) or n)
    return [env[n] for n in out if env.get(n) is not None]


def fx_layers(model, shape):
    """Trace a CNN with torch.fx; returns (layers, output layer)."""
    tracer = ScopeTracer()
    try:
        graph = tracer.trace(model)
        gm = fx.GraphModule(tracer.root, graph)
        ShapeProp(gm).propagate(torch.zeros([1] + shape))
    except Exception as e:  # fx raises TraceError, TypeError, ... on data-dependent code
        raise ExportError(f"torch.fx cannot trace it ({type(e).__name__}: {e})") from None
    modules = dict(gm.named_modules())
    env, layers, output = {}, [], None
    for node in graph.nodes:
        where = f"node '{node.name}' ({node.op} {getattr(node.target, '__name__', node.target)}"
        where += f" in '{node.meta.get('dds_scope') or 'the model'}')"
        if node.op == "placeholder":
            env[node] = "input"
            continue
        if node.op == "output":
            outs = tensor_args(node, env)
            if len(outs) != 1:
                raise ExportError(f"{where}: the model must return exactly one tensor")
            output = outs[0]
            continue
        if batched_shape(node) is None:  # x.size(0) and the like: not data
            env[node] = None
            continue
        inputs = tensor_args(node, env)
        if node.op == "call_module":
            layer = module_layer(node.target, modules[node.target], inputs[0], where)
        elif node.op in ("call_function", "call_method") and function_kind(node):
            layer = function_layer(node, function_kind(node), inputs, where)
        else:
            raise ExportError(f"{where}: not supported by the DDS model format")
        if layer is SKIP:
            env[node] = inputs[0]
        else:
            env[node] = layer
            layers.append(layer)
    return layers, output


# ----------------------------------------------------------------------------- the ViT

def vit_layers(model):
    """Walk torchvision's VisionTransformer; returns (layers, output layer)."""
    layers = []

    def add(layer):
        layers.append(layer)
        return layer

    def sequential(prefix, seq, x):
        for name, m in seq.named_children():
            layer = module_layer(f"{prefix}.{name}", m, x, f"module '{prefix}.{name}'")
            if layer is not SKIP:
                x = add(layer)
        return x

    if list(dict(model.heads.named_children())) != ["head"]:
        raise ExportError("vit: only a single Linear head is supported (no representation layer)")
    x = add(conv_layer("conv_proj", model.conv_proj, "input", "module 'conv_proj'"))
    x = add(Layer("tokens", "tokens", [x]))
    x = add(Layer("class_token", "cls_token", [x], {}, [("token", model.class_token[0, 0])]))
    x = add(Layer("encoder.pos_embedding", "pos_embed", [x], {},
                  [("weight", model.encoder.pos_embedding[0])]))
    for name, block in model.encoder.layers.named_children():
        p = f"encoder.layers.{name}"
        y = add(layernorm_layer(f"{p}.ln_1", block.ln_1, x, f"module '{p}.ln_1'"))
        y = add(mha_layer(f"{p}.self_attention", block.self_attention, y,
                          f"module '{p}.self_attention'"))
        x = add(Layer(f"{p}.add_1", "add", [y, x]))
        y = add(layernorm_layer(f"{p}.ln_2", block.ln_2, x, f"module '{p}.ln_2'"))
        y = sequential(f"{p}.mlp", block.mlp, y)
        x = add(Layer(f"{p}.add_2", "add", [x, y]))
    x = add(layernorm_layer("encoder.ln", model.encoder.ln, x, "module 'encoder.ln'"))
    x = add(Layer("select_token", "select_token", [x], {"index": 0}))
    x = sequential("heads", model.heads, x)
    return layers, x


# ----------------------------------------------------------------------------- fusion

def fuse(layers, output):
    """Fold batchnorm into the conv before it and relu/gelu into conv, linear or add, where the
    intermediate has a single consumer. Returns (kept layers, output layer)."""
    consumers = {}

    def count(layer):
        consumers[id(layer)] = consumers.get(id(layer), 0) + 1

    for layer in layers:
        for x in layer.inputs:
            count(x)
    count(output)
    for layer in layers:
        layer.inputs = [x.resolve() if isinstance(x, Layer) else x for x in layer.inputs]
        src = layer.inputs[0]
        if not isinstance(src, Layer) or consumers[id(src)] != 1:
            continue
        if (layer.op == "batchnorm" and src.op == "conv2d" and not src.attrs.get("bn")
                and "act" not in src.attrs):
            src.attrs["bn"] = True
            if layer.attrs["eps"] != 1e-5:
                src.attrs["eps"] = layer.attrs["eps"]
            src.params += [("bn_" + n, t) for n, t in layer.params]
        elif (layer.op in ("relu", "gelu") and src.op in ("conv2d", "linear", "add")
              and "act" not in src.attrs):
            src.attrs["act"] = layer.op
        else:
            continue
        layer.alias = src
        consumers[id(src)] = consumers.get(id(layer), 0)
    return [x for x in layers if x.alias is None], output.resolve()


def name_layers(layers):
    """Give every layer a unique name (suffix _1, _2 ... on repeats) of at most 63 bytes."""
    taken, next_suffix = {"input"}, {}
    for layer in layers:
        name, k = layer.base, next_suffix.get(layer.base, 1)
        while name in taken:
            name = f"{layer.base}_{k}"
            k += 1
        next_suffix[layer.base] = k
        taken.add(name)
        if len(name.encode()) > NAME_MAX:
            raise ExportError(f"layer name '{name}' is longer than {NAME_MAX} bytes")
        layer.name = name


# ----------------------------------------------------------------------------- writing

def export(name, seed):
    """Returns (model, graph dict, [(tensor name, tensor)]) for torchvision model `name`."""
    model = build_model(name, seed)
    shape = input_shape(model, name)
    with torch.no_grad():
        if isinstance(model, torchvision.models.VisionTransformer):
            layers, output = vit_layers(model)
        else:
            layers, output = fx_layers(model, shape)
    if not isinstance(output, Layer):
        raise ExportError("the model's output is its input")
    layers, output = fuse(layers, output)
    name_layers(layers)
    graph = {"format": FORMAT, "name": name, "input": {"shape": shape}, "layers": [],
             "output": output.name}
    tensors = []
    for layer in layers:
        entry = {"name": layer.name, "op": layer.op,
                 "inputs": [x.name if isinstance(x, Layer) else x for x in layer.inputs]}
        entry.update(layer.attrs)
        graph["layers"].append(entry)
        tensors += [(f"{layer.name}.{p}", t.detach()) for p, t in layer.params]
    return model, graph, tensors


def graph_text(graph):
    """The graph as JSON text with one layer per line (stable, diff-friendly)."""
    head = {k: v for k, v in graph.items() if k not in ("layers", "output")}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "layers": [')
    rows = [json.dumps(layer) for layer in graph["layers"]]
    lines += [f"    {r}," for r in rows[:-1]] + [f"    {rows[-1]}"]
    lines += ["  ],", f'  "output": {json.dumps(graph["output"])}', "}"]
    return "\n".join(lines) + "\n"


def write_weights(path, tensors):
    """The .ddsw file: magic, count, then per tensor name, dims and float32 LE data."""
    with open(path, "wb") as f:
        f.write(b"DDSWGT01" + struct.pack("<I", len(tensors)))
        for name, t in tensors:
            raw = name.encode()
            f.write(struct.pack("<I", len(raw)) + raw + struct.pack("<I", t.dim()))
            f.write(struct.pack(f"<{t.dim()}I", *t.shape))
            f.write(t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def write_floats(path, t):
    with open(path, "wb") as f:
        f.write(t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def reference_io(model, shape, batch, seed):
    """A seeded random input [batch, shape] and PyTorch's output for it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([batch] + shape, generator=g)
    with torch.no_grad():
        return x, model(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a torchvision.models name, e.g. resnet50")
    ap.add_argument("--seed", type=int, default=1, help="seed of weights and input [1]")
    ap.add_argument("--out-json", required=True, help="graph JSON to write")
    ap.add_argument("--out-weights", help="weights file (.ddsw) to write")
    ap.add_argument("--no-weights", action="store_true", help="write the graph only")
    ap.add_argument("--out-input", help="also write a random input, raw float32 LE [batch, ...]")
    ap.add_argument("--out-output", help="and PyTorch's output for it, raw float32 LE")
    ap.add_argument("--batch", type=int, default=1, help="batch of --out-input [1]")
    a = ap.parse_args(argv)
    if not a.no_weights and not a.out_weights:
        ap.error("give --out-weights PATH, or --no-weights for the graph only")
    if bool(a.out_input) != bool(a.out_output):
        ap.error("--out-input and --out-output go together")
    if a.batch < 1:
        ap.error("--batch must be >= 1")
    try:
        model, graph, tensors = export(a.model, a.seed)
    except ExportError as e:
        sys.exit(f"export_torchvision: {a.model}: {e}")
    with open(a.out_json, "w") as f:
        f.write(graph_text(graph))
    if not a.no_weights:
        write_weights(a.out_weights, tensors)
    if a.out_input:
        x, y = reference_io(model, graph["input"]["shape"], a.batch, a.seed)
        write_floats(a.out_input, x)
        write_floats(a.out_output, y)
    return 0


if __name__ == "__main__":
    sys.exit(main())
