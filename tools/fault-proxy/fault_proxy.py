#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the AWS endpoint: scripts/faults puts it between the Sluice
processes and the emulator.

Of the calls it receives, a share is answered with an error the SDKs treat as retryable (alternately
503 with a throttling error and 500 with an internal error, in the JSON and the XML shapes the SDKs
read), and a share has its connection dropped without an answer; the rest are passed to the endpoint
unchanged. Faults are injected *before* a request is forwarded, so the endpoint never
saw a failed call: that is what throttling and a refused connection look like, and it keeps a
non-idempotent call (an e-mail) from happening twice behind the caller's back.

    fault_proxy.py --listen 127.0.0.1:4567 --target 127.0.0.1:4566 --throttle 0.1 --drop 0.05 --seed 7

Prints a count of what it did on SIGTERM/SIGINT. Standard library only.
"""

import argparse
import http.client
import random
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {"forwarded": 0, "throttled": 0, "internal_error": 0, "dropped": 0}
LOCK = threading.Lock()


def count(what: str) -> None:
    with LOCK:
        COUNTS[what] += 1


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    length = handler.headers.get("Content-Length")
    if length is not None:
        return handler.rfile.read(int(length))
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size_line = handler.rfile.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers up to the empty line.
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return b""


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target = ("127.0.0.1", 4566)
    throttle = 0.0
    drop = 0.0
    rng = random.Random(0)

    def log_message(self, *args) -> None:  # quiet
        pass

    def handle_one(self) -> None:
        body = read_body(self)
        with LOCK:
            roll = Proxy.rng.random()
        if roll < Proxy.drop:
            count("dropped")
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if roll < Proxy.drop + Proxy.throttle:
            # Half throttling (503), half a server error (500): both retryable, as AWS's are.
            internal = roll < Proxy.drop + Proxy.throttle / 2
            count("internal_error" if internal else "throttled")
            xml = self.headers.get("Content-Type", "").startswith(("application/xml", "text/xml")) or (
                "x-amz-target" not in {k.lower() for k in self.headers.keys()}
                and "application/x-amz-json" not in self.headers.get("Content-Type", "")
                and "application/json" not in self.headers.get("Content-Type", "")
            )
            code, name, message = (
                (500, "InternalError", "We encountered an internal error. Please try again.")
                if internal
                else (503, "SlowDown" if xml else "ThrottlingException", "Rate exceeded")
            )
            if xml:
                payload = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{name}</Code>'
                    f"<Message>{message}</Message></Error>"
                ).encode()
                ctype = "application/xml"
            else:
                payload = f'{{"__type":"{name}","message":"{message}"}}'.encode()
                ctype = "application/x-amz-json-1.0"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("x-amzn-ErrorType", name)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        count("forwarded")
        conn = http.client.HTTPConnection(*Proxy.target, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:4567")
    ap.add_argument("--target", default="127.0.0.1:4566")
    ap.add_argument("--throttle", type=float, default=0.1)
    ap.add_argument("--drop", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    Proxy.target = (host, int(port))
    Proxy.throttle, Proxy.drop = args.throttle, args.drop
    Proxy.rng = random.Random(args.seed)
    lhost, lport = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((lhost, int(lport)), Proxy)
    server.daemon_threads = True

    def stop(*_):
        print(f"fault proxy: {COUNTS}", flush=True)
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"fault proxy: {args.listen} -> {args.target}, throttle {args.throttle}, drop {args.drop}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
