"""The pull pattern's HTTP transport (``HttpPolicy``: timeouts, retries of 429 honouring
``Retry-After``, 5xx, timeouts and cut-off bodies with exponential backoff and full jitter; a refused
credential fails at once) and its reading of pages: a page is read whole by pyarrow's JSON reader;
when one of its records is not interchange JSON (or pyarrow cannot read it with the others), the
page is read line by line instead and such records come with it as rejects (``read_ndjson``), so no
record can fail its page. ``SourceApiResource`` holds the settings every REST API source shares;
the declarative client (``rest_api.client``) is what pages an API.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
import dagster as dg
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
    """The source API refused the credentials (401/403): fix them (the error names the variable), do not retry."""


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
    """The pull pattern's transport and landing settings, shared by every REST API source (the
    declarations say where each API is and how it authenticates): timeouts and retries of the HTTP
    client, DuckDB's memory cap in a pull run, and the check's staleness limit."""

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


def check_record_count(headers: Mapping[str, str], received: int) -> None:
    """A page whose ``X-Record-Count`` header says more (or fewer) records than it held was cut: retry it."""
    expected = headers.get("X-Record-Count")
    if expected is not None and int(expected) != received:
        raise TransientError(f"incomplete page ({received} of {expected} records)")
