#!/usr/bin/env python3
"""A webhook receiver on 127.0.0.1 for Tests/CLI/notify.sh: checks every delivery's Standard Webhooks
signature (webhook-id, webhook-timestamp, webhook-signature: v1,base64(HMAC-SHA256(key,
"id.timestamp.body")), key = base64 after whsec_), written here without Tierline's code.

- a bad or missing signature, or a timestamp more than 5 minutes off: 401, counted in `rejected`;
- every Nth request (--fail-every N) that verified: 500, counted in `failed`, not taken;
- otherwise 204, and the webhook-id counted in `ids` (a repeat counts twice: the test reports repeats).
GET /stats answers the counts as JSON. Writes its port to --port-file; runs until killed.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port-file", required=True)
parser.add_argument("--secret-file", required=True)
parser.add_argument("--fail-every", type=int, default=0)
parser.add_argument("--delay-ms", type=int, default=0)
parser.add_argument("--out", help="append each verified, taken delivery as a JSON line: id, type, ticket number, "
                    "received_ms, record_at (the record's time, if any) and body")
args = parser.parse_args()


def signing_key():
    """The key, read for each request: a reply webhook's secret is made when its URL (with this
    receiver's port) is registered, after the receiver started."""
    try:
        secret = open(args.secret_file).read().strip()
    except OSError:
        return None
    return base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else None


lock = threading.Lock()
stats = {"requests": 0, "verified": 0, "rejected": 0, "failed": 0, "ids": {}, "first_at": None, "last_at": None}


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            body = json.dumps(stats).encode()
        self.answer(200, body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if args.delay_ms:
            time.sleep(args.delay_ms / 1000)
        wid, ts, sig = (self.headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        ok = False
        key = signing_key()
        if key and wid and ts and sig and ts.isdigit() and abs(time.time() - int(ts)) < 300:
            expected = base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
            ok = any(part.startswith("v1,") and hmac.compare_digest(part[3:], expected) for part in sig.split(" "))
        ok = ok and self.headers.get("Content-Type", "").startswith("application/json")
        with lock:
            stats["requests"] += 1
            if not ok:
                stats["rejected"] += 1
                status = 401
            else:
                stats["verified"] += 1
                if args.fail_every and stats["verified"] % args.fail_every == 0:
                    stats["failed"] += 1
                    status = 500
                else:
                    stats["ids"][wid] = stats["ids"].get(wid, 0) + 1
                    now = time.time()
                    stats["first_at"] = stats["first_at"] or now
                    stats["last_at"] = now
                    status = 204
                    if args.out:
                        try:
                            payload = json.loads(body)
                        except ValueError:
                            payload = None
                        data = (payload or {}).get("data") or {}
                        row = {"id": wid, "type": (payload or {}).get("type"), "ticket": (data.get("ticket") or {}).get("number"),
                               "received_ms": int(now * 1000), "record_at": (data.get("record") or {}).get("at"), "body": payload}
                        with open(args.out, "a") as f:
                            f.write(json.dumps(row) + "\n")
        self.answer(status)


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
server.daemon_threads = True
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
