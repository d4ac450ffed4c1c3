#!/usr/bin/python3
"""lossy_relay.py: a UDP relay that drops a fraction of datagrams both ways (seeded), and can make the uplink slow, for kernels without netem.

usage: lossy_relay.py LISTEN_IP LISTEN_PORT SERVER_IP SERVER_PORT LOSS STATS_FILE [DELAY_MS]
The device sends to LISTEN; the relay forwards to SERVER from its own socket and sends the
answers back to the last device address. With DELAY_MS, each datagram from the device waits
that long before it is forwarded, until SIGUSR1 ends the slow phase. On SIGTERM it writes
"forwarded N dropped M" to STATS_FILE and exits.
"""
import random
import select
import signal
import socket
import sys
import time


def main():
    lip, lport, sip, sport, loss, stats = sys.argv[1:7]
    loss = float(loss)
    delay = {"s": float(sys.argv[7]) / 1e3 if len(sys.argv) > 7 else 0.0}
    rng = random.Random(1)
    dev = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dev.bind((lip, int(lport)))
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.connect((sip, int(sport)))
    count = {"forwarded": 0, "dropped": 0}
    peer = None

    def stop(*_):
        with open(stats, "w") as f:
            f.write(f"forwarded {count['forwarded']} dropped {count['dropped']}\n")
        sys.exit(0)

    def fast(*_):
        delay["s"] = 0.0

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, fast)
    while True:
        ready, _, _ = select.select([dev, srv], [], [])
        for s in ready:
            if s is dev:
                data, peer = dev.recvfrom(65536)
                if delay["s"]:
                    time.sleep(delay["s"])
                send = lambda d: srv.send(d)
            else:
                data = srv.recv(65536)
                if peer is None:
                    continue
                send = lambda d: dev.sendto(d, peer)
            if rng.random() < loss:
                count["dropped"] += 1
            else:
                count["forwarded"] += 1
                send(data)


if __name__ == "__main__":
    main()
