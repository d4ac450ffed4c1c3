#!/usr/bin/python3
"""dissector_check.py: write a pcap of every DDS message type, or check tshark's fields against a decode of a pcap.

  dissector_check.py write OUT.pcap        one datagram of each type (built from docs/protocol.md)
  dissector_check.py check PCAP FIELDS     FIELDS: tshark -T fields output (see test_dissector.sh)
The check decodes each UDP payload here with struct and compares every field tshark printed.
"""
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import IP, UDP, Ether, Raw, rdpcap, wrpcap

KEY = bytes(range(32))
FIELDS = ["type", "device_id", "request_id", "frag_index", "frag_count", "body_len",
          "model_hash", "value", "payload_len", "frag_offset", "rx_mtu", "reason", "price",
          "nonce", "tag"]


def dgram(typ, dev, rid, body, idx=0, count=1, mhash=0x1122334455667788):
    hdr = struct.pack(">HBBHHIHHQQ", 0x4453, 2, typ, 0, len(body), dev, idx, count, rid, mhash)
    aad = hdr + body + os.urandom(12)  # header, body, nonce: the GMAC's AAD
    return aad + AESGCM(KEY).encrypt(aad[-12:], b"", aad)


def write(path):
    tensor = struct.pack(">HBB4I", 3, 1, 2, 2, 2, 0, 0) + struct.pack("<4f", 1, 2, 3, 4)
    msgs = [
        dgram(1, 7, 1, struct.pack(">I", 1500)),
        dgram(2, 7, 1, struct.pack(">ddIIIHH2d", 1.5, 1.0, 1 << 24, 8, 500, 1, 2, 1.0, 0.0)),
        dgram(3, 7, 2, struct.pack(">dIIHH", 2.5, 16, 0, 16, 1) + tensor),
        dgram(4, 7, 2, struct.pack(">dIIHH", 1.5, 16, 0, 16, 1) + tensor),
        dgram(5, 7, 9, struct.pack(">d", 1.75), mhash=0),
        dgram(6, 7, 3, struct.pack(">dH", 1.5, 25)),
        dgram(7, 7, 4, struct.pack(">dI", 1.5, 100)),
    ]
    wrpcap(path, [Ether() / IP(src="10.99.0.2", dst="10.99.0.1") /
                  UDP(sport=40000, dport=9000) / Raw(m) for m in msgs])


def expect(payload):
    typ, blen, dev, idx, count, rid, mhash = (struct.unpack(">HBBHHIHHQQ", payload[:32])[i]
                                              for i in (2, 4, 5, 6, 7, 8, 9))
    b = payload[32:32 + blen]
    e = {"type": typ, "device_id": dev, "request_id": rid, "frag_index": idx,
         "frag_count": count, "body_len": blen, "model_hash": mhash,
         "nonce": payload[32 + blen:44 + blen], "tag": payload[44 + blen:60 + blen]}
    if typ in (3, 4):
        e["value"], e["payload_len"], e["frag_offset"] = struct.unpack(">dII", b[:16])
    elif typ == 1:
        e["rx_mtu"] = struct.unpack(">I", b[:4])[0]
    elif typ in (2, 5, 6, 7):
        e["price"] = struct.unpack(">d", b[:8])[0]
        if typ == 6:
            e["reason"] = struct.unpack(">H", b[8:10])[0]
    return e


def check(pcap, fields_file):
    rows = [line.rstrip("\n").split("\t") for line in open(fields_file) if line.strip()]
    pkts = [bytes(p[UDP].payload) for p in rdpcap(pcap) if UDP in p]
    if len(rows) != len(pkts):
        sys.exit(f"FAIL: tshark decoded {len(rows)} DDS datagrams, the pcap has {len(pkts)}")
    for n, (row, payload) in enumerate(zip(rows, pkts)):
        got = dict(zip(FIELDS, row))
        for k, v in expect(payload).items():
            g = got.get(k, "")
            if isinstance(v, bytes):  # tshark prints bytes as hex, maybe with colons
                ok = bytes.fromhex(g.replace(":", "")) == v
            elif isinstance(v, float):
                ok = float(g) == float(v)
            else:
                ok = g and int(g, 0) == v
            if not ok:
                sys.exit(f"FAIL: datagram {n}: {k} is '{g}' in tshark, {v} decoded here")
    print(f"{pcap}: {len(rows)} datagrams, every field matches")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
