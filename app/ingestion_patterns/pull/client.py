"""``SourceApiResource``: the client of the source REST API (aiohttp), streaming Arrow pages.

Pages are fetched one ahead (the next request is in flight while the caller lands the current
page) and yielded one at a time, never accumulated. Transient failures (429, 5xx, timeouts, cut-off
bodies) are retried with exponential backoff and full jitter, honouring ``Retry-After``; a refused
token (401/403) stops at once with an error that says so.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import aiohttp
import dagster as dg
import orjson
import pyarrow as pa
import pyarrow.json as pa_json
from pydantic import Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

NDJSON = "application/x-ndjson"
MAX_RETRY_AFTER_SECONDS = 600.0


class SourceApiError(RuntimeError):
    """The source API failed in a way retrying will not fix (or retries ran out)."""


class SourceApiAuthError(SourceApiError):
    """The source API refused the credentials (401/403): fix SOURCE_API_TOKEN, do not retry."""


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's own hint, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class PullStats:
    """Counters of one pull, filled while pages stream (reported as asset metadata)."""

    pages: int = 0
    records: int = 0
    bytes: int = 0
    retries: int = 0
    retry_reasons: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within this pull
    records: pa.Table  # as the source sent them (types inferred), not yet conformed
    cursor: str | None  # the cursor this page was requested with (None: the first page)
    next_cursor: str | None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def parse_ndjson(body: bytes) -> pa.Table:
    """JSON lines straight into Arrow (pyarrow's multithreaded reader), types inferred."""
    if not body.strip():
        return pa.table({})
    return pa_json.read_json(io.BytesIO(body), read_options=pa_json.ReadOptions(block_size=4 << 20))


def parse_envelope(body: bytes) -> tuple[pa.Table, str | None]:
    """A ``{"data": [...], "next_cursor": ...}`` page, for APIs that do not speak JSON lines."""
    document = orjson.loads(body)
    return pa.Table.from_pylist(document.get("data") or []), document.get("next_cursor")


class SourceApiResource(dg.ConfigurableResource):
    """The source REST API: ``GET {base_url}/v1/records`` with bearer auth and cursor paging."""

    base_url: str = Field(description="Root URL of the source API (SOURCE_API_URL).")
    token: str = Field(description="Bearer token (SOURCE_API_TOKEN).")
    page_size: int = Field(default=10_000, description="Records per page (the API's `limit`).")
    connect_timeout_seconds: float = Field(default=10.0)
    read_timeout_seconds: float = Field(default=60.0, description="Longest silence while reading a response.")
    max_retries: int = Field(default=8, description="Retries per page before the pull fails.")
    backoff_initial_seconds: float = Field(default=0.5)
    backoff_max_seconds: float = Field(default=30.0)
    # How the pull lands and checks what it fetched (PULL_DUCKDB_MEMORY_LIMIT, PULL_MAX_STALENESS_HOURS).
    duckdb_memory_limit: str = Field(default="128MB", description="DuckDB's memory cap in a pull run; empty: DuckDB's own.")
    max_staleness_hours: float = Field(default=48, gt=0, description="The check warns when the newest record is older.")

    async def pages(
        self,
        *,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
        page_size: int | None = None,
        stats: PullStats | None = None,
    ) -> AsyncGenerator[Page, None]:
        """Every page of records with updated_at >= ``updated_since`` (and < ``updated_before``),
        in (updated_at, id) order, while the next page is already being fetched."""
        stats = stats if stats is not None else PullStats()
        limit = page_size or self.page_size
        first: dict[str, str] = {"limit": str(limit)}
        if updated_since is not None:
            first["updated_since"] = updated_since.isoformat()
        if updated_before is not None:
            first["updated_before"] = updated_before.isoformat()
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_seconds,
                                        sock_read=self.read_timeout_seconds)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": f"{NDJSON}, application/json;q=0.5"}
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            number, cursor = 1, None
            pending = asyncio.create_task(self._fetch(session, first, stats))
            try:
                while pending is not None:
                    records, next_cursor = await pending
                    pending = None
                    if next_cursor:  # prefetch: the request runs while the caller lands this page
                        pending = asyncio.create_task(
                            self._fetch(session, {"limit": str(limit), "cursor": next_cursor}, stats))
                    stats.pages += 1
                    stats.records += records.num_rows
                    yield Page(number, records, cursor, next_cursor)
                    number, cursor = number + 1, next_cursor
            finally:
                if pending is not None:
                    pending.cancel()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        backoff = wait_random_exponential(multiplier=self.backoff_initial_seconds, max=self.backoff_max_seconds)
        return backoff(state)

    async def _fetch(self, session: aiohttp.ClientSession, params: dict[str, str],
                     stats: PullStats) -> tuple[pa.Table, str | None]:
        def count_retry(state: RetryCallState) -> None:
            error = state.outcome.exception()
            stats.retries += 1
            stats.retry_reasons[getattr(error, "reason", type(error).__name__)] += 1

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, aiohttp.ClientError, asyncio.TimeoutError)),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_page(session, params, stats)
        except (TransientError, aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise SourceApiError(
                f"source API at {self.base_url} still failing after {self.max_retries} retries: "
                f"{getattr(error, 'reason', None) or repr(error)}") from error
        raise AssertionError("unreachable")

    async def _get_page(self, session: aiohttp.ClientSession, params: dict[str, str],
                        stats: PullStats) -> tuple[pa.Table, str | None]:
        url = f"{self.base_url.rstrip('/')}/v1/records"
        async with session.get(url, params=params) as response:
            if response.status in (401, 403):
                detail = (await response.text())[:300]
                raise SourceApiAuthError(
                    f"source API at {self.base_url} refused the token (HTTP {response.status}: {detail}); "
                    "check SOURCE_API_TOKEN. Not retrying.")
            if response.status == 429 or response.status >= 500:
                raise TransientError(f"HTTP {response.status}", parse_retry_after(response.headers.get("Retry-After")))
            if response.status != 200:
                detail = (await response.text())[:500]
                raise SourceApiError(f"source API at {url} answered HTTP {response.status}: {detail}")
            body = await response.read()  # raises ClientPayloadError when the body is cut short
            stats.bytes += len(body)
            try:
                if response.content_type == NDJSON:
                    records = await asyncio.to_thread(parse_ndjson, body)
                    next_cursor = response.headers.get("X-Next-Cursor")
                else:
                    records, next_cursor = await asyncio.to_thread(parse_envelope, body)
            except (pa.ArrowInvalid, orjson.JSONDecodeError) as error:
                raise SourceApiError(f"source API at {url} sent a page that is not valid JSON: {error}") from error
            expected = response.headers.get("X-Record-Count")
            if expected is not None and int(expected) != records.num_rows:
                raise TransientError(f"incomplete page ({records.num_rows} of {expected} records)")
            return records, next_cursor
