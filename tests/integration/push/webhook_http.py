"""A small synchronous HTTP client for the receiver tests (stdlib http.client: full control of headers)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def error_reason(self) -> str:
        """The reason of a JSON error answer (asserting the documented error shape)."""
        document = self.json
        assert document["status"] == "error", document
        assert isinstance(document["reason"], str) and document["reason"], document
        return document["reason"]


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> Answer:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def post_json(
    url: str,
    payload: Any = None,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> Answer:
    data = body if body is not None else json.dumps(payload).encode()
    all_headers = {"Content-Type": content_type} if content_type else {}
    all_headers.update(headers or {})
    return request("POST", url, data, all_headers)


def get(url: str) -> Answer:
    return request("GET", url)


def raw_exchange(
    url: str, head: bytes, body_chunks: Sequence[bytes] = (), timeout: float = 10, pause_seconds: float = 0
) -> Answer:
    """Send a hand-written request head (and optional raw body pieces, each ``pause_seconds`` after
    the last); parse the first answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment
        sock.sendall(head)
        for chunk in body_chunks:
            time.sleep(pause_seconds)
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed early: what we are testing for
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


def metric_value(metrics_text: str, name: str, labels: str = "") -> float:
    """A sample's value from Prometheus text, 0 when absent (counters start absent)."""
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)$"
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
