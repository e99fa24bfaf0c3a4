#!/usr/bin/env python3
"""A stand-in for a public weather API, for trying `[[source]]` on one machine (no network needed).

    python3 examples/sources/serve.py            # serves http://127.0.0.1:8765/observations.json

Each answer is a JSON array of flat objects: one observation per station for the current minute, so the
answer changes once a minute (and carries an ETag, so an unchanged answer is a 304). Stdlib only.
"""
import hashlib
import json
import random
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATIONS = ["oslo", "bergen", "tromso", "stavanger"]


def observations():
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rng = random.Random(now.isoformat())
    return [
        {
            "station": s,
            "observed_at": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "temperature_c": round(rng.uniform(-12, 18), 1),
            "wind_ms": round(rng.uniform(0, 25), 1),
            "humidity": rng.randint(20, 100),
            "source_version": 2,  # a field the dataset does not declare: dropped with a warning
        }
        for s in STATIONS
    ]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/observations.json":
            self.send_error(404)
            return
        body = json.dumps(observations()).encode()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", 8765), Handler).serve_forever()
