"""The webhook receiver: an aiohttp app factory, served by gunicorn (``ingest webhook-receiver``).

``POST /webhook/{source_id}`` answers 202 only after the payload is committed (fsynced) to the
inbox, 200 when the inbox already holds its event id, and a 4xx/503 with a JSON reason otherwise.
See docs/webhook-receiver.md for the endpoints and settings.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from ...rate_limit import ClientRateLimiter, retry_after_header
from ..inbox import Inbox, InboxUnavailable, NewWebhook, describe_inbox_url, open_inbox
from .config import ReceiverConfig
from .intake import (
    MAX_EVENT_ID_LENGTH,
    Rejection,
    check_content_type,
    check_source_id,
    event_id_for,
    kept_headers,
    parse_json_object,
    too_large,
)
from .metrics import ReceiverMetrics, read_inbox
from .openapi import openapi_document
from .signatures import SignatureError, verify_signature

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", ReceiverConfig)
INBOX = web.AppKey("inbox", Inbox)
METRICS = web.AppKey("metrics", ReceiverMetrics)
RATE_LIMITER = web.AppKey("rate_limiter", ClientRateLimiter)

MAX_PEEK = 100


def create_app(config: ReceiverConfig) -> web.Application:
    """A receiver for ``config``; its inbox is opened on startup and closed on cleanup."""
    # client_max_size is a safety net; the handler enforces the limit itself, with a JSON 413.
    limiter = ClientRateLimiter(
        config.rate_limit_per_second, config.rate_limit_burst, trusted_proxies=config.trusted_proxies
    )
    # The rate limit wraps only the public route, and only when set: the hot path pays nothing otherwise.
    middlewares = [json_errors, rate_limited] if limiter.enabled else [json_errors]
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_bytes + 1)
    app[CONFIG] = config
    app[RATE_LIMITER] = limiter
    app[METRICS] = ReceiverMetrics()
    app.cleanup_ctx.append(inbox_context)
    app.router.add_post("/webhook/{source_id}", receive_webhook)
    app.router.add_get("/webhook/{source_id}/pending", pending)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    return app


async def inbox_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    inbox = open_inbox(config.inbox_url)
    where = describe_inbox_url(config.inbox_url)
    if where.startswith("noop:"):
        log.warning("inbox %s STORES NOTHING: benchmark baseline only, never for real senders", where)
    try:
        await inbox.open()
        log.info("webhook inbox open: %s", where)
    except InboxUnavailable as error:
        # Start anyway: /health stays up, /ready and POST answer 503 until the inbox is reachable.
        log.warning("webhook inbox %s unavailable at start: %s", where, error)
    app[INBOX] = inbox
    yield
    await inbox.close()


# -- errors ----------------------------------------------------------------------------------------


def error_response(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": "error", "reason": reason}, status=status, headers=headers)


def unavailable(config: ReceiverConfig, error: BaseException | str) -> Rejection:
    return Rejection(
        503,
        "inbox_unavailable",
        f"inbox unavailable, retry later: {error}",
        {"Retry-After": str(config.retry_after_seconds)},
    )


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every error is JSON ``{"status":"error","reason":…}``, including the router's 404/405."""
    try:
        return await handler(request)
    except Rejection as rejection:
        return error_response(rejection.status, rejection.reason, rejection.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        reason = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
        if error.status == 404:
            reason = f"no such endpoint: {request.method} {request.path}"
        elif error.status == 405:
            reason = f"method {request.method} not allowed on {request.path}"
        return error_response(error.status, reason, {k: v for k, v in error.headers.items() if k == "Allow"})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error (logged by the receiver)")


@web.middleware
async def rate_limited(request: web.Request, handler) -> web.StreamResponse:
    """429 with Retry-After for a client past its rate on ``POST /webhook/…`` (per worker process)."""
    if request.method == "POST" and request.path.startswith("/webhook/"):
        limiter = request.app[RATE_LIMITER]
        client = limiter.client(request.remote, request.headers.get("X-Forwarded-For"))
        if wait := limiter.take(client):
            request.app[METRICS].rejected.labels("rate_limited").inc()
            return error_response(
                429,
                f"rate limit of {limiter.rate:g} requests/s per client exceeded",
                {"Retry-After": retry_after_header(wait)},
            )
    return await handler(request)


# -- POST /webhook/{source_id} -----------------------------------------------------------------------


async def receive_webhook(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app_metrics = request.app[METRICS]
    try:
        outcome, response = await _receive(request)
    except Rejection as rejection:
        app_metrics.rejected.labels(rejection.code).inc()
        outcome = "unavailable" if rejection.status == 503 else "rejected"
        response = error_response(rejection.status, rejection.reason, rejection.headers)
        if rejection.status == 413:
            response.force_close()  # the unread rest of the body must not be parsed as a next request
    app_metrics.latency.labels(outcome).observe(time.perf_counter() - started)
    return response


async def _receive(request: web.Request) -> tuple[str, web.Response]:
    config = request.app[CONFIG]
    source_id = check_source_id(request.match_info["source_id"])
    if not config.is_known(source_id):
        raise Rejection(404, "undeclared_source", f"no webhook source {source_id!r} is declared here")
    check_content_type(request.headers.get("Content-Type"))
    body = await read_body(request, config.max_body_bytes)
    if secret := config.secret_for(source_id):
        try:
            verify_signature(
                secret,
                body,
                request.headers,
                tolerance_seconds=config.tolerance_for(source_id),
                scheme=config.scheme_for(source_id),
            )
        except SignatureError as error:
            code = "missing_signature" if error.missing else "bad_signature"
            raise Rejection(401, code, error.reason) from None
    payload = parse_json_object(body)
    item = NewWebhook(source_id, _event_id(config, source_id, request, payload), body, kept_headers(request.headers))
    try:
        async with asyncio.timeout(config.inbox_timeout_seconds):
            result = await request.app[INBOX].put(item)
    except InboxUnavailable as error:
        raise unavailable(config, error) from None
    except TimeoutError:
        raise unavailable(config, f"no commit within {config.inbox_timeout_seconds:g} s") from None
    app_metrics = request.app[METRICS]
    if result.accepted:
        app_metrics.accepted.labels(source_id).inc()
        return "accepted", web.json_response({"status": "accepted", "id": result.event_id}, status=202)
    app_metrics.duplicates.labels(source_id).inc()
    return "duplicate", web.json_response({"status": "duplicate", "id": result.event_id}, status=200)


def _event_id(config: ReceiverConfig, source_id: str, request: web.Request, payload: dict) -> str:
    """The event id from where the source's declaration says (400 when the delivery lacks it), else by
    the default rules (``event_id_for``)."""
    spec = config.sources.get(source_id)
    if spec is None or spec.event_id is None:
        return event_id_for(request.headers, payload)
    where = f"header {spec.event_id.header}" if spec.event_id.header else f"payload field {spec.event_id.json_path}"
    event_id = spec.event_id.read(request.headers, payload)
    if event_id is None:
        raise Rejection(400, "missing_event_id", f"this source takes its event id from the {where}, which is missing")
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        raise Rejection(400, "bad_event_id", f"the {where} is longer than {MAX_EVENT_ID_LENGTH} characters")
    return event_id


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit``: from Content-Length
    before reading anything, or while streaming a chunked body, never buffering more than limit+1."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks, size = [], 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


# -- reads ---------------------------------------------------------------------------------------------


async def pending(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    source_id = check_source_id(request.match_info["source_id"])
    peek = _peek_param(request.query.get("peek"))
    if peek:
        check_admin(config, request.headers.get("Authorization"))
    inbox = request.app[INBOX]
    try:
        summary = await inbox.pending(source_id)
        records = await inbox.peek(source_id, peek) if peek else None  # a look: leases nothing
    except InboxUnavailable as error:
        raise unavailable(config, error) from None
    document = {
        "source_id": source_id,
        "pending": summary.count,
        "oldest_age_seconds": _round(summary.oldest_age_seconds()),
    }
    if records is not None:
        document["payloads"] = [_peeked(record) for record in records]
    return web.json_response(document)


def check_admin(config: ReceiverConfig, authorization: str | None) -> None:
    """``?peek`` shows payloads and their headers: only to a caller with the admin token, in the
    cluster too (the ingress does not route /pending at all)."""
    if not config.admin_token:
        raise Rejection(403, "peek_disabled", "peek is disabled: set WEBHOOK_ADMIN_TOKEN to allow it")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.admin_token.encode()):
        raise Rejection(
            401,
            "not_admin",
            "peek needs Authorization: Bearer <WEBHOOK_ADMIN_TOKEN>",
            {"WWW-Authenticate": 'Bearer realm="webhook-receiver"'},
        )


def _peek_param(value: str | None) -> int:
    if value is None:
        return 0
    if not value.isdigit() or not 0 <= int(value) <= MAX_PEEK:
        raise Rejection(400, "bad_query", f"peek must be an integer from 0 to {MAX_PEEK}, got {value[:20]!r}")
    return int(value)


def _peeked(record) -> dict:
    try:
        payload = json.loads(record.body)
    except ValueError:  # stored bodies are JSON objects; stay readable if one is not
        payload = record.body.decode("utf-8", "replace")
    return {
        "seq": record.seq,
        "event_id": record.event_id,
        "received_at": record.received_at.isoformat(),
        "headers": record.headers,
        "payload": payload,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def health(request: web.Request) -> web.Response:
    """Liveness: the process serves requests. No I/O, so a slow database never restarts the pod."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: the inbox answers; else 503, so the load balancer sends traffic elsewhere."""
    config = request.app[CONFIG]
    try:
        await asyncio.wait_for(request.app[INBOX].ping(), timeout=config.inbox_timeout_seconds)
    except (InboxUnavailable, TimeoutError) as error:
        raise unavailable(config, str(error) or "ping timed out") from None
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    pending, sizes = await read_inbox(request.app[INBOX])
    body, content_type = request.app[METRICS].render(pending, sizes)
    return web.Response(body=body, headers={"Content-Type": content_type})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[CONFIG]))


def app_factory(config: ReceiverConfig) -> Callable[[], Awaitable[web.Application]]:
    """The factory gunicorn's aiohttp worker awaits once per worker process, after the fork."""

    async def factory() -> web.Application:
        return create_app(config)

    return factory
