#!/usr/bin/python3
"""barrage.py: malformed and hostile traffic (scapy) at dds-server for a while; checks ARP and ICMP answers first.

Run inside the client's network namespace. Sends, round after round until --seconds pass:
truncations, bad lengths, bad checksums, wrong versions, IP fragments, protocol garbage, forged
MACs, unknown devices, replays, and a fragment bomb plus a flood from one (keyed) device.
DDS datagrams are built here from docs/protocol.md with the cryptography package's AES-GCM
(the GMAC tag), independently of the C library. Exit status 1 if ARP or ICMP echo is not
answered correctly.
"""
import argparse
import os
import random
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import ARP, ICMP, IP, UDP, Ether, Raw, conf, fragment, srp1

MAGIC, REQUEST, REGISTER = 0x4453, 3, 1


def dds(key, typ, dev, rid, mhash, body, idx=0, count=1, version=2, flags=0, mac_ok=True):
    hdr = struct.pack(">HBBHHIHHQQ", MAGIC, version, typ, flags, len(body), dev, idx, count,
                      rid, mhash)
    aad = hdr + body + os.urandom(12)  # a random nonce: fine for a test's few datagrams
    tag = AESGCM(key).encrypt(aad[-12:], b"", aad)
    if not mac_ok:
        tag = bytes(b ^ 0x55 for b in tag)
    return aad + tag


def req_body(payload_len, off, data, dims, x=1.0, value_id=0):
    dims = list(dims) + [0] * (4 - len(dims))
    desc = struct.pack(">HBB4I", value_id, 1, len([d for d in dims if d]), *dims)
    return struct.pack(">dIIHH", x, payload_len, off, len(data), 1) + desc + data


class Barrage:
    def __init__(self, a):
        self.a = a
        self.key = bytes.fromhex(a.key)
        self.sock = conf.L2socket(iface=a.iface)
        self.eth = Ether(dst=a.server_mac)
        self.rid = 1000
        self.sent = 0

    def ip(self, **kw):
        return IP(src=self.a.src, dst=self.a.dst, **kw)

    def udp(self, payload, **kw):
        return self.eth / self.ip() / UDP(sport=40001, dport=self.a.port, **kw) / Raw(payload)

    def send(self, frame):
        self.sock.send(frame if isinstance(frame, bytes) else bytes(frame))
        self.sent += 1
        if self.sent % 64 == 0:
            time.sleep(0.002)  # a flood, but not one that starves the good client's socket

    def next_rid(self):
        self.rid += 1
        return self.rid

    def good_dgram(self, dev=2, rid=None, data=b"\0" * 8, off=0, plen=3072, mac_ok=True,
                   x=1.0):
        body = req_body(plen, off, data, [3, 16, 16] if plen == 3072 else [plen // 4], x)
        return dds(self.key, REQUEST, dev, rid or self.next_rid(), self.a.model_hash, body,
                   mac_ok=mac_ok)

    def l2_l4(self):
        good = bytes(self.udp(self.good_dgram()))
        for n in range(0, len(good), 7):  # truncations
            self.send(good[:n])
        self.send(self.eth / IP(src=self.a.src, dst=self.a.dst, version=6) / UDP(dport=self.a.port))
        self.send(self.eth / IP(src=self.a.src, dst=self.a.dst, ihl=4) / UDP(dport=self.a.port))
        self.send(self.eth / self.ip(len=2000) / UDP(dport=self.a.port) / Raw(b"x" * 20))
        self.send(self.eth / self.ip(chksum=0x1234) / UDP(dport=self.a.port) / Raw(b"x" * 20))
        self.send(self.eth / self.ip(proto=6) / Raw(b"x" * 40))
        self.send(self.eth / self.ip() / UDP(dport=self.a.port, len=4000) / Raw(b"x" * 20))
        self.send(self.eth / self.ip() / UDP(dport=self.a.port, chksum=0x4321) / Raw(b"x" * 20))
        self.send(self.eth / self.ip() / UDP(dport=self.a.port + 1) / Raw(b"x" * 20))
        self.send(self.eth / self.ip() / ICMP(type=8, chksum=0x1111) / Raw(b"ping"))
        self.send(self.eth / self.ip() / ICMP(type=13) / Raw(b"timestamp"))
        self.send(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, pdst="10.99.0.77", psrc=self.a.src))
        self.send(self.eth / IP(src="224.0.0.5", dst=self.a.dst) / UDP(dport=self.a.port))
        self.send(Ether(dst=self.a.server_mac, type=0x86dd) / Raw(b"\x60" + b"\0" * 60))
        for f in fragment(self.ip() / UDP(dport=self.a.port) / Raw(b"F" * 3000), fragsize=1000):
            self.send(self.eth / f)  # IP fragments: refused by policy

    def protocol_garbage(self):
        key, h = self.key, self.a.model_hash
        dg = self.good_dgram()
        self.send(self.udp(dg[:40]))                                         # truncated
        self.send(self.udp(b"XX" + dg[2:]))                                  # bad_magic
        self.send(self.udp(dds(key, REQUEST, 2, self.next_rid(), h, dg[32:-28], version=1)))
        self.send(self.udp(dds(key, 9, 2, self.next_rid(), h, b"")))        # bad_type
        self.send(self.udp(dds(key, REQUEST, 2, self.next_rid(), h, dg[32:-28], flags=1)))
        self.send(self.udp(dds(key, REQUEST, 2, self.next_rid(), h, dg[32:-32])))  # bad_length
        self.send(self.udp(dds(key, REQUEST, 2, self.next_rid(), h,
                               req_body(3072, 3, b"\0" * 8, [3, 16, 16]))))  # bad_fragment
        self.send(self.udp(self.good_dgram(mac_ok=False)))                   # bad_mac
        self.send(self.udp(self.good_dgram(dev=99)))                         # unknown_device
        self.send(self.udp(self.good_dgram(plen=1 << 30)))                   # too_large
        self.send(self.udp(bytes(random.getrandbits(8) for _ in range(200))))

    def reassembly_abuse(self):
        # duplicate, then a conflicting overlap (the message is dropped), then a late fragment
        rid = self.next_rid()
        self.send(self.udp(self.good_dgram(rid=rid, data=b"A" * 16)))
        self.send(self.udp(self.good_dgram(rid=rid, data=b"A" * 16)))               # duplicate
        self.send(self.udp(self.good_dgram(rid=rid, data=b"B" * 16, off=8)))        # overlap
        self.send(self.udp(self.good_dgram(rid=rid, data=b"A" * 8, off=64)))        # replay
        rid = self.next_rid()
        self.send(self.udp(self.good_dgram(rid=rid)))
        self.send(self.udp(self.good_dgram(rid=rid, x=2.0, data=b"\1" * 8, off=8)))  # inconsistent
        # fragment bomb: first fragments only, each a fresh request: memory and slot limits
        for _ in range(12):
            self.send(self.udp(self.good_dgram()))
        for _ in range(12):
            self.send(self.udp(dds(self.key, REQUEST, 2, self.next_rid(), self.a.model_hash,
                                   req_body(32, 0, b"\0" * 8, [8], value_id=7))))

    def check_arp_icmp(self):
        ok = True
        r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, pdst=self.a.dst, psrc=self.a.src),
                 iface=self.a.iface, timeout=2, verbose=False)
        if r is None or ARP not in r or r[ARP].op != 2 or r[ARP].hwsrc != self.a.server_mac:
            print("FAIL: no correct ARP reply", r and r.summary())
            ok = False
        data = bytes(range(200))
        r = srp1(self.eth / self.ip() / ICMP(type=8, id=77, seq=5) / Raw(data),
                 iface=self.a.iface, timeout=2, verbose=False)
        if (r is None or ICMP not in r or r[ICMP].type != 0 or r[ICMP].id != 77 or
                bytes(r[ICMP].payload) != data):
            print("FAIL: no correct ICMP echo reply", r and r.summary())
            ok = False
        return ok

    def run(self):
        ok = self.check_arp_icmp()
        end = time.time() + self.a.seconds
        rounds = 0
        while time.time() < end:
            self.l2_l4()
            self.protocol_garbage()
            self.reassembly_abuse()
            rounds += 1
        print(f"barrage: {rounds} rounds, {self.sent} frames; ARP/ICMP {'ok' if ok else 'FAILED'}")
        return ok


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iface", required=True)
    p.add_argument("--server-mac", required=True)
    p.add_argument("--src", default="10.99.0.2")
    p.add_argument("--dst", default="10.99.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--key", required=True)
    p.add_argument("--model-hash", type=lambda s: int(s, 0), required=True)
    p.add_argument("--seconds", type=float, default=5)
    a = p.parse_args()
    random.seed(1)
    sys.exit(0 if Barrage(a).run() else 1)


if __name__ == "__main__":
    main()
