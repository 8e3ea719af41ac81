#!/usr/bin/env python3
"""netlab-dns.py ADDR NAME=IP...: the lab router's DNS on the management veth (RouterOS's
`/ip dns` with `allow-remote-requests=yes`, which the container's `dns=` points at), cut down to
what a container asks: A for the names given (answered), any other type for them (NOERROR with
no answer, so a resolver asking A and AAAA at once gets its empty AAAA at once instead of
waiting for a timeout), and NXDOMAIN for everything else. UDP only, standard library only.

Each query is appended to the log file given by NETLAB_DNS_LOG (name and type, one a line), so
a test can see which names the container resolved. Ends on SIGTERM/SIGINT.
"""
import os
import signal
import socket
import struct
import sys

TYPE_A = 1
TYPE_NAMES = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 33: "SRV", 65: "HTTPS"}


def parse_question(msg):
    """Returns (qname, qtype, end offset of the question) of the first question."""
    labels, i = [], 12
    while True:
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(msg[i + 1 : i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    qtype, _qclass = struct.unpack("!HH", msg[i : i + 4])
    return ".".join(labels), qtype, i + 4


def answer(msg, table):
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000 or qdcount != 1:
        return None, None, None
    name, qtype, end = parse_question(msg)
    rd = flags & 0x0100
    question = msg[12:end]
    if name not in table:
        # QR, AA, RD as asked, RA; rcode 3 = NXDOMAIN.
        return struct.pack("!HHHHHH", qid, 0x8480 | rd | 3, 1, 0, 0, 0) + question, name, qtype
    if qtype != TYPE_A:
        return struct.pack("!HHHHHH", qid, 0x8480 | rd, 1, 0, 0, 0) + question, name, qtype
    rr = struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 60, 4) + socket.inet_aton(table[name])
    return struct.pack("!HHHHHH", qid, 0x8480 | rd, 1, 1, 0, 0) + question + rr, name, qtype


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    addr = sys.argv[1]
    table = {}
    for arg in sys.argv[2:]:
        name, ip = arg.split("=", 1)
        table[name.lower().rstrip(".")] = ip
    log = os.environ.get("NETLAB_DNS_LOG")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        msg, peer = sock.recvfrom(4096)
        try:
            reply, name, qtype = answer(msg, table)
        except (ValueError, IndexError, struct.error):
            continue
        if reply is None:
            continue
        sock.sendto(reply, peer)
        if log:
            with open(log, "a") as f:
                f.write(f"{name} {TYPE_NAMES.get(qtype, qtype)}\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
