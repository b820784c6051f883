"""``RestApiClient``: a declared REST API (``RestApiSpec``) read page by page as Arrow tables.

The transport is the pull pattern's (``pull.client``): the same timeouts, the same retries of 429
(honouring ``Retry-After``), 5xx, timeouts and cut-off bodies with backoff and jitter, 401/403 failing
at once, and the next page in flight while the caller lands the current one. What is declared here
is where the records are, how the pages follow each other and how requests authenticate.

A page comes with the request that fetched it and the request of the next page (``PageRequest``:
a URL and its query, never a secret), so a caller can checkpoint and resume, and with the largest
value of the incremental cursor field in it.

Records are read as the pull pattern reads them: a page that is interchange JSON goes to Arrow in
one piece, with no Python object per record (NDJSON by pyarrow's reader; a JSON document read by
pyarrow as one row whose list of records is flattened into the table; a document pyarrow cannot read
so is parsed by orjson and its list written back as JSON lines for pyarrow); otherwise each record is
judged on its own, and one that is not an interchange JSON object, or whose fields cannot be read
with the records before it, is a reject with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urljoin

import aiohttp
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from multidict import CIMultiDictProxy
from yarl import URL

from ..client import (
    MAX_DEPTH,
    HttpPolicy,
    PullStats,
    SourceApiAuthError,
    SourceApiError,
    TableOf,
    TransientError,
    _is_utf8,
    check_record_count,
    check_status,
    judge_records,
    load_document,
    parse_ndjson,
    parse_retry_after,
    prefetched,
    read_interchange_lines,
    read_ndjson,
)
from ..validate import RecordReject, has_non_finite, json_type, nesting_depth
from .spec import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OAuth2ClientCredentialsAuth,
    OffsetPaginator,
    PageNumberPaginator,
    RestApiSpec,
    json_path,
)

NDJSON = "application/x-ndjson"


class RestApiConfigError(SourceApiError):
    """The declaration cannot run here (a secret's environment variable is not set)."""


@dataclass(frozen=True)
class PageRequest:
    """A request of the pages: its URL (with any query the API put in it) and the query parameters
    added to it. Holds no secret (credentials are added as it is sent), so it can be checkpointed."""

    url: str
    params: tuple[tuple[str, str], ...] = ()

    def with_param(self, name: str, value: str) -> PageRequest:
        return replace(self, params=tuple((k, v) for k, v in self.params if k != name) + ((name, value),))

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    def to_json(self) -> str:
        return orjson.dumps({"url": self.url, "params": self.params}).decode()

    @classmethod
    def from_json(cls, text: str) -> PageRequest:
        value = orjson.loads(text)
        return cls(value["url"], tuple((k, v) for k, v in value["params"]))


@dataclass(frozen=True)
class RestPage:
    number: int  # 1-based within this run
    records: pa.Table  # as the API sent them (types inferred)
    rejects: tuple[RecordReject, ...]  # records of the page that cannot land, with the reason
    request: PageRequest  # what fetched this page
    next_request: PageRequest | None  # the next page's request; None: this was the last page
    cursor_max: str | None = None  # the largest incremental cursor_field value in the page, as sent back


def resolve(document: Any, path: str) -> Any:
    """The value at a JSON path in a document (see ``spec``), or None when it is not there."""
    value = document
    for key in json_path(path):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


# ------------------------------------------------------------------------------------------- records


def read_json_records(
    body: bytes, path: str, wanted: str | None = None
) -> tuple[pa.Table, list[RecordReject], dict[str, Any]]:
    """A JSON page: its records (the list at ``path``) as a table, the rejects, and the value at the
    JSON path ``wanted`` (the paginator's: a cursor, a next URL, a total), as ``{wanted: value}``.

    Fast path (``_read_envelope``): pyarrow reads the document in one piece, when it is one line, an
    object, and interchange JSON. Otherwise orjson parses it, and the list is written back as JSON
    lines for pyarrow; failing that, each record is judged on its own (``judge_records``)."""
    fast = _read_envelope(body, path, wanted)
    if fast is not None:
        return fast
    document, strict = load_document(body)
    found = {wanted: resolve(document, wanted)} if wanted else {}
    values = resolve(document, path)
    if values is None:
        values = []
    if not isinstance(values, list):
        where = f"records.path {path!r}" if path else "the body"
        raise ValueError(f"{where} is a JSON {json_type(values)}, not a list of records")
    if not values:
        return pa.table({}), [], found
    if strict:
        try:
            table = read_interchange_lines(b"\n".join(map(orjson.dumps, values)))
        except orjson.JSONEncodeError:  # nested deeper than orjson writes: judged one by one
            table = None
        if table is not None:
            return table, [], found
    records, rejects = judge_records(values, strict=strict)
    table, misfits = records_table(records)
    return table, rejects + misfits, found


_UNREADABLE = object()


def _read_envelope(
    body: bytes, path: str, wanted: str | None
) -> tuple[pa.Table, list[RecordReject], dict[str, Any]] | None:
    """``read_json_records`` without a Python object per record: the document read by pyarrow as one
    row, the list at ``path`` flattened into the records' table. None (take the slow path) unless
    the document is one line of interchange JSON, an object whose list at ``path`` holds only
    objects pyarrow reads together, and the ``wanted`` value is not read as a timestamp (its text
    would be lost)."""
    keys = json_path(path)
    text = body.strip()
    if not keys or not text.startswith(b"{") or b"\n" in text or not _is_utf8(text):
        return None
    try:
        row = parse_ndjson(text)
    except (pa.ArrowException, ValueError):  # not JSON, a duplicate key, a type that changes
        return None
    if row.num_rows != 1 or keys[0] not in row.column_names:
        return None
    if 1 + max((nesting_depth(f.type) for f in row.schema), default=0) > MAX_DEPTH or has_non_finite(row):
        return None
    array = row.column(keys[0]).combine_chunks()
    for key in keys[1:]:
        if not pa.types.is_struct(array.type) or array.type.get_field_index(key) < 0:
            return None
        array = array.field(key)
    if array.null_count or not pa.types.is_list(array.type):
        return None
    items = array.flatten()
    if pa.types.is_null(items.type) and len(items) == 0:
        table = pa.table({})
    elif pa.types.is_struct(items.type) and items.type.num_fields and not items.null_count:
        table = pa.Table.from_struct_array(items)
    else:
        return None
    found = {}
    if wanted:
        value = _arrow_value(row, json_path(wanted))
        if value is _UNREADABLE:
            return None
        found[wanted] = value
    return table, [], found


def _arrow_value(row: pa.Table, keys: tuple[str, ...]) -> Any:
    """The value at ``keys`` in a one-row table, or ``_UNREADABLE`` when pyarrow read it as a timestamp."""
    if not keys or keys[0] not in row.column_names:
        return None
    value = row.column(keys[0])[0]
    for key in keys[1:]:
        if isinstance(value, pa.StructScalar) and value.is_valid and value.type.get_field_index(key) >= 0:
            value = value[key]
        elif isinstance(value, pa.ListScalar) and value.is_valid and key.lstrip("-").isdigit():
            index = int(key) + (len(value) if key.startswith("-") else 0)
            if not 0 <= index < len(value):
                return None
            value = value[index]
        else:
            return None
    if pa.types.is_timestamp(value.type):
        return _UNREADABLE
    return value.as_py()


def records_table(records: list[tuple[bytes, dict]]) -> tuple[pa.Table, list[RecordReject]]:
    """Records (each an interchange JSON object, with its raw text) as one table, types inferred as
    pyarrow's reader infers them; a record whose fields cannot be read with the records before it (a
    field that was a number is a string) is a reject with pyarrow's reason. There is no contract here:
    the first records decide a field's type."""
    lines = []
    rejects = []
    for raw, value in records:
        try:
            lines.append((raw, orjson.dumps(value)))
        except orjson.JSONEncodeError as error:
            rejects.append(RecordReject(raw, f"cannot be read: {error}"))
    if not lines:
        return pa.table({}), rejects
    try:
        return parse_ndjson(b"\n".join(line for _, line in lines)), rejects
    except (pa.ArrowException, ValueError):
        pass
    tables: list[pa.Table] = []
    schema: pa.Schema | None = None
    for raw, line in lines:
        try:
            table = parse_ndjson(line)
            schema = (
                table.schema
                if schema is None
                else pa.unify_schemas([schema, table.schema], promote_options="permissive")
            )
        except (pa.ArrowException, ValueError) as error:
            rejects.append(RecordReject(raw, f"a field's type differs from the records before it: {error}"))
            continue
        tables.append(table)
    return pa.concat_tables(tables, promote_options="permissive"), rejects


def cursor_max(table: pa.Table, field: str) -> str | None:
    """The largest value of ``field`` in the page, as text to send back (a timestamp as ISO 8601 UTC)."""
    if field not in table.column_names or table.num_rows == 0:
        return None
    column = table.column(field)
    if pa.types.is_null(column.type):
        return None
    value = pc.max(column).as_py()
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


# ---------------------------------------------------------------------------------------- pagination


def next_request(
    spec: RestApiSpec,
    request: PageRequest,
    *,
    values: Mapping[str, Any],
    headers: Mapping[str, str],
    links: Mapping[str, Any],
    count: int,
) -> PageRequest | None:
    """The request of the page after the one ``request`` fetched (``count`` records, rejects included;
    ``values``, the paginator's JSON path in the body and its value), or None when that was the last page."""
    paginator = spec.paginator
    if isinstance(paginator, CursorPaginator):
        if paginator.cursor_path is not None:
            cursor = values.get(paginator.cursor_path)
        else:
            cursor = headers.get(paginator.cursor_header or "")
        if cursor is None or cursor == "" or isinstance(cursor, (bool, dict, list)):
            return None
        return request.with_param(paginator.cursor_param, str(cursor))
    if isinstance(paginator, NextUrlPaginator):
        url = values.get(paginator.next_url_path)
        if not isinstance(url, str) or not url:
            return None
        return PageRequest(urljoin(_full_url(request), url))
    if isinstance(paginator, LinkHeaderPaginator):
        link = links.get(paginator.rel)
        return PageRequest(str(link["url"])) if link else None
    if isinstance(paginator, OffsetPaginator):
        offset = int(request.param(paginator.offset_param) or paginator.start) + paginator.limit
        total = values.get(paginator.total_path) if paginator.total_path else None
        if count < paginator.limit or (isinstance(total, int) and offset >= total):
            return None
        return request.with_param(paginator.offset_param, str(offset))
    if isinstance(paginator, PageNumberPaginator):
        page = int(request.param(paginator.page_param) or paginator.start)
        total = values.get(paginator.total_pages_path) if paginator.total_pages_path else None
        if count == 0 or (isinstance(total, int) and page - paginator.start + 1 >= total):
            return None
        return request.with_param(paginator.page_param, str(page + 1))
    return None  # single_page


def first_request(spec: RestApiSpec, *, since: str | None = None, until: str | None = None) -> PageRequest:
    """The first page's request: the static params, the incremental window, the paginator's start."""
    params = {name: str(value) for name, value in spec.params.items()}  # text already: the spec's validator
    if spec.incremental is not None:
        since = since if since is not None else spec.incremental.initial_value
        if since is not None:
            params[spec.incremental.param] = since
        if until is not None:
            if spec.incremental.end_param is None:
                raise RestApiConfigError(
                    "an upper bound needs incremental.end_param, the query parameter that sends it"
                )
            params[spec.incremental.end_param] = until
    paginator = spec.paginator
    if isinstance(paginator, OffsetPaginator):
        params[paginator.offset_param] = str(paginator.start)
        params[paginator.limit_param] = str(paginator.limit)
    elif isinstance(paginator, PageNumberPaginator):
        params[paginator.page_param] = str(paginator.start)
        if paginator.page_size_param and paginator.page_size:
            params[paginator.page_size_param] = str(paginator.page_size)
    elif isinstance(paginator, CursorPaginator) and paginator.limit_param and paginator.limit:
        params[paginator.limit_param] = str(paginator.limit)
    return PageRequest(spec.url, tuple(params.items()))


def _full_url(request: PageRequest) -> str:
    return str(URL(request.url, encoded=True).extend_query(request.params)) if request.params else request.url


# -------------------------------------------------------------------------------------------- auth


def _secret(env: Mapping[str, str], name: str, field: str) -> str:
    value = env.get(name)
    if not value:
        raise RestApiConfigError(f"environment variable {name} (auth.{field}) is not set: it holds the API's secret")
    return value


class Credentials:
    """What a request carries to authenticate (headers and query parameters), and what to check
    when the API refuses it."""

    def __init__(self, headers: dict[str, str] | None = None, query: dict[str, str] | None = None, check: str = ""):
        self.headers = headers or {}
        self.query = query or {}
        self.check = check or "the credentials"

    async def apply(self, session: aiohttp.ClientSession) -> tuple[dict[str, str], dict[str, str]]:
        return self.headers, self.query

    async def refresh(self) -> bool:
        """Forget a refused credential so the next ``apply`` gets a new one; False: nothing to refresh."""
        return False


class OAuth2ClientCredentials(Credentials):
    """A token from the token endpoint (RFC 6749 §4.4), cached and fetched again ``refresh_margin_seconds``
    before its ``expires_in`` runs out (at half its life, if that comes later), or once when the API
    answers 401."""

    def __init__(self, auth: OAuth2ClientCredentialsAuth, secret: str, http: HttpPolicy, stats: PullStats):
        super().__init__(check=f"client_id and environment variable {auth.client_secret_env} (auth.client_secret_env)")
        self.auth, self.secret, self.http, self.stats = auth, secret, http, stats
        self.token: str | None = None
        self.refresh_at = float("inf")
        self.tokens_fetched = 0
        self._lock = asyncio.Lock()

    async def apply(self, session: aiohttp.ClientSession) -> tuple[dict[str, str], dict[str, str]]:
        async with self._lock:
            if self.token is None or time.monotonic() >= self.refresh_at:
                await self.http.call(
                    lambda: self._fetch(session), self.stats, service=f"token endpoint {self.auth.token_url}"
                )
            return {"Authorization": f"Bearer {self.token}"}, {}

    async def refresh(self) -> bool:
        async with self._lock:
            self.token = None
        return True

    async def _fetch(self, session: aiohttp.ClientSession) -> None:
        form = {"grant_type": "client_credentials"}
        if self.auth.scopes:
            form["scope"] = " ".join(self.auth.scopes)
        if self.auth.audience:
            form["audience"] = self.auth.audience
        headers = {"Accept": "application/json"}
        if self.auth.client_auth == "basic":  # RFC 6749 §2.3.1: each form-encoded, then Basic
            headers["Authorization"] = basic_authorization(quote_plus(self.auth.client_id), quote_plus(self.secret))
        else:
            form |= {"client_id": self.auth.client_id, "client_secret": self.secret}
        requested = time.monotonic()
        async with session.post(self.auth.token_url, data=form, headers=headers) as response:
            if response.status == 429 or response.status >= 500:
                raise TransientError(f"HTTP {response.status}", parse_retry_after(response.headers.get("Retry-After")))
            body = await response.read()
            if response.status != 200:
                raise SourceApiAuthError(
                    f"token endpoint {self.auth.token_url} refused the client credentials (HTTP {response.status}: "
                    f"{body[:300].decode(errors='replace')}); check {self.check}. Not retrying."
                )
        try:
            answer = orjson.loads(body)
            token, expires_in = answer["access_token"], answer.get("expires_in")
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise SourceApiError(f"token endpoint {self.auth.token_url} answered no access_token: {error!r}") from None
        self.token = str(token)
        if expires_in is None:  # no expiry said: kept until the API refuses it
            self.refresh_at = float("inf")
        else:  # the margin before expiry, but never less than half the token's life (a short-lived token)
            life = float(expires_in)
            self.refresh_at = requested + max(life - self.auth.refresh_margin_seconds, life / 2)
        self.tokens_fetched += 1


def credentials(spec: RestApiSpec, env: Mapping[str, str], http: HttpPolicy, stats: PullStats) -> Credentials:
    """The credentials a declaration names, read from ``env`` (``RestApiConfigError`` when one is not set)."""
    auth = spec.auth
    if isinstance(auth, BearerAuth):
        token = _secret(env, auth.token_env, "token_env")
        return Credentials({"Authorization": f"Bearer {token}"}, check=_env_check(auth.token_env, "token_env"))
    if isinstance(auth, ApiKeyAuth):
        key = _secret(env, auth.value_env, "value_env")
        where = {"headers": {auth.name: key}} if auth.location == "header" else {"query": {auth.name: key}}
        return Credentials(**where, check=_env_check(auth.value_env, "value_env"))
    if isinstance(auth, BasicAuth):
        password = _secret(env, auth.password_env, "password_env")
        return Credentials(
            {"Authorization": basic_authorization(auth.username, password)},
            check="username and " + _env_check(auth.password_env, "password_env"),
        )
    if isinstance(auth, OAuth2ClientCredentialsAuth):
        return OAuth2ClientCredentials(auth, _secret(env, auth.client_secret_env, "client_secret_env"), http, stats)
    return Credentials()


def basic_authorization(user: str, password: str) -> str:
    """An ``Authorization`` header's value for HTTP Basic (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _env_check(name: str, field: str) -> str:
    return f"environment variable {name} (auth.{field})"


# ------------------------------------------------------------------------------------------ the client


@dataclass(frozen=True)
class _Fetched:
    records: pa.Table
    rejects: list[RecordReject]
    request: PageRequest
    next_request: PageRequest | None


class RestApiClient:
    """Reads a declared REST API page by page (``pages``); the secrets come from ``env`` (default: the
    process environment) and are read at once, so a missing one fails before any request."""

    def __init__(
        self,
        spec: RestApiSpec,
        *,
        env: Mapping[str, str] | None = None,
        http: HttpPolicy | None = None,
        stats: PullStats | None = None,
        table_of: TableOf = records_table,
    ):
        self.spec = spec
        # How an NDJSON page that failed the fast path is read record by record: by default with the
        # types the first records show; a source with a contract reads each record into it instead,
        # so a misfit is a reject that names the field (``validate.records_table``).
        self.table_of = table_of
        self.http = http or HttpPolicy()
        self.stats = stats if stats is not None else PullStats()
        self.credentials = credentials(spec, os.environ if env is None else env, self.http, self.stats)
        self.service = f"source API at {spec.base_url}"

    async def pages(
        self, *, since: str | None = None, until: str | None = None, resume: PageRequest | None = None
    ) -> AsyncGenerator[RestPage, None]:
        """Every page, from ``resume`` (a page's ``next_request``, checkpointed) or from the first
        request (the incremental window from ``since``, default the declared initial value, to
        ``until``), while the next page is already being fetched."""
        first = resume or first_request(self.spec, since=since, until=until)
        accept = f"{NDJSON}, application/json;q=0.5" if self.spec.records.format == "ndjson" else "application/json"
        cursor_field = self.spec.incremental.cursor_field if self.spec.incremental else None
        async with self.http.session({**self.spec.headers, "Accept": accept}) as session:

            def fetch(request: PageRequest):
                return self.http.call(lambda: self._get_page(session, request), self.stats, service=self.service)

            def following(page: _Fetched):
                return fetch(page.next_request) if page.next_request else None

            number = 1
            async with aclosing(prefetched(fetch(first), following)) as results:
                async for page in results:
                    self.stats.pages += 1
                    self.stats.records += page.records.num_rows
                    self.stats.rejects += len(page.rejects)
                    top = cursor_max(page.records, cursor_field) if cursor_field else None
                    yield RestPage(number, page.records, tuple(page.rejects), page.request, page.next_request, top)
                    number += 1

    async def _get_page(self, session: aiohttp.ClientSession, request: PageRequest) -> _Fetched:
        for refreshed in (False, True):
            headers, query = await self.credentials.apply(session)
            url = URL(request.url, encoded=True)
            params = list(request.params) + list(query.items())
            async with session.get(url, params=params or None, headers=headers) as response:
                if response.status == 401 and not refreshed and await self.credentials.refresh():
                    continue  # a token that expired early: once more with a new one
                await check_status(
                    response, service=self.service, refused="the credentials", check=self.credentials.check
                )
                body = await response.read()  # raises ClientPayloadError when the body is cut short
                return await self._read(request, response.headers, response.links, body)
        raise AssertionError("unreachable")

    async def _read(
        self, request: PageRequest, headers: CIMultiDictProxy[str], links: Mapping[str, Any], body: bytes
    ) -> _Fetched:
        self.stats.bytes += len(body)
        found: dict[str, Any] = {}
        try:
            if self.spec.records.format == "ndjson":
                records, rejects = await asyncio.to_thread(read_ndjson, body, self.table_of)
            else:
                records, rejects, found = await asyncio.to_thread(
                    read_json_records, body, self.spec.records.path, self.spec.paginator_body_path
                )
        except (pa.ArrowException, ValueError, RecursionError) as error:
            raise SourceApiError(
                f"{self.service} sent a page that is not valid JSON ({request.url}): {error}"
            ) from error
        count = records.num_rows + len(rejects)
        check_record_count(headers, count)
        following = next_request(self.spec, request, values=found, headers=headers, links=links, count=count)
        if following == request:
            raise SourceApiError(
                f"{self.service} sent the same next page as the one it answered ({request.url}): stopping, not looping"
            )
        return _Fetched(records, rejects, request, following)
