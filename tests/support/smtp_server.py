#!/usr/bin/env python3
"""A real SMTP server for uplinkd's email tests (aiosmtpd), on 127.0.0.1 (or --host).

Listens with STARTTLS required (--starttls-port) and/or implicit TLS (--tls-port), both with
AUTH PLAIN/LOGIN against one user, and AUTH required before MAIL. Every accepted message is
written to --outdir as <n>.json: the envelope, the EHLO name, the client's address, the
authenticated login, which listener took it, and the raw message. When listening, writes the bound ports as JSON to
--ready-file. Runs until killed or until stdin closes.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import threading
import warnings

warnings.filterwarnings("ignore")

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
import logging

logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--starttls-port", type=int)
    ap.add_argument("--tls-port", type=int)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()

    counter = {"n": 0}
    lock = threading.Lock()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == a.user.encode()
            and auth_data.password == a.password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    class Handler:
        def __init__(self, listener):
            self.listener = listener

        async def handle_DATA(self, server, session, envelope):
            with lock:
                counter["n"] += 1
                n = counter["n"]
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            record = {
                "listener": self.listener,
                "ehlo": session.host_name,
                "peer": session.peer[0] if session.peer else None,
                "auth_login": login,
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
            }
            tmp = os.path.join(a.outdir, f".{n}.json.tmp")
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(a.outdir, f"{n}.json"))
            return "250 Message accepted"

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)

    controllers = []
    ports = {}
    if a.starttls_port is not None:
        c = Controller(
            Handler("starttls"),
            hostname=a.host,
            port=a.starttls_port,
            tls_context=ctx,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )
        c.start()
        controllers.append(c)
        ports["starttls"] = c.port
    if a.tls_port is not None:
        c = Controller(
            Handler("tls"),
            hostname=a.host,
            port=a.tls_port,
            ssl_context=ctx,
            authenticator=authenticator,
            auth_required=True,
            # The whole session is TLS already; aiosmtpd only knows about STARTTLS here.
            auth_require_tls=False,
        )
        c.start()
        controllers.append(c)
        ports["tls"] = c.port

    with open(a.ready_file + ".tmp", "w") as f:
        json.dump(ports, f)
    os.rename(a.ready_file + ".tmp", a.ready_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    for c in controllers:
        c.stop()


if __name__ == "__main__":
    main()
