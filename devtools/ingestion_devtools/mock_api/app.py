"""The mock SaaS API as an aiohttp application (``create_app(config)``), served by gunicorn.

Endpoints: ``GET /v1/records`` (bearer token, rate limited, faulty on demand), ``GET /v1/items``
(the same records in another API's shape: an ``{"items": [...]}`` envelope, ``Link`` header paging,
an API key in ``X-API-Key``; the same rate limit and faults), ``GET /health``, ``GET /openapi.json``
and the token-protected admin endpoints that make the source change (``POST /admin/mutate``,
``POST /admin/schema``) or dump it whole (``GET /admin/export``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from .config import API_KEY_HEADER, MAX_MUTATION, SCHEMA_MODES, MockApiConfig
from .cursor import Cursor, CursorError
from .faults import FaultPlan, TokenBucket, retry_after_header
from .openapi import openapi_document
from .state import Batch, SourceStore, SourceView

CONFIG = web.AppKey("config", MockApiConfig)
STORE = web.AppKey("store", SourceStore)
BUCKET = web.AppKey("bucket", TokenBucket)
FAULTS = web.AppKey("faults", FaultPlan)

NDJSON = "application/x-ndjson"
ITEMS_PATH = "/v1/items"


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _authorised(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[CONFIG].token
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def _api_key_refusal(request: web.Request) -> str | None:
    """Why the request's API key is refused, or None when it is the configured one."""
    key = request.headers.get(API_KEY_HEADER, "").strip()
    if not key:
        return f"missing API key: send it in the {API_KEY_HEADER} header"
    if not hmac.compare_digest(key.encode(), request.app[CONFIG].api_key.encode()):
        return f"invalid API key in the {API_KEY_HEADER} header"
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if request.path == ITEMS_PATH:  # this resource takes an API key, not the bearer token
        if reason := _api_key_refusal(request):
            return _error(401, reason, **{"WWW-Authenticate": f'ApiKey realm="mock-api", header="{API_KEY_HEADER}"'})
    elif request.path.startswith(("/v1/", "/admin/")) and not _authorised(request):
        return _error(401, "missing or invalid bearer token", **{"WWW-Authenticate": 'Bearer realm="mock-api"'})
    return await handler(request)


def _parse_time(name: str, value: str | None) -> int | None:
    """Microseconds since the epoch of an ISO 8601 timestamp, naive ones taken as UTC. Every RFC 3339
    date-time (what the spec's ``format: date-time`` allows) is one: its lower-case ``t`` and ``z``, and
    a leap second (``:60``), which counts as the last microsecond of its minute."""
    if not value:
        return None
    text = value.upper()
    leap = len(text) > 19 and text[10] == "T" and text[16:19] == ":60"
    if leap:
        text = text[:17] + "59" + text[19:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an ISO 8601 timestamp, got {value!r}"}),
            content_type="application/json",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if leap:
        parsed = parsed.replace(microsecond=999_999)
    return int(parsed.timestamp()) * 1_000_000 + parsed.microsecond


def _parse_limit(request: web.Request) -> int:
    cfg = request.app[CONFIG]
    raw = request.query.get("limit")
    if raw is None:
        return cfg.default_page_size
    if not raw.isdigit() or not 1 <= int(raw) <= cfg.max_page_size:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"limit must be an integer between 1 and {cfg.max_page_size}, got {raw!r}"}),
            content_type="application/json",
        )
    return int(raw)


@dataclass(frozen=True)
class _Page:
    """A page of records in keyset order and the cursor of the next one (None: the last page)."""

    view: SourceView
    batch: Batch
    limit: int
    next_cursor: str | None
    fault: str | None  # "truncate": the body is to be cut off midway


async def _read_page(request: web.Request) -> _Page | web.Response:
    """What ``/v1/records`` and ``/v1/items`` share: the rate limit, the parameters (``limit``,
    ``cursor`` or ``updated_since``/``updated_before``), the latency and the faults, and the page of
    records with updated_at >= updated_since (and < updated_before) in (updated_at, id) order."""
    cfg = request.app[CONFIG]
    wait = request.app[BUCKET].take()
    if wait:
        return _error(429, "rate limit exceeded", **{"Retry-After": retry_after_header(wait)})
    limit = _parse_limit(request)
    # An empty cursor is no cursor: the first page. Clients that always send the parameter (with the
    # previous page's next_cursor, which starts empty) are common, and the spec allows any string.
    if raw_cursor := request.query.get("cursor"):
        try:
            cursor = Cursor.decode(raw_cursor)
        except CursorError as exc:
            return _error(400, str(exc))
        after, before_us = (cursor.updated_us, cursor.id), cursor.before_us
    else:
        since_us = _parse_time("updated_since", request.query.get("updated_since"))
        before_us = _parse_time("updated_before", request.query.get("updated_before"))
        after = (since_us, 0) if since_us is not None else (-(1 << 62), 0)  # ids start at 1: inclusive

    if cfg.latency_ms:
        await asyncio.sleep(cfg.latency_ms / 1000)
    fault = request.app[FAULTS].draw()
    if fault == "error":
        return _error(503, "injected fault: service unavailable")
    if fault == "timeout":
        await asyncio.sleep(cfg.fault_timeout_seconds)
        return _error(504, "injected fault: upstream timed out")

    view = request.app[STORE].view()
    batch = view.page(after, before_us, limit + 1)
    next_cursor = None
    if len(batch) > limit:
        batch = batch.slice(0, limit)
        next_cursor = Cursor(batch.updated_us[-1].as_py(), batch.ids[-1].as_py(), before_us).encode()
    return _Page(view, batch, limit, next_cursor, fault)


async def _respond(request: web.Request, page: _Page, body: bytes, content_type: str, headers: dict):
    headers["X-Record-Count"] = str(len(page.batch))
    if page.fault == "truncate":
        return await _truncated(request, body, content_type, headers)
    return web.Response(body=body, content_type=content_type, headers=headers)


async def list_records(request: web.Request) -> web.StreamResponse:
    """A page as JSON lines (``Accept: application/x-ndjson``, the cursor in ``X-Next-Cursor``) or
    in the ``{"data", "next_cursor", "has_more"}`` envelope."""
    page = await _read_page(request)
    if isinstance(page, web.Response):
        return page
    headers = {}
    if NDJSON in request.headers.get("Accept", ""):
        # JSON lines: columnar readers (pyarrow.json) parse this directly; paging goes in headers.
        if page.next_cursor:
            headers["X-Next-Cursor"] = page.next_cursor
        return await _respond(request, page, page.view.render(page.batch), NDJSON, headers)
    body = b'{"data":[%s],"next_cursor":%s,"has_more":%s}' % (
        page.view.render(page.batch, terminator=",")[:-1],
        json.dumps(page.next_cursor).encode(),
        b"true" if page.next_cursor else b"false",
    )
    return await _respond(request, page, body, "application/json", headers)


async def list_items(request: web.Request) -> web.StreamResponse:
    """The same page as ``/v1/records`` in an ``{"items": [...]}`` envelope, the next page's absolute
    URL (with the ``limit`` and an opaque ``cursor``) in ``Link: <...>; rel="next"`` (RFC 8288),
    absent on the last page."""
    page = await _read_page(request)
    if isinstance(page, web.Response):
        return page
    headers = {}
    if page.next_cursor:
        following = request.url.with_query({"limit": str(page.limit), "cursor": page.next_cursor})
        headers["Link"] = f'<{following}>; rel="next"'
    body = b'{"items":[%s]}' % page.view.render(page.batch, terminator=",")[:-1]
    return await _respond(request, page, body, "application/json", headers)


async def _truncated(request: web.Request, body: bytes, content_type: str, headers: dict) -> web.StreamResponse:
    """Announce the full length, send half, drop the connection: what a crashing proxy does."""
    response = web.StreamResponse(headers={**headers, "Content-Type": content_type})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if request.transport is not None:  # None: the client is gone already
        request.transport.close()
    return response


async def health(request: web.Request) -> web.Response:
    view = request.app[STORE].view()
    return web.json_response({"status": "ok", "records": view.total, "schema_mode": view.schema_mode})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[CONFIG]))


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    return body


async def admin_mutate(request: web.Request) -> web.Response:
    """``{"create": N, "update": M}``: N new records and M updated ones, visible to every worker."""
    body = await _json_body(request)
    counts = {}
    for name in ("create", "update"):
        value = body.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MUTATION:
            return _error(400, f"{name} must be an integer between 0 and {MAX_MUTATION}, got {value!r}")
        counts[name] = value
    unknown = set(body) - {"create", "update"}
    if unknown:
        return _error(400, f"unknown fields: {', '.join(sorted(unknown))}")
    result = request.app[STORE].mutate(**counts)
    return web.json_response(result)


async def admin_schema(request: web.Request) -> web.Response:
    """``{"mode": "normal" | "renamed" | "retyped"}``: make the source drift from its contract."""
    body = await _json_body(request)
    mode = body.get("mode")
    if mode not in SCHEMA_MODES:
        return _error(400, f"mode must be one of {', '.join(SCHEMA_MODES)}, got {mode!r}")
    request.app[STORE].set_schema_mode(mode)
    return web.json_response({"schema_mode": mode})


async def admin_export(request: web.Request) -> web.StreamResponse:
    """Every current record by id as JSON lines, streamed: the whole source, for comparisons."""
    view = request.app[STORE].view()
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "X-Record-Count": str(view.total)})
    await response.prepare(request)
    for batch in view.export_batches():
        await response.write(view.render(batch))
    await response.write_eof()
    return response


def create_app(config: MockApiConfig) -> web.Application:
    """The application for one worker; its state file is opened and closed with the app."""
    app = web.Application(middlewares=[auth_middleware])
    app[CONFIG] = config
    app[BUCKET] = TokenBucket(config.rate_limit, config.rate_burst)
    app[FAULTS] = FaultPlan(
        error_ratio=config.fault_5xx_ratio,
        timeout_ratio=config.fault_timeout_ratio,
        truncate_ratio=config.fault_truncate_ratio,
        rng=random.Random(config.fault_seed),
    )

    async def open_store(app: web.Application):
        app[STORE] = SourceStore(config)
        yield
        app[STORE].close()

    app.cleanup_ctx.append(open_store)
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/v1/records", list_records)
    app.router.add_get(ITEMS_PATH, list_items)
    app.router.add_post("/admin/mutate", admin_mutate)
    app.router.add_post("/admin/schema", admin_schema)
    app.router.add_get("/admin/export", admin_export)
    return app
