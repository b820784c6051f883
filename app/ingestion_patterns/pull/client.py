"""``SourceApiResource``: the client of the source REST API (aiohttp), streaming Arrow pages.

Pages are fetched one ahead (the next request is in flight while the caller lands the current
page) and yielded one at a time, never accumulated. A page is read whole by pyarrow's JSON reader;
when one of its records is not interchange JSON (or pyarrow cannot read it with the others), the
page is read line by line instead and such records come with it as rejects (``read_ndjson``), so
no record can fail its page. Transient failures (429, 5xx, timeouts, cut-off
bodies) are retried with exponential backoff and full jitter, honouring ``Retry-After``; a refused
token (401/403) stops at once with an error that says so.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import dagster as dg
import orjson
import pyarrow as pa
import pyarrow.json as pa_json
from pydantic import Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from .. import interchange_json
from .validate import RecordReject, has_non_finite, json_type, nesting_depth, records_table

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
    rejects: int = 0  # records that cannot land (kept in ingestion.pull_rejects)
    bytes: int = 0
    retries: int = 0
    retry_reasons: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within this pull
    records: pa.Table  # as the source sent them (types inferred), not yet conformed
    cursor: str | None  # the cursor this page was requested with (None: the first page)
    next_cursor: str | None
    rejects: tuple[RecordReject, ...] = ()  # records of the page that cannot land, with the reason


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
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_ndjson(body: bytes) -> pa.Table:
    """JSON lines straight into Arrow (pyarrow's multithreaded reader), types inferred."""
    if not body.strip():
        return pa.table({})
    return pa_json.read_json(io.BytesIO(body), read_options=pa_json.ReadOptions(block_size=4 << 20))


def parse_envelope(body: bytes) -> tuple[pa.Table, str | None]:
    """A ``{"data": [...], "next_cursor": ...}`` page, for APIs that do not speak JSON lines."""
    document = orjson.loads(body)
    return pa.Table.from_pylist(document.get("data") or []), document.get("next_cursor")


def _every_line_opens_an_object(text: bytes) -> bool:
    """Whether every line starts with "{" (two byte counts: a regex over the lines cost more than the parse).
    Any other line (blank, a byte order mark, a scalar, an array, an object after spaces) sends the page
    down the line-by-line path: pyarrow's reader would skip it, read it as a row of nulls, or crash the
    process (a top-level ``null`` first)."""
    return text.startswith(b"{") and text.count(b"\n") == text.count(b"\n{")


# orjson reads 1,024 levels of nesting (the record itself is one); pyarrow reads deeper.
MAX_DEPTH = 1024


TableOf = Callable[[list[tuple[bytes, dict]]], tuple[pa.Table, list[RecordReject]]]


def read_ndjson(body: bytes, table_of: TableOf = records_table) -> tuple[pa.Table, list[RecordReject]]:
    """A JSON lines page: its records as a table (types inferred) and the records that cannot land.

    Fast path: pyarrow's reader over the whole page, kept when every line is one JSON object, no
    number is NaN or infinite and nothing is nested deeper than interchange JSON allows, i.e. when
    the page is interchange JSON. Otherwise each line is read on its own by the edges' rule
    (``interchange_json``: a duplicate key's last value wins) and a line that is not an interchange
    JSON object is a reject with the reason; blank lines are no records. ``table_of`` reads those
    records into a table (default: the contract's ``records_table``)."""
    text = body.rstrip()
    if not text:
        return pa.table({}), []
    table = read_interchange_lines(text)
    if table is not None:
        return table, []
    return _read_line_by_line(body.split(b"\n"), table_of)  # each line as sent, trailing spaces and all


def read_interchange_lines(text: bytes) -> pa.Table | None:
    """``read_ndjson``'s fast path: non-empty JSON lines (no trailing newline) read whole by pyarrow,
    or None when they are not all interchange JSON objects pyarrow reads together."""
    if not (_every_line_opens_an_object(text) and _is_utf8(text)):  # pyarrow does not check UTF-8 in strings
        return None
    try:
        table = parse_ndjson(text)
        interchange = (
            table.num_rows == text.count(b"\n") + 1
            and 1 + max((nesting_depth(f.type) for f in table.schema), default=0) <= MAX_DEPTH
            and not has_non_finite(table)
        )
    except (pa.ArrowException, ValueError):  # not JSON, a duplicate key, a type that changes
        return None
    return table if interchange else None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_line_by_line(lines: list[bytes], table_of: TableOf = records_table) -> tuple[pa.Table, list[RecordReject]]:
    records, rejects = judge_lines(lines)
    table, misfits = table_of(records)
    return table, rejects + misfits


def judge_lines(lines: list[bytes]) -> tuple[list[tuple[bytes, dict]], list[RecordReject]]:
    """The records of JSON lines (each with its line as sent) and the lines that cannot land: not an
    interchange JSON object. Blank lines are no records."""
    records: list[tuple[bytes, dict]] = []
    rejects: list[RecordReject] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            value = interchange_json.loads(line)
        except interchange_json.NotInterchangeJson as error:
            rejects.append(RecordReject(line, str(error)))
            continue
        if not isinstance(value, dict):
            rejects.append(RecordReject(line, f"a JSON {json_type(value)}, not an object"))
            continue
        records.append((line, value))
    return records, rejects


def read_envelope(body: bytes) -> tuple[pa.Table, list[RecordReject], str | None]:
    """An envelope page (``parse_envelope``), its records read by the same rules as ``read_ndjson``.

    When the document is not interchange JSON as a whole, it is read leniently (Python's reader:
    ``NaN``, ``Infinity``, lone surrogates) and each record written back as JSON text is judged on
    its own; a document even that cannot read is not a page (``ValueError``)."""
    document, strict = load_document(body)
    if not isinstance(document, dict):
        raise ValueError(f"the page is a JSON {json_type(document)}, not an envelope object")
    data = document.get("data") or []
    if not isinstance(data, list):
        raise ValueError(f"the page's data is a JSON {json_type(data)}, not an array")
    records, rejects = judge_records(data, strict=strict)
    table, misfits = records_table(records)
    cursor = document.get("next_cursor")
    return table, rejects + misfits, cursor if isinstance(cursor, str) else None


def load_document(body: bytes) -> tuple[Any, bool]:
    """A JSON page as a document, and whether it is interchange JSON as a whole. When it is not, it is
    read leniently (Python's reader: ``NaN``, ``Infinity``, lone surrogates) so that ``judge_records``
    can judge each record on its own; ``ValueError`` (or ``RecursionError``) when it is no JSON at all."""
    try:
        return interchange_json.loads(body), True
    except interchange_json.NotInterchangeJson:
        return json.loads(body), False


def judge_records(values: list, *, strict: bool) -> tuple[list[tuple[bytes, dict]], list[RecordReject]]:
    """The records of a page's list (each with its JSON text) and the ones that cannot land: a value
    that is not an object, or (``strict`` false: the document was read leniently) not interchange JSON."""
    records: list[tuple[bytes, dict]] = []
    rejects: list[RecordReject] = []
    for value in values:
        raw = _raw_text(value)
        if not strict:
            try:
                value = interchange_json.loads(raw)
            except interchange_json.NotInterchangeJson as error:
                rejects.append(RecordReject(raw, str(error)))
                continue
        if not isinstance(value, dict):
            rejects.append(RecordReject(raw, f"a JSON {json_type(value)}, not an object"))
            continue
        records.append((raw, value))
    return records, rejects


def _raw_text(value: object) -> bytes:
    """A record of an envelope as JSON text, for its reject row (``NaN`` and lone surrogates kept)."""
    try:
        return json.dumps(value, separators=(",", ":")).encode()
    except (RecursionError, ValueError):
        return repr(value)[:10_000].encode("utf-8", "backslashreplace")


R = TypeVar("R")


@dataclass(frozen=True)
class HttpPolicy:
    """How a client talks to a source over HTTP: its timeouts, and its retries of transient failures
    (429, 5xx, timeouts, cut-off bodies) with exponential backoff and full jitter, honouring
    ``Retry-After``. Shared by ``SourceApiResource`` and the declarative REST client."""

    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    max_retries: int = 8
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    def session(self, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.connect_timeout_seconds, sock_read=self.read_timeout_seconds
        )
        return aiohttp.ClientSession(timeout=timeout, headers=headers)

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        backoff = wait_random_exponential(multiplier=self.backoff_initial_seconds, max=self.backoff_max_seconds)
        return backoff(state)

    async def call(self, request: Callable[[], Awaitable[R]], stats: PullStats, *, service: str) -> R:
        """``await request()`` until it succeeds, retrying what is transient (counted in ``stats``);
        ``SourceApiError`` naming ``service`` when retries run out. Other errors pass at once."""

        def count_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            stats.retries += 1
            stats.retry_reasons[getattr(error, "reason", type(error).__name__)] += 1

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((TransientError, aiohttp.ClientError, asyncio.TimeoutError)),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self.wait,
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await request()
        except (TimeoutError, TransientError, aiohttp.ClientError) as error:
            raise SourceApiError(
                f"{service} still failing after {self.max_retries} retries: "
                f"{getattr(error, 'reason', None) or repr(error)}"
            ) from error
        raise AssertionError("unreachable")


async def check_status(response: aiohttp.ClientResponse, *, service: str, refused: str, check: str) -> None:
    """Nothing for a 200. Otherwise: 401/403, ``SourceApiAuthError`` at once (``service`` refused
    ``refused``; ``check`` names what to fix); 429 and 5xx, ``TransientError`` with the server's
    ``Retry-After``; any other status, ``SourceApiError``. The query string is never quoted (it may
    hold a key)."""
    if response.status in (401, 403):
        detail = (await response.text())[:300]
        raise SourceApiAuthError(
            f"{service} refused {refused} (HTTP {response.status}: {detail}); check {check}. Not retrying."
        )
    if response.status == 429 or response.status >= 500:
        raise TransientError(f"HTTP {response.status}", parse_retry_after(response.headers.get("Retry-After")))
    if response.status != 200:
        detail = (await response.text())[:500]
        raise SourceApiError(f"source API at {response.url.with_query(None)} answered HTTP {response.status}: {detail}")


async def prefetched(first: Awaitable[R], following: Callable[[R], Awaitable[R] | None]) -> AsyncGenerator[R, None]:
    """The results of a chain of requests, one at a time and never accumulated, each next request
    (``following(result)``, None at the end) in flight while the caller handles the current result.
    Closing the generator cancels the request in flight."""
    pending: asyncio.Future[R] | None = asyncio.ensure_future(first)
    try:
        while pending is not None:
            result = await pending
            pending = None
            after = following(result)
            if after is not None:  # prefetch: the request runs while the caller handles this result
                pending = asyncio.ensure_future(after)
            yield result
    finally:
        if pending is not None:
            pending.cancel()


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
    duckdb_memory_limit: str = Field(
        default="128MB", description="DuckDB's memory cap in a pull run; empty: DuckDB's own."
    )
    max_staleness_hours: float = Field(default=48, gt=0, description="The check warns when the newest record is older.")

    @property
    def http(self) -> HttpPolicy:
        return HttpPolicy(
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
            max_retries=self.max_retries,
            backoff_initial_seconds=self.backoff_initial_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
        )

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
        http = self.http
        headers = {"Authorization": f"Bearer {self.token}", "Accept": f"{NDJSON}, application/json;q=0.5"}
        async with http.session(headers) as session:

            def fetch(params: dict[str, str]) -> Awaitable[tuple[pa.Table, list[RecordReject], str | None]]:
                return http.call(
                    lambda: self._get_page(session, params, stats), stats, service=f"source API at {self.base_url}"
                )

            def following(page: tuple[pa.Table, list[RecordReject], str | None]):
                next_cursor = page[2]
                return fetch({"limit": str(limit), "cursor": next_cursor}) if next_cursor else None

            number, cursor = 1, None
            async with aclosing(prefetched(fetch(first), following)) as results:
                async for records, rejects, next_cursor in results:
                    stats.pages += 1
                    stats.records += records.num_rows
                    stats.rejects += len(rejects)
                    yield Page(number, records, cursor, next_cursor, tuple(rejects))
                    number, cursor = number + 1, next_cursor

    async def _get_page(
        self, session: aiohttp.ClientSession, params: dict[str, str], stats: PullStats
    ) -> tuple[pa.Table, list[RecordReject], str | None]:
        url = f"{self.base_url.rstrip('/')}/v1/records"
        async with session.get(url, params=params) as response:
            await check_status(
                response, service=f"source API at {self.base_url}", refused="the token", check="SOURCE_API_TOKEN"
            )
            body = await response.read()  # raises ClientPayloadError when the body is cut short
            stats.bytes += len(body)
            try:
                if response.content_type == NDJSON:
                    records, rejects = await asyncio.to_thread(read_ndjson, body)
                    next_cursor = response.headers.get("X-Next-Cursor")
                else:
                    records, rejects, next_cursor = await asyncio.to_thread(read_envelope, body)
            except (pa.ArrowException, ValueError, RecursionError) as error:
                raise SourceApiError(f"source API at {url} sent a page that is not valid JSON: {error}") from error
            check_record_count(response.headers, records.num_rows + len(rejects))
            return records, rejects, next_cursor


def check_record_count(headers: Mapping[str, str], received: int) -> None:
    """A page whose ``X-Record-Count`` header says more (or fewer) records than it held was cut: retry it."""
    expected = headers.get("X-Record-Count")
    if expected is not None and int(expected) != received:
        raise TransientError(f"incomplete page ({received} of {expected} records)")
