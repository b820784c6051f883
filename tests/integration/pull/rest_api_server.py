"""A REST API serving one data set through every paginator shape and every auth scheme the declarative
REST client supports, run as its own process by ``test_rest_api_client.py``:
``python rest_api_server.py --port N [--records N] [--token-ttl S]``.

Every data endpoint filters by ``updated_since`` (inclusive, ISO 8601) and sleeps ``delay`` seconds
when asked. Shapes (each serves the data set, in id order):
- ``/cursor/body?limit&cursor``: ``{"items": [...], "meta": {"next_cursor": ...}}``;
- ``/cursor/header?limit&cursor``: NDJSON, the next cursor in ``X-Next-Cursor``;
- ``/next-url?limit&after``: ``{"data": {"results": [...]}, "links": {"next": "<relative URL>"}}``;
- ``/link?per_page&page``: ``{"items": [...]}``, GitHub-style ``Link`` header (absolute URLs);
- ``/offset?offset&limit``: ``{"items": [...], "total": N}``;
- ``/page?page&per_page``: ``{"results": [...], "total_pages": K}`` (zero-based pages past the end: empty);
- ``/single``: the whole data set as a top-level JSON list;
- ``/auth/<scheme>``: ``/offset`` behind ``bearer``, ``api-key-header``, ``api-key-query``, ``basic`` or
  ``oauth2`` (tokens from ``POST /oauth/token``, client credentials grant, valid ``--token-ttl`` s;
  client ``early-expiry`` is told they last an hour);
- ``/flaky``: ``/offset``, each page first answered 429 (``Retry-After: 1``), then 503, then served;
- ``/bad``: one page with records that are not interchange JSON objects or do not fit the others;
- ``/loop``: a cursor that never changes.
``GET /stats`` counts tokens issued, faults served and requests per path.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import secrets
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus, urlencode

import orjson
from aiohttp import web

BEARER_TOKEN = "bearer-secret"
API_KEY = "key-secret"
BASIC_USER, BASIC_PASSWORD = "reader", "basic-secret"
CLIENT_ID, CLIENT_SECRET = "rest-client", "client-secret"
EARLY_EXPIRY_CLIENT = "early-expiry"  # told its tokens last an hour; they last --token-ttl like the others
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def dataset(count: int) -> list[dict[str, Any]]:
    """The records every endpoint serves: ids 1..count, updated a minute apart."""
    return [
        {
            "id": i,
            "name": f"record {i}",
            "amount": round(i * 1.25, 2),
            "updated_at": (BASE + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tags": ["even" if i % 2 == 0 else "odd"],
            "owner": {"login": f"user{i % 7}"},
            "note": "third" if i % 3 == 0 else None,
        }
        for i in range(1, count + 1)
    ]


def build_app(records: int, token_ttl: float) -> web.Application:
    data = dataset(records)
    tokens: dict[str, float] = {}  # token -> monotonic expiry
    stats: dict[str, Any] = {"tokens_issued": 0, "faults": 0, "requests": Counter()}
    attempts: Counter[str] = Counter()

    def selected(request: web.Request) -> list[dict[str, Any]]:
        since = request.query.get("updated_since")
        if not since:
            return data
        start = datetime.fromisoformat(since)
        return [r for r in data if datetime.fromisoformat(r["updated_at"]) >= start]

    def window(request: web.Request, offset_name: str = "offset", size_name: str = "limit") -> tuple[int, int]:
        return int(request.query.get(offset_name, "0")), int(request.query.get(size_name, "100"))

    def as_json(body: Any, **headers: str) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)

    def encode_cursor(offset: int) -> str:
        return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()

    def decode_cursor(request: web.Request) -> int:
        cursor = request.query.get("cursor")
        if not cursor:
            return 0
        try:
            return int(base64.urlsafe_b64decode(cursor).decode().removeprefix("o:"))
        except (ValueError, binascii.Error):
            raise web.HTTPBadRequest(text=f"bad cursor {cursor!r}") from None

    @web.middleware
    async def count(request: web.Request, handler):
        stats["requests"][request.path] += 1
        if delay := float(request.query.get("delay", "0")):
            await asyncio.sleep(delay)
        return await handler(request)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def get_stats(_: web.Request) -> web.Response:
        return as_json(stats)

    async def cursor_body(request: web.Request) -> web.Response:
        rows, start, limit = selected(request), decode_cursor(request), int(request.query.get("limit", "100"))
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return as_json({"items": page, "meta": {"next_cursor": encode_cursor(start + limit) if more else None}})

    async def cursor_header(request: web.Request) -> web.Response:
        rows, start, limit = selected(request), decode_cursor(request), int(request.query.get("limit", "100"))
        page = rows[start : start + limit]
        headers = {"X-Record-Count": str(len(page))}
        if start + limit < len(rows):
            headers["X-Next-Cursor"] = encode_cursor(start + limit)
        body = b"".join(orjson.dumps(r) + b"\n" for r in page)
        return web.Response(body=body, content_type="application/x-ndjson", headers=headers)

    async def next_url(request: web.Request) -> web.Response:
        after, limit = int(request.query.get("after", "0")), int(request.query.get("limit", "100"))
        page = [r for r in selected(request) if r["id"] > after][:limit]
        links: dict[str, Any] = {"next": None}
        if page and page[-1]["id"] < selected(request)[-1]["id"]:
            query = {**{k: v for k, v in request.query.items() if k != "after"}, "after": page[-1]["id"]}
            links["next"] = f"next-url?{urlencode(query)}"  # relative to the request's URL
        return as_json({"data": {"results": page}, "links": links})

    async def link(request: web.Request) -> web.Response:
        rows = selected(request)
        page_no, per_page = int(request.query.get("page", "1")), int(request.query.get("per_page", "30"))
        last = max(1, -(-len(rows) // per_page))
        page = rows[(page_no - 1) * per_page : page_no * per_page]
        links = []
        for rel, number in (("next", page_no + 1), ("last", last), ("first", 1)):
            if rel == "next" and page_no >= last:
                continue
            url = request.url.update_query(page=str(number))
            links.append(f'<{url}>; rel="{rel}"')
        return as_json({"items": page}, Link=", ".join(links))

    def offset_page(request: web.Request) -> web.Response:
        rows = selected(request)
        offset, limit = window(request)
        return as_json({"items": rows[offset : offset + limit], "total": len(rows)})

    async def offset(request: web.Request) -> web.Response:
        return offset_page(request)

    async def page_number(request: web.Request) -> web.Response:
        rows = selected(request)
        page_no, per_page = int(request.query.get("page", "0")), int(request.query.get("per_page", "25"))
        return as_json(
            {"results": rows[page_no * per_page : (page_no + 1) * per_page], "total_pages": -(-len(rows) // per_page)}
        )

    async def single(request: web.Request) -> web.Response:
        return as_json(selected(request))

    def refuse(reason: str) -> web.Response:
        return web.json_response({"error": reason}, status=401, headers={"WWW-Authenticate": "Bearer"})

    async def authed(request: web.Request) -> web.Response:
        scheme = request.match_info["scheme"]
        header = request.headers.get("Authorization", "")
        if scheme == "bearer" and header != f"Bearer {BEARER_TOKEN}":
            return refuse("bad bearer token")
        if scheme == "api-key-header" and request.headers.get("X-API-Key") != API_KEY:
            return refuse("bad api key")
        if scheme == "api-key-query" and request.query.get("api_key") != API_KEY:
            return refuse("bad api key")
        if scheme == "basic":
            expected = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
            if header != f"Basic {expected}":
                return refuse("bad user or password")
        if scheme == "oauth2":
            token = header.removeprefix("Bearer ")
            if token not in tokens:
                return refuse("unknown token")
            if time.monotonic() >= tokens[token]:
                return refuse("token expired")
        if scheme not in ("bearer", "api-key-header", "api-key-query", "basic", "oauth2"):
            raise web.HTTPNotFound()
        return offset_page(request)

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if (
            request.content_type != "application/x-www-form-urlencoded"
            or form.get("grant_type") != "client_credentials"
        ):
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret = unquote_plus(user), unquote_plus(password)
        if client_id not in (CLIENT_ID, EARLY_EXPIRY_CLIENT) or secret != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401, headers={"WWW-Authenticate": "Basic"})
        if form.get("scope") not in (None, "records:read"):
            return web.json_response({"error": "invalid_scope"}, status=400)
        issued = secrets.token_urlsafe(16)
        tokens[issued] = time.monotonic() + token_ttl
        stats["tokens_issued"] += 1
        told = 3600 if client_id == EARLY_EXPIRY_CLIENT else token_ttl
        return as_json({"access_token": issued, "token_type": "Bearer", "expires_in": told})

    async def flaky(request: web.Request) -> web.Response:
        key = request.query_string
        attempts[key] += 1
        if attempts[key] == 1:
            stats["faults"] += 1
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "1"})
        if attempts[key] == 2:
            stats["faults"] += 1
            return web.json_response({"error": "unavailable"}, status=503)
        return offset_page(request)

    async def bad(_: web.Request) -> web.Response:
        body = (
            b'{"items": [{"id": 1, "amount": 1.5}, "a string", {"id": 2, "amount": NaN}, '
            b'{"id": 3, "amount": {"nested": true}}, {"id": 4, "amount": 4.5}, 7]}'
        )
        return web.Response(body=body, content_type="application/json")

    async def loop(_: web.Request) -> web.Response:
        return as_json({"items": [{"id": 1}], "next": "same"})

    app = web.Application(middlewares=[count])
    app.add_routes(
        [
            web.get("/health", health),
            web.get("/stats", get_stats),
            web.get("/cursor/body", cursor_body),
            web.get("/cursor/header", cursor_header),
            web.get("/next-url", next_url),
            web.get("/link", link),
            web.get("/offset", offset),
            web.get("/page", page_number),
            web.get("/single", single),
            web.get("/auth/{scheme}", authed),
            web.post("/oauth/token", token),
            web.get("/flaky", flaky),
            web.get("/bad", bad),
            web.get("/loop", loop),
        ]
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--token-ttl", type=float, default=2.0)
    args = parser.parse_args()
    web.run_app(build_app(args.records, args.token_ttl), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
