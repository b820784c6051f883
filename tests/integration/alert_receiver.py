"""A stand-in for a Slack incoming webhook, run by the alerting tests as a process of its own.

``python alert_receiver.py PORT RECORD_FILE [--fail-first N]``: every POST's body is appended to
RECORD_FILE as one JSON line (``{"path": …, "body": …}``) and answered ``200 ok``, as Slack does;
the first N POSTs are answered 503 instead (and recorded with ``"refused": true``). ``GET /health``
answers 200, for the test to wait on.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("record", type=Path)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    lock = threading.Lock()
    refused = 0

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(200 if self.path == "/health" else 404, b"ok")

        def do_POST(self) -> None:
            nonlocal refused
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            with lock:
                refuse = refused < args.fail_first
                refused += refuse
                entry = {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body}
                if refuse:
                    entry["refused"] = True
                with args.record.open("a") as record:
                    record.write(json.dumps(entry) + "\n")
            self._answer(503 if refuse else 200, b"unavailable" if refuse else b"ok")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
