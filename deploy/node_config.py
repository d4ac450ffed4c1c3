#!/usr/bin/python3
"""node_config.py: writes a dds-server config (node.json) from flags: the one config writer of the tests, the benchmarks and the demo.

Standard library only. Every key it writes is in docs/server.md's config reference; any other
key goes in with --set, deep-merged last. Errors (a bad flag, a missing model file, a --set that
is not a JSON object) print a message naming the flag and exit 2; nothing is written then.

  node_config.py --ip 10.99.0.1 --prefix dds --iface veth0 --devices 100 --keys random \\
      --model zoo/resnet50.json,max_batch=8 --set '{"pricing": {"round_ms": 100}}' -o node.json
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import sys

PROG = "node_config.py"


class ConfigError(Exception):
    """A flag's value that cannot make a config: the message names the flag."""


def die(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr)
    sys.exit(2)


def json_object(flag, text):
    """The JSON object in text, or ConfigError naming flag."""
    try:
        v = json.loads(text)
    except ValueError as e:
        raise ConfigError("%s: bad JSON (%s): %s" % (flag, e, text))
    if not isinstance(v, dict):
        raise ConfigError("%s: not a JSON object: %s" % (flag, text))
    return v


def deep_merge(base, over):
    """over merged into base (in place): objects key by key, anything else replaced."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def existing_path(flag, path):
    """path made absolute against the current folder (an absolute one is kept as written), which
    must be a file; dds-server would read a relative one against the config's folder."""
    if not os.path.isfile(path):
        raise ConfigError("%s: no such file: %s" % (flag, path))
    return path if os.path.isabs(path) else os.path.abspath(path)


def spec_value(text):
    """A KEY=VALUE option's value: JSON (number, true, null, ...) when it parses, else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def model_entry(spec):
    """One models[] entry from --model: a JSON object with "graph", or PATH[,KEY=VALUE...]."""
    if spec.lstrip().startswith("{"):
        m = json_object("--model", spec)
        if not isinstance(m.get("graph"), str):
            raise ConfigError("--model: the object needs a \"graph\" path: %s" % spec)
    else:
        path, *opts = spec.split(",")
        m = {"graph": path}
        for o in opts:
            k, eq, v = o.partition("=")
            if not eq or not k or k == "graph":
                raise ConfigError("--model %s: options are KEY=VALUE (seed=1, max_batch=8), not '%s'"
                                  % (spec, o))
            m[k] = spec_value(v)
    m["graph"] = existing_path("--model", m["graph"])
    if isinstance(m.get("weights"), str):
        m["weights"] = existing_path("--model %s: weights" % spec, m["weights"])
    return m


def device_keys(spec, n):
    """n keys (64 hex digits) from --keys: random, derived:SEED (BLAKE2b-256 of SEED and the
    device's index 0..n-1) or fixed:HEX64 (the same key for all)."""
    kind, _, arg = spec.partition(":")
    if kind == "random" and not arg:
        return [secrets.token_hex(32) for _ in range(n)]
    if kind == "derived" and arg:
        return [hashlib.blake2b(b"%s%d" % (arg.encode(), i), digest_size=32).hexdigest()
                for i in range(n)]
    if kind == "fixed" and re.fullmatch("[0-9a-fA-F]{64}", arg):
        return [arg] * n
    raise ConfigError("--keys: random, derived:SEED or fixed:HEX64 (64 hex digits), not '%s'" % spec)


def eal_args(a):
    """The config's eal list: memory without hugepages or PCI, lcores, prefix, the port's vdev."""
    if (a.vdev is None) == (a.iface is None):
        raise ConfigError("exactly one of --vdev SPEC and --iface IF is needed")
    if a.lcores is not None and a.lcore_map is not None:
        raise ConfigError("--lcores and --lcore-map exclude each other")
    lcores = ["--lcores", a.lcore_map] if a.lcore_map is not None else ["-l", a.lcores or "0"]
    vdev = a.vdev if a.vdev is not None else "net_af_packet0,iface=%s,framecnt=4096" % a.iface
    return (["--no-huge", "-m", str(a.mem), "--no-pci"] + lcores +
            ["--file-prefix=" + a.prefix, "--vdev=" + vdev, "--log-level=lib.eal:error"])


def build(a):
    """The whole config as a dict, or ConfigError; the --set objects are merged last, in order."""
    if a.devices and a.keys is None:
        raise ConfigError("--devices %d needs --keys" % a.devices)
    cfg = {
        "eal": eal_args(a),
        "interface": {"ip": a.ip, "udp_port": a.udp_port,
                      "verify_udp_checksum": a.verify_udp_checksum == "true"},
        "devices": [{"id": a.first_id + i, "key": k}
                    for i, k in enumerate(device_keys(a.keys, a.devices) if a.devices else [])],
        "models": [model_entry(s) for s in a.model],
    }
    for s in a.set:
        deep_merge(cfg, json_object("--set", s))
    return cfg


def int_in(lo, hi):
    """An argparse type: an integer in lo..hi."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError("an integer in %d..%d, not '%s'" % (lo, hi, text))
        return v
    return parse


def parser():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    arg = ap.add_argument
    arg("--ip", metavar="A", required=True, help="interface.ip, the node's address")
    arg("--udp-port", metavar="N", type=int_in(1, 65535), default=9000, help="interface.udp_port (9000)")
    arg("--verify-udp-checksum", choices=("true", "false"), default="true",
        help="interface.verify_udp_checksum (true; false on a veth whose peer offloads)")
    arg("--prefix", metavar="P", required=True, help="the EAL's --file-prefix (dds-ctl -p P)")
    arg("--vdev", metavar="SPEC", help="the port: an EAL --vdev spec (net_tap0,iface=dds0, ...)")
    arg("--iface", metavar="IF", help="the port: net_af_packet on interface IF, framecnt=4096")
    arg("--mem", metavar="MB", type=int_in(1, 1 << 20), default=512, help="EAL -m, MB (512)")
    arg("--lcores", metavar="LIST", help="EAL -l LIST (0: the main lcore runs the one queue)")
    arg("--lcore-map", metavar="MAP", help="EAL --lcores MAP instead (0@0,1@0,2@1)")
    arg("--devices", metavar="N", type=int_in(0, 1 << 20), default=0, help="devices allowed to send (0)")
    arg("--first-id", metavar="ID", type=int_in(0, (1 << 32) - 1), default=1,
        help="the first device's id (1)")
    arg("--keys", metavar="KIND", help="random | derived:SEED (blake2b(SEED + index)) | fixed:HEX64")
    arg("--model", metavar="SPEC", action="append", required=True,
        help="PATH[,KEY=VALUE...] or a JSON models[] entry; repeatable")
    arg("--set", metavar="JSON", action="append", default=[],
        help="a JSON object deep-merged into the config last; repeatable")
    arg("-o", "--output", metavar="FILE", help="the file to write (default: stdout)")
    return ap


def main():
    a = parser().parse_args()
    try:
        cfg = build(a)
    except ConfigError as e:
        die(str(e))
    text = json.dumps(cfg, indent=1) + "\n"
    if a.output is None:
        sys.stdout.write(text)
        return
    try:
        with open(a.output, "w") as f:
            f.write(text)
    except OSError as e:
        die("-o %s: %s" % (a.output, e.strerror))


if __name__ == "__main__":
    main()
