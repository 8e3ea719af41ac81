#!/usr/bin/env python3
"""nfq-delay.py QUEUE DELAY_MS [JITTER_MS]: hold every packet of an NFQUEUE for DELAY_MS +- a
uniform JITTER_MS, then accept it. The lab's delay fault (this kernel has no netem, and nft's own
`queue` statement is not built, so the queue rule is iptables-nft's NFQUEUE target; see
docs/probing.md). Standard library only: raw NETLINK_NETFILTER messages.

Packets are released in order of their release time, so jitter can reorder them, as netem does.
Ends on SIGTERM/SIGINT; with `--queue-bypass` on the rule, traffic flows again once it is gone.
"""
import heapq
import os
import random
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
AF_INET = 2


def attr(kind, data):
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def message(msg, queue, attrs, flags=NLM_F_REQUEST):
    # nfgenmsg: family, version 0, resource id (the queue number, big-endian).
    body = struct.pack("=BBH", AF_INET, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body


def attrs_of(payload):
    out = {}
    while len(payload) >= 4:
        length, kind = struct.unpack_from("=HH", payload)
        if length < 4:
            break
        out[kind & 0x7FFF] = payload[4:length]
        payload = payload[(length + 3) & ~3:]
    return out


def main():
    queue = int(sys.argv[1])
    delay = float(sys.argv[2]) / 1000.0
    jitter = float(sys.argv[3]) / 1000.0 if len(sys.argv) > 3 else 0.0
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.send(message(NFQNL_MSG_CONFIG, queue,
                      [attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, AF_INET))]))
    sock.send(message(NFQNL_MSG_CONFIG, queue,
                      [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))]))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    held = []  # (release time, packet id)
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, pid = heapq.heappop(held)
            sock.send(message(NFQNL_MSG_VERDICT, queue,
                              [attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))]))
        sock.settimeout(max(0.0005, held[0][0] - now) if held else None)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        while len(data) >= 16:
            length, kind = struct.unpack_from("=IH", data)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                hdr = attrs_of(data[20:length]).get(NFQA_PACKET_HDR)
                if hdr:
                    pid = struct.unpack_from("!I", hdr)[0]
                    wait = max(0.0, delay + random.uniform(-jitter, jitter))
                    heapq.heappush(held, (time.monotonic() + wait, pid))
            data = data[(length + 3) & ~3:]


if __name__ == "__main__":
    main()
