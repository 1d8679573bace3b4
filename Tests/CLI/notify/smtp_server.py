#!/usr/bin/env python3
"""An SMTP server on 127.0.0.1 for Tests/CLI/notify.sh, on aiosmtpd: STARTTLS and AUTH required (or,
with --no-starttls, a server that offers no STARTTLS at all). Every message it takes is appended to
--out as one JSON line: envelope (mail_from, rcpt_tos), the raw message, and whether the session was
in TLS and authenticated. --implicit-tls serves TLS from the first byte instead; --login-only offers
AUTH LOGIN and not PLAIN. Writes its port to --port-file once it listens; runs until killed.

    python3 smtp_server.py --out messages.jsonl --port-file port --cert cert.pem --key key.pem \
        --user tierline --password-file pw [--no-starttls | --implicit-tls] [--login-only]
"""
import argparse
import json
import socket
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--port-file", required=True)
parser.add_argument("--cert")
parser.add_argument("--key")
parser.add_argument("--user", required=True)
parser.add_argument("--password-file", required=True)
parser.add_argument("--no-starttls", action="store_true")
parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (port 465 style), no STARTTLS")
parser.add_argument("--login-only", action="store_true", help="offer AUTH LOGIN, not PLAIN")
args = parser.parse_args()
password = open(args.password_file).read().strip().encode()
lock = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                  "data": envelope.original_content.decode("utf-8", "replace"),
                  "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None, "authenticated": bool(session.authenticated)}
        with lock, open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == args.user.encode() and auth_data.password == password
    return AuthResult(success=ok, handled=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


tls = None
if not args.no_starttls:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
port = free_port()
extra = {"auth_exclude_mechanism": ["PLAIN"]} if args.login_only else {}
if args.implicit_tls:
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; this connection is TLS from its first byte.
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ssl_context=tls,
                            authenticator=authenticator, auth_required=True, auth_require_tls=False, **extra)
else:
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=tls is not None,
                            authenticator=authenticator, auth_required=True, auth_require_tls=tls is not None, **extra)
controller.start()
open(args.out, "a").close()
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(port))
import os  # noqa: E402
os.rename(args.port_file + ".tmp", args.port_file)
threading.Event().wait()
