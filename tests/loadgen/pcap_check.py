# pcap_check.py: checks a dds-loadgen pcap with scapy: Ethernet/IPv4/UDP frames, checksums, AES-256-GMAC tags (cryptography), nonces never repeated; writes the payloads for dgram_check.
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import IP, UDP, Ether, PcapReader, raw


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    path, records, key_hex, src, dst, dport = sys.argv[1:7]
    gcm = AESGCM(bytes.fromhex(key_hex))
    nonces = set()
    n = 0
    last_t = 0.0
    last_id = {}
    with open(records, "wb") as out, PcapReader(path) as rd:
        for p in rd:
            if not (Ether in p and IP in p and UDP in p) or p[Ether].type != 0x0800:
                fail(f"frame {n}: not Ethernet/IPv4/UDP: {p.summary()}")
            ip, udp = p[IP], p[UDP]
            if ip.src != src or ip.dst != dst or udp.dport != int(dport) or ip.flags != 2:
                fail(f"frame {n}: addresses {ip.src}:{udp.sport} -> {ip.dst}:{udp.dport}")
            if ip.frag != 0 or ip.len != len(raw(ip)) or udp.len != 8 + len(raw(udp.payload)):
                fail(f"frame {n}: IP/UDP lengths")
            # recompute both checksums with scapy and compare with the file's
            want_ip, want_udp = ip.chksum, udp.chksum
            q = p.copy()
            del q[IP].chksum
            del q[UDP].chksum
            q = Ether(raw(q))
            if q[IP].chksum != want_ip or q[UDP].chksum != want_udp:
                fail(f"frame {n}: checksums {want_ip:#x}/{want_udp:#x}, "
                     f"scapy {q[IP].chksum:#x}/{q[UDP].chksum:#x}")
            d = raw(udp.payload)
            nonce = d[-28:-16]
            if gcm.encrypt(nonce, b"", d[:-16]) != d[-16:]:
                fail(f"frame {n}: AES-256-GMAC tag (cryptography) does not verify")
            if nonce in nonces:
                fail(f"frame {n}: nonce {nonce.hex()} repeated")
            nonces.add(nonce)
            magic, ver, typ, _flags, _blen, dev = struct.unpack(">HBBHHI", d[:12])
            rid = struct.unpack(">Q", d[16:24])[0]
            if magic != 0x4453 or ver != 2:
                fail(f"frame {n}: not a DDS v2 datagram")
            if rid < last_id.get(dev, 0):
                fail(f"frame {n}: device {dev} request id {rid} after {last_id[dev]}")
            last_id[dev] = rid
            t = float(p.time)
            if t < last_t:
                fail(f"frame {n}: timestamps go back")
            last_t = t
            out.write(struct.pack("<I", len(d)) + d)
            n += 1
    print(f"pcap ok: {n} frames, {len(last_id)} devices")


main()
