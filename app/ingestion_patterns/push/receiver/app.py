"""The webhook receiver: an aiohttp app factory, served by gunicorn (``ingest webhook-receiver``).

``POST /webhook/{source_id}`` answers 202 only after the payload is committed (fsynced) to the
inbox, 200 when the inbox already holds its event id, and a 4xx/503 with a JSON reason otherwise.
See docs/webhook-receiver.md for the endpoints and settings.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import orjson
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
T = TypeVar("T")

CONFIG = web.AppKey("config", ReceiverConfig)
INBOX = web.AppKey("inbox", Inbox)
METRICS = web.AppKey("metrics", ReceiverMetrics)
RATE_LIMITER = web.AppKey("rate_limiter", ClientRateLimiter)

MAX_PEEK = 100
DEADLINE_SWEEP_SECONDS = 0.05  # how late past inbox_timeout_seconds a stuck request may be answered


def create_app(config: ReceiverConfig) -> web.Application:
    """A receiver for ``config``; its inbox is opened on startup and closed on cleanup.

    No app-wide middleware: the POST route is the hot path, and a middleware wraps every request in
    two more coroutines (its own and aiohttp's current-app fix). Each route answers its own errors as
    JSON instead (``Receiver.receive``, ``json_errors``), and a last catch-all route answers what the
    router would have refused (404, 405 with Allow) in the same JSON.
    """
    # client_max_size is a safety net; the handler enforces the limit itself, with a JSON 413.
    app = web.Application(client_max_size=config.max_body_bytes + 1)
    receiver = Receiver(
        config,
        ReceiverMetrics(),
        ClientRateLimiter(
            config.rate_limit_per_second, config.rate_limit_burst, trusted_proxies=config.trusted_proxies
        ),
    )
    app[CONFIG] = config
    app[RATE_LIMITER] = receiver.limiter
    app[METRICS] = receiver.metrics
    app.cleanup_ctx.append(receiver.inbox_context)
    app.router.add_post("/webhook/{source_id}", receiver.receive)
    app.router.add_get("/webhook/{source_id}/pending", json_errors(pending))
    app.router.add_get("/health", json_errors(health))
    app.router.add_get("/ready", json_errors(ready))
    app.router.add_get("/metrics", json_errors(metrics))
    app.router.add_get("/openapi.json", json_errors(openapi))
    app.router.add_route("*", "/{path:.*}", json_errors(receiver.not_routed))  # last: what nothing above takes
    return app


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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_errors(handler: Handler) -> Handler:
    """``handler`` answering every error as JSON ``{"status":"error","reason":…}``."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Rejection as rejection:
            return error_response(rejection.status, rejection.reason, rejection.headers)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            reason = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
            return error_response(error.status, reason, {k: v for k, v in error.headers.items() if k == "Allow"})
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return internal_error()

    return answer


def internal_error() -> web.Response:
    return error_response(500, "internal error (logged by the receiver)")


class Deadlines:
    """``asyncio.timeout`` for many short awaits at once, at the cost of a dict entry each.

    ``asyncio.timeout`` schedules and cancels a timer per request: a heap push and a cancelled handle
    per webhook, a tenth of the no-op path's CPU. Here one sweep every ``DEADLINE_SWEEP_SECONDS``
    (only while something is waiting) cancels the tasks past their deadline, and ``run`` turns that
    cancellation into ``TimeoutError`` as ``asyncio.timeout`` does; a cancellation from elsewhere
    stays a cancellation.

    ``loop`` is the app's, bound at startup: on Python 3.11 ``asyncio.get_running_loop()`` (and
    ``current_task()`` without a loop) makes a getpid() syscall each call, two per webhook here.
    """

    def __init__(self, seconds: float, sweep_seconds: float = DEADLINE_SWEEP_SECONDS):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.seconds = seconds
        self.sweep_seconds = min(sweep_seconds, seconds)
        self._waiting: dict[asyncio.Task, float] = {}
        self._expired: set[asyncio.Task] = set()
        self._sweep: asyncio.TimerHandle | None = None

    async def run(self, awaitable: Awaitable[T]) -> T:
        loop = self.loop or asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:  # not in a task: nothing to cancel, so no deadline (aiohttp always has one)
            return await awaitable
        cancelling = task.cancelling()
        self._waiting[task] = loop.time() + self.seconds
        if self._sweep is None:
            self._sweep = loop.call_later(self.sweep_seconds, self._cancel_overdue, loop)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task in self._expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            del self._waiting[task]
            if task in self._expired:
                self._expired.discard(task)

    def _cancel_overdue(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in self._waiting.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._sweep = loop.call_later(self.sweep_seconds, self._cancel_overdue, loop) if self._waiting else None


# -- POST /webhook/{source_id} -----------------------------------------------------------------------


class Receiver:
    """``POST /webhook/{source_id}`` with what it needs bound once per app, not looked up per request."""

    def __init__(self, config: ReceiverConfig, metrics: ReceiverMetrics, limiter: ClientRateLimiter):
        self.config, self.metrics, self.limiter = config, metrics, limiter
        self.deadlines = Deadlines(config.inbox_timeout_seconds)
        self.inbox: Inbox | None = None

    async def inbox_context(self, app: web.Application) -> AsyncIterator[None]:
        config = self.config
        self.deadlines.loop = asyncio.get_running_loop()
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
        app[INBOX] = self.inbox = inbox
        yield
        self.metrics.flush()  # what this worker counted in its last loop pass
        await inbox.close()

    async def receive(self, request: web.Request) -> web.Response:
        # 429 before anything else, and only when a rate is set: the hot path pays nothing otherwise.
        if self.limiter.enabled and (limited := self.rate_limited(request)):
            return limited
        started = time.perf_counter()
        config, headers = self.config, request.headers
        # One coroutine from request to answer: each level of await is a frame more per webhook.
        try:
            source_id = request.match_info["source_id"]
            if source_id not in config.sources:  # a declared id was checked when it was declared
                check_source_id(source_id)
                if not config.accept_undeclared:
                    raise Rejection(404, "undeclared_source", f"no webhook source {source_id!r} is declared here")
            check_content_type(headers.get("Content-Type"))
            body = buffered_body(request, config.max_body_bytes)
            if body is None:  # still arriving (a chunked or a large body)
                body = await read_body(request, config.max_body_bytes)
            if secret := config.secret_for(source_id):
                self.verify(source_id, secret, body, headers)
            payload = parse_json_object(body)
            item = NewWebhook(source_id, _event_id(config, source_id, headers, payload), body, kept_headers(headers))
            if self.inbox is None:
                raise unavailable(config, "the inbox is not open yet")
            try:
                result = await self.deadlines.run(self.inbox.put(item))
            except InboxUnavailable as error:
                raise unavailable(config, error) from None
            except TimeoutError:
                raise unavailable(config, f"no commit within {config.inbox_timeout_seconds:g} s") from None
            if result.accepted:
                outcome, label, response = "accepted", source_id, answer(202, "accepted", result.event_id)
            else:
                outcome, label, response = "duplicate", source_id, answer(200, "duplicate", result.event_id)
        except Rejection as rejection:
            outcome = "unavailable" if rejection.status == 503 else "rejected"
            label = rejection.code
            response = error_response(rejection.status, rejection.reason, rejection.headers)
            if rejection.status == 413:
                response.force_close()  # the unread rest of the body must not be parsed as a next request
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return internal_error()
        self.metrics.answered(outcome, label, time.perf_counter() - started)
        return response

    def verify(self, source_id: str, secret: str, body: bytes, headers: Mapping[str, str]) -> None:
        """401 unless ``body`` carries a good signature by ``secret`` in the source's scheme."""
        config = self.config
        try:
            verify_signature(
                secret,
                body,
                headers,
                tolerance_seconds=config.tolerance_for(source_id),
                scheme=config.scheme_for(source_id),
            )
        except SignatureError as error:
            code = "missing_signature" if error.missing else "bad_signature"
            raise Rejection(401, code, error.reason) from None

    def rate_limited(self, request: web.Request) -> web.Response | None:
        """429 with Retry-After for a client past its rate (per worker process), else None."""
        limiter = self.limiter
        if wait := limiter.take(limiter.client(request.remote, request.headers.get("X-Forwarded-For"))):
            self.metrics.count_rejected("rate_limited")
            return error_response(
                429,
                f"rate limit of {limiter.rate:g} requests/s per client exceeded",
                {"Retry-After": retry_after_header(wait)},
            )
        return None

    async def not_routed(self, request: web.Request) -> web.Response:
        """What the router refuses, as JSON: 405 with Allow when another method takes the path, else 404.
        A POST under /webhook/ counts against the client's rate as before (the limit was app-wide)."""
        webhook_post = request.method == "POST" and request.path.startswith("/webhook/")
        if webhook_post and self.limiter.enabled and (limited := self.rate_limited(request)):
            return limited
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource is not request.match_info.route.resource:
                allowed |= (await resource.resolve(request))[1]
        if allowed:
            return error_response(
                405, f"method {request.method} not allowed on {request.path}", {"Allow": ",".join(sorted(allowed))}
            )
        return error_response(404, f"no such endpoint: {request.method} {request.path}")


JSON_MEDIA_TYPE = "application/json"


def answer(status: int, outcome: str, event_id: str) -> web.Response:
    """The 202/200 body, serialised by orjson (a third of ``json_response``'s cost). Its type goes in
    as ``content_type``, which sets the one header; a ``headers`` mapping would be copied into a new
    CIMultiDict per answer, about a third more than the whole Response costs otherwise."""
    body = orjson.dumps({"status": outcome, "id": event_id})
    return web.Response(body=body, status=status, content_type=JSON_MEDIA_TYPE)


def _event_id(config: ReceiverConfig, source_id: str, headers: Mapping[str, str], payload: dict) -> str:
    """The event id from where the source's declaration says (400 when the delivery lacks it), else by
    the default rules (``event_id_for``)."""
    spec = config.sources.get(source_id)
    if spec is None or spec.event_id is None:
        return event_id_for(headers, payload)
    where = f"header {spec.event_id.header}" if spec.event_id.header else f"payload field {spec.event_id.json_path}"
    event_id = spec.event_id.read(headers, payload)
    if event_id is None:
        raise Rejection(400, "missing_event_id", f"this source takes its event id from the {where}, which is missing")
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        raise Rejection(400, "bad_event_id", f"the {where} is longer than {MAX_EVENT_ID_LENGTH} characters")
    return event_id


def buffered_body(request: web.Request, limit: int) -> bytes | None:
    """The body when all of it has arrived (with the headers, as a webhook's usually does), read
    without an await: a coroutine less per webhook. None: the rest is still on its way (``read_body``).
    413 when it exceeds ``limit`` (it is in memory already, so Content-Length need not be read first)."""
    content = request.content
    if not content.is_eof():
        return None
    body = content.read_nowait()
    if len(body) > limit:
        raise too_large(limit)
    return body


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed ``limit``: from Content-Length
    before reading anything, or while streaming a chunked body, never buffering more than limit+1."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    content = request.content
    chunk = await content.readany()
    if len(chunk) > limit:
        raise too_large(limit)
    if content.at_eof():  # the usual case: the whole body arrived in one piece
        return chunk
    chunks, size = [chunk], len(chunk)
    while chunk := await content.readany():
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
