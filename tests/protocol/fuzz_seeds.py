#!/usr/bin/python3
"""fuzz_seeds.py: writes a seed corpus for fuzz_proto (record format in fuzz_proto.c) to DIR.

Seeds hold valid datagrams of every type (laid out from docs/protocol.md, MAC left to the
fuzzer's re-sign bit), fragmented requests in and out of order, and a few broken ones.
"""
import os
import struct
import sys


def header(mtype, dev, index, count, req, model, body):
    return struct.pack("!HBBHHIHHQQ", 0x4453, 2, mtype, 0, len(body), dev, index, count, req,
                       model) + body + bytes(12 + 16)  # nonce + tag: the re-sign bit fills them


def tensor_frags(mtype, dev, req, value, shapes, chunk):
    desc = b"".join(struct.pack("!HBB4I", v, 1, len(s), *(list(s) + [0] * (4 - len(s))))
                    for v, s in shapes)
    size = sum(4 * eval("*".join(map(str, s))) for _, s in shapes)
    payload = bytes((i * 7) & 0xFF for i in range(size))
    count = (size + chunk - 1) // chunk
    out = []
    for i in range(count):
        data = payload[i * chunk:(i + 1) * chunk]
        body = struct.pack("!dIIHH", value, size, i * chunk, len(data), len(shapes)) + desc + data
        out.append(header(mtype, dev, i, count, req, 0, body))
    return out


def record(dgram, signed=True, device=False, tick=1):
    return bytes([tick << 2 | device << 1 | signed]) + struct.pack("!H", len(dgram)) + dgram


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    req = tensor_frags(3, 1, 5, 1.5, [(1, (4,)), (2, (4,))], 8)
    res = tensor_frags(4, 2, 6, 0.5, [(3, (2, 2))], 8)
    seeds = {
        "request_in_order": b"".join(record(d) for d in req),
        "request_reversed_dup": b"".join(record(d) for d in req[::-1] + req[:1]),
        "request_timeout": b"".join(record(d, tick=63) for d in req),
        "request_forged": b"".join(record(d, signed=False) for d in req),
        "result_device": b"".join(record(d, device=True) for d in res),
        "singles": b"".join([
            record(header(1, 3, 0, 1, 9, 0x1234, struct.pack("!I", 1500))),
            record(header(2, 3, 0, 1, 9, 0, struct.pack("!ddIIIHH2d", 1, 0.5, 4096, 2, 100,
                                                        1, 2, 0.5, 1.0)), device=True),
            record(header(5, 3, 0, 1, 10, 0, struct.pack("!d", 2.0)), device=True),
            record(header(6, 3, 0, 1, 11, 0, struct.pack("!dH", 2.0, 25)), device=True),
            record(header(7, 3, 0, 1, 12, 0, struct.pack("!dI", 2.0, 50)), device=True),
        ]),
        "broken": record(b"\x44\x53\x01" + bytes(60)) + record(b"DS"),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
