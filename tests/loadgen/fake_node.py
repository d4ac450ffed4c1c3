# fake_node.py: a scripted DDS node on loopback (Python, AES-256-GMAC from the cryptography package) that answers dds-loadgen's requests with RESULT, ERROR, BUSY or nothing in turn.
import json
import os
import socket
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HDR = struct.Struct(">HBBHHIHHQQ")  # magic, version, type, flags, body_len, device, index, count, id, hash
KEY = bytes(range(32))
REGISTER, REG_REPLY, REQUEST, RESULT, PRICE, ERROR, BUSY = 1, 2, 3, 4, 5, 6, 7
BAD_SPLIT = 25


def tag(aad):
    """The GMAC tag of aad, whose last 12 bytes are the nonce (docs/protocol.md)."""
    return AESGCM(KEY).encrypt(aad[-12:], b"", aad)


def dgram(typ, dev, rid, mhash, body, index=0, count=1):
    d = HDR.pack(0x4453, 2, typ, 0, len(body), dev, index, count, rid, mhash) + body
    d += os.urandom(12)  # a random nonce: fine for a test's few datagrams
    return d + tag(d)


def main():
    port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    price = 2e-12
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.02)
    peers = {}
    n = {"requests": 0, "result": 0, "error": 0, "busy": 0, "drop": 0, "bad_mac": 0,
         "register": 0, "price_msgs": 0, "fragments": 0}
    actions = ["busy", "error", "result", "drop"]
    end = time.time() + seconds
    next_round, rnd = time.time() + 0.1, 0
    while time.time() < end:
        if time.time() >= next_round:  # a PRICE to every registered device
            rnd += 1
            price *= 1.01
            next_round += 0.1
            for dev, addr in peers.items():
                s.sendto(dgram(PRICE, dev, rnd, 0, struct.pack(">d", price)), addr)
                n["price_msgs"] += 1
        try:
            d, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        if len(d) < 60 or tag(d[:-16]) != d[-16:]:
            n["bad_mac"] += 1
            continue
        _m, _v, typ, _f, _bl, dev, index, count, rid, mhash = HDR.unpack(d[:32])
        if typ == REGISTER:
            n["register"] += 1
            peers[dev] = addr
            body = struct.pack(">ddIIIHH", price, 1e-12, 1 << 24, 8, 500, 1, 2) + struct.pack(">dd", 1.0, 0.0)
            s.sendto(dgram(REG_REPLY, dev, rid, mhash, body), addr)
            continue
        n["fragments"] += 1
        if typ != REQUEST or index != count - 1:  # act once per request, on its last fragment
            continue
        act = actions[n["requests"] % 4]
        n["requests"] += 1
        n[act] += 1
        if act == "result":
            payload = struct.pack("<4f", 1, 2, 3, 4)
            desc = struct.pack(">HBB4I", 1, 1, 1, 4, 0, 0, 0)
            body = struct.pack(">dIIHH", price, 16, 0, 16, 1) + desc + payload
            s.sendto(dgram(RESULT, dev, rid, mhash, body), addr)
        elif act == "error":
            s.sendto(dgram(ERROR, dev, rid, mhash, struct.pack(">dH", price, BAD_SPLIT)), addr)
        elif act == "busy":
            s.sendto(dgram(BUSY, dev, rid, mhash, struct.pack(">dI", price, 5)), addr)
    n["rounds"] = rnd
    json.dump(n, open(out, "w"))


main()
