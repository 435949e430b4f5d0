#!/usr/bin/env python3
"""Print N free loopback ports, chosen by the kernel, free for TCP and UDP
alike (memberlist's gossip needs both): usage free-ports.py N. The benchmark
scripts start their servers on them."""
import socket
import sys

n = int(sys.argv[1])
socks, ports = [], []
while len(ports) < n:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    socks += [t, u]  # held until all are chosen, so none repeats
    ports.append(port)
print(" ".join(map(str, ports)))
