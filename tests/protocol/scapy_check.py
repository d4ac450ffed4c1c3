#!/usr/bin/python3
"""scapy_check.py: rebuilds proto_dump's datagrams with scapy from docs/protocol.md and compares.

An independent implementation of the byte layout (scapy fields; the AES-256-GMAC tag from the
cryptography package, over the nonce the C side drew): usage scapy_check.py PROTO_DUMP_BINARY.
Exit status 0 when every datagram matches.
"""
import struct
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import IP, UDP, Packet, Raw
from scapy.fields import (ByteField, FieldLenField, IEEEDoubleField, IntField, LongField,
                          PacketListField, ShortField, StrLenField, XLongField, XShortField)

KEY = bytes((3 * i + 1) & 0xFF for i in range(32))
DEV, REQ, MODEL = 0x0A0B0C0D, 77, 0xFEEDFACE12345678
TENSORS = [(2, (3, 100)), (4, (2, 8, 25))]


class DdsHeader(Packet):
    name = "DDS header"
    fields_desc = [XShortField("magic", 0x4453), ByteField("version", 2), ByteField("type", 0),
                   ShortField("flags", 0), ShortField("body_len", 0), IntField("device_id", 0),
                   ShortField("frag_index", 0), ShortField("frag_count", 1),
                   LongField("request_id", 0), XLongField("model_hash", 0)]


class DdsTensor(Packet):
    name = "DDS tensor"
    fields_desc = [ShortField("value_id", 0), ByteField("dtype", 1), ByteField("ndim", 1),
                   IntField("d0", 0), IntField("d1", 0), IntField("d2", 0), IntField("d3", 0)]

    def extract_padding(self, s):
        return b"", s


class DdsTensorMsg(Packet):
    name = "DDS tensor message"
    fields_desc = [IEEEDoubleField("value", 0.0), IntField("payload_len", 0),
                   IntField("frag_offset", 0),
                   FieldLenField("frag_len", None, length_of="data", fmt="!H"),
                   FieldLenField("n_tensors", None, count_of="tensors", fmt="!H"),
                   PacketListField("tensors", [], DdsTensor, count_from=lambda p: p.n_tensors),
                   StrLenField("data", b"", length_from=lambda p: p.frag_len)]


def signed(header, body, nonce):
    """header + body + nonce (12 bytes) + the GMAC tag of all of it (docs/protocol.md)."""
    header.body_len = len(body)
    aad = bytes(header) + body + nonce
    return aad + AESGCM(KEY).encrypt(nonce, b"", aad)


def requests(mtu, nonces):
    payload = b"".join(struct.pack("<f", 0.25 * i) for i in range(700))
    tensors = [DdsTensor(value_id=v, dtype=1, ndim=len(s), **{f"d{k}": d for k, d in enumerate(s)})
               for v, s in TENSORS]
    desc = 20 + 20 * len(tensors)
    chunk = min(mtu - 28 - 32 - desc - 28, 65535 - desc) // 8 * 8
    count = (len(payload) + chunk - 1) // chunk
    out = []
    for i in range(count):
        body = DdsTensorMsg(value=3.25, payload_len=len(payload), frag_offset=i * chunk,
                            tensors=tensors, data=payload[i * chunk:(i + 1) * chunk])
        hdr = DdsHeader(type=3, device_id=DEV, frag_index=i, frag_count=count, request_id=REQ,
                        model_hash=MODEL)
        out.append(("request", signed(hdr, bytes(body), next(nonces))))
    return out


def expected(mtu, nonces):
    """The datagrams proto_dump should print, signed with the nonces it drew (an iterator)."""
    out = requests(mtu, nonces)
    out.append(("register", signed(DdsHeader(type=1, device_id=DEV, request_id=REQ + 1,
                                             model_hash=MODEL), struct.pack("!I", mtu),
                                   next(nonces))))
    out.append(("price", signed(DdsHeader(type=5, device_id=DEV, request_id=12, model_hash=0),
                                struct.pack("!d", 0.125), next(nonces))))
    return out


def check(binary, mtu):
    lines = subprocess.run([binary, str(mtu)], check=True, capture_output=True,
                           text=True).stdout.split()
    got = [(lines[i], bytes.fromhex(lines[i + 1])) for i in range(0, len(lines), 2)]
    nonces = [g[-28:-16] for _, g in got]
    assert len(set(nonces)) == len(nonces), f"MTU {mtu}: a nonce repeats"
    want = expected(mtu, iter(nonces + [bytes(12)] * 8))
    assert len(got) == len(want), f"MTU {mtu}: {len(got)} datagrams, expected {len(want)}"
    for (gname, g), (wname, w) in zip(got, want):
        assert gname == wname, f"MTU {mtu}: got a {gname}, expected a {wname}"
        if g != w:
            at = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
            sys.exit(f"MTU {mtu}: {gname} ({len(g)} bytes, expected {len(w)}) differs at byte "
                     f"{at}: C {g[at:at + 8].hex()} vs scapy {w[at:at + 8].hex()}")
        wire = IP(dst="192.0.2.1") / UDP(sport=40000, dport=7400) / Raw(g)
        assert len(bytes(wire)) <= mtu, f"MTU {mtu}: {len(bytes(wire))}-byte packet"
    # And scapy parses the C bytes back into the documented fields.
    first = DdsHeader(got[0][1][:32])
    body = DdsTensorMsg(got[0][1][32:-28])
    assert first.magic == 0x4453 and first.device_id == DEV and first.request_id == REQ
    assert body.value == 3.25 and body.n_tensors == 2 and body.tensors[1].d2 == 25
    print(f"MTU {mtu}: {len(got)} datagrams match ({len(got) - 2} request fragments)")


def main():
    for mtu in (1500, 9000):
        check(sys.argv[1], mtu)


if __name__ == "__main__":
    main()
