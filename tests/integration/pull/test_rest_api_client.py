"""The declarative REST client against a real HTTP server in its own process (``rest_api_server.py``):
every paginator reads the data set exactly (no record twice, none missing), every auth scheme is
accepted and a wrong secret fails at once naming its variable, OAuth2 tokens are refreshed during a
run, and 429 (with Retry-After) and 5xx are retried."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from rest_api_server import API_KEY, BASIC_PASSWORD, BASIC_USER, BEARER_TOKEN, CLIENT_ID, CLIENT_SECRET, dataset

from ingestion_devtools.processes import ManagedProcess, free_port
from ingestion_patterns.pull.client import HttpPolicy, PullStats, SourceApiAuthError, SourceApiError
from ingestion_patterns.pull.rest_api.client import PageRequest, RestApiClient, RestApiConfigError, RestPage
from ingestion_patterns.pull.rest_api.spec import RestApiSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RECORDS = 1000
ENV = {
    "REST_BEARER_TOKEN": BEARER_TOKEN,
    "REST_API_KEY": API_KEY,
    "REST_BASIC_PASSWORD": BASIC_PASSWORD,
    "REST_CLIENT_SECRET": CLIENT_SECRET,
}
FAST = HttpPolicy(max_retries=4, backoff_initial_seconds=0.05, backoff_max_seconds=0.5)


class Server:
    def __init__(self, url: str, process: ManagedProcess):
        self.url, self.process = url, process

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    port = free_port()
    script = Path(__file__).with_name("rest_api_server.py")
    args = [sys.executable, str(script), "--port", str(port), "--records", str(RECORDS), "--token-ttl", "2"]
    log = tmp_path_factory.mktemp("rest-api") / "server.log"
    process = ManagedProcess(f"rest-api:{port}", args, log_path=log).start()
    try:
        process.wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        yield Server(f"http://127.0.0.1:{port}", process)
    finally:
        process.stop()


def spec_of(server: Server, **declaration: Any) -> RestApiSpec:
    return RestApiSpec.model_validate({"base_url": server.url, **declaration})


def read(
    spec: RestApiSpec, *, env: dict[str, str] = ENV, stats: PullStats | None = None, **options: Any
) -> list[RestPage]:
    async def collect() -> list[RestPage]:
        client = RestApiClient(spec, env=env, http=FAST, stats=stats)
        return [page async for page in client.pages(**options)]

    return asyncio.run(collect())


def ids(pages: list[RestPage]) -> list[int]:
    return [i for page in pages if page.records.num_rows for i in page.records.column("id").to_pylist()]


def assert_whole_data_set(pages: list[RestPage]) -> None:
    assert ids(pages) == list(range(1, RECORDS + 1))  # each once, in order: none twice, none missing
    assert not [reject for page in pages for reject in page.rejects]
    table = pa.concat_tables([page.records for page in pages if page.records.num_rows], promote_options="permissive")
    expected = dataset(RECORDS)
    assert table.column("name").to_pylist() == [r["name"] for r in expected]
    assert table.column("amount").to_pylist() == [r["amount"] for r in expected]
    assert table.column("owner").to_pylist() == [r["owner"] for r in expected]
    # The pages chain: each page's next request is the one that fetched the page after it.
    assert [p.next_request for p in pages[:-1]] == [p.request for p in pages[1:]]
    assert pages[-1].next_request is None


PAGINATORS = {
    "cursor-in-body": (
        "/cursor/body",
        {"type": "cursor", "cursor_path": "meta.next_cursor", "limit_param": "limit", "limit": 70},
        {"path": "items"},
        {},
        15,
    ),
    "cursor-in-header-ndjson": (
        "/cursor/header",
        {"type": "cursor", "cursor_header": "X-Next-Cursor", "limit_param": "limit", "limit": 70},
        {"format": "ndjson"},
        {},
        15,
    ),
    "next-url": (
        "/next-url",
        {"type": "next_url", "next_url_path": "links.next"},
        {"path": "data.results"},
        {"limit": "70"},
        15,
    ),
    "link-header": ("/link", {"type": "link_header"}, {"path": "items"}, {"per_page": "70"}, 15),
    "offset-with-total": (
        "/offset",
        {"type": "offset", "limit": 100, "total_path": "total"},
        {"path": "items"},
        {},
        10,
    ),
    # 1,000 records in pages of 100: the 11th page is empty, and short, which ends the pages.
    "offset-short-page": ("/offset", {"type": "offset", "limit": 100}, {"path": "items"}, {}, 11),
    "page-number-total-pages": (
        "/page",
        {
            "type": "page_number",
            "start": 0,
            "page_size_param": "per_page",
            "page_size": 70,
            "total_pages_path": "total_pages",
        },
        {"path": "results"},
        {},
        15,
    ),
    "page-number-empty-page": (
        "/page",
        {"type": "page_number", "start": 0, "page_size_param": "per_page", "page_size": 70},
        {"path": "results"},
        {},
        16,
    ),
    "single-page": ("/single", {"type": "single_page"}, {"path": ""}, {}, 1),
}


@pytest.mark.parametrize("shape", PAGINATORS)
def test_each_paginator_reads_the_data_set_exactly(server, shape):
    path, paginator, records, params, page_count = PAGINATORS[shape]
    stats = PullStats()
    pages = read(spec_of(server, path=path, paginator=paginator, records=records, params=params), stats=stats)
    assert_whole_data_set(pages)
    assert len(pages) == stats.pages == page_count
    assert stats.records == RECORDS and stats.retries == 0


def test_incremental_reads_from_the_initial_value_then_from_the_largest_cursor(server):
    spec = spec_of(
        server,
        path="/cursor/body",
        paginator={"type": "cursor", "cursor_path": "meta.next_cursor", "limit_param": "limit", "limit": 70},
        records={"path": "items"},
        incremental={"cursor_field": "updated_at", "param": "updated_since", "initial_value": "2024-01-01T10:00:00Z"},
    )
    pages = read(spec)
    assert ids(pages) == list(range(600, RECORDS + 1))  # minute 600 on: updated_since is inclusive
    newest = max(page.cursor_max for page in pages if page.cursor_max)
    assert newest == "2024-01-01T16:40:00Z"  # record 1,000, as an ISO timestamp the API reads back
    assert ids(read(spec, since=newest)) == [RECORDS]


def test_a_run_resumes_from_a_checkpointed_next_request(server):
    spec = spec_of(
        server,
        path="/next-url",
        params={"limit": "70"},
        paginator={"type": "next_url", "next_url_path": "links.next"},
        records={"path": "data.results"},
    )
    first = read(spec)[:3]
    checkpoint = first[-1].next_request
    assert checkpoint is not None
    rest = read(spec, resume=PageRequest.from_json(checkpoint.to_json()))
    assert_whole_data_set(first + rest)


OFFSET_PAGES = {"paginator": {"type": "offset", "limit": 250, "total_path": "total"}, "records": {"path": "items"}}
AUTH = {
    "bearer": ("bearer", {"type": "bearer", "token_env": "REST_BEARER_TOKEN"}, "REST_BEARER_TOKEN"),
    "api-key-header": (
        "api-key-header",
        {"type": "api_key", "name": "X-API-Key", "location": "header", "value_env": "REST_API_KEY"},
        "REST_API_KEY",
    ),
    "api-key-query": (
        "api-key-query",
        {"type": "api_key", "name": "api_key", "location": "query", "value_env": "REST_API_KEY"},
        "REST_API_KEY",
    ),
    "basic": (
        "basic",
        {"type": "basic", "username": BASIC_USER, "password_env": "REST_BASIC_PASSWORD"},
        "REST_BASIC_PASSWORD",
    ),
    "oauth2-basic-client-auth": (
        "oauth2",
        {"type": "oauth2_client_credentials", "client_id": CLIENT_ID, "client_secret_env": "REST_CLIENT_SECRET"},
        "REST_CLIENT_SECRET",
    ),
    "oauth2-client-secret-in-body": (
        "oauth2",
        {
            "type": "oauth2_client_credentials",
            "client_id": CLIENT_ID,
            "client_secret_env": "REST_CLIENT_SECRET",
            "client_auth": "body",
            "scopes": ["records:read"],
        },
        "REST_CLIENT_SECRET",
    ),
}


def auth_spec(server: Server, name: str, auth: dict[str, Any] | None = None, **fields: Any) -> RestApiSpec:
    """The offset endpoint behind auth scheme ``name`` (its declaration updated by ``auth``)."""
    scheme, declared, _ = AUTH[name]
    if declared["type"] == "oauth2_client_credentials":
        declared = {**declared, "token_url": f"{server.url}/oauth/token"}
    return spec_of(server, path=f"/auth/{scheme}", auth={**declared, **(auth or {})}, **{**OFFSET_PAGES, **fields})


SLOW_PAGES = {"params": {"delay": "0.3"}, "paginator": {"type": "offset", "limit": 100, "total_path": "total"}}


@pytest.mark.parametrize("name", AUTH)
def test_each_auth_scheme_is_accepted(server, name):
    assert_whole_data_set(read(auth_spec(server, name)))


@pytest.mark.parametrize("name", AUTH)
def test_a_wrong_secret_fails_at_once_naming_its_variable(server, name):
    variable = AUTH[name][2]
    stats = PullStats()
    started = time.monotonic()
    with pytest.raises(SourceApiAuthError, match=rf"HTTP 401.*environment variable {variable}.*Not retrying"):
        read(auth_spec(server, name), env={**ENV, variable: "wrong"}, stats=stats)
    assert stats.retries == 0 and stats.pages == 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", AUTH)
def test_an_unset_secret_fails_before_any_request(server, name):
    variable = AUTH[name][2]
    with pytest.raises(RestApiConfigError, match=rf"environment variable {variable} \(auth\.\w+\) is not set"):
        RestApiClient(auth_spec(server, name), env={k: v for k, v in ENV.items() if k != variable})


@pytest.mark.parametrize("margin", [0.5, 60])
def test_oauth2_refreshes_a_token_before_it_expires_during_a_run(server, margin):
    # Tokens live 2 s; ten pages of 0.3 s each take 3 s: the client fetches a new one before expiry
    # (with a margin longer than the token's life, at half its life, not for every request).
    spec = auth_spec(server, "oauth2-basic-client-auth", {"refresh_margin_seconds": margin}, **SLOW_PAGES)
    before = server.stats()
    stats = PullStats()
    pages = read(spec, stats=stats)
    assert_whole_data_set(pages)
    after = server.stats()
    assert 1 < after["tokens_issued"] - before["tokens_issued"] < len(pages)
    assert after["requests"]["/auth/oauth2"] - before["requests"].get("/auth/oauth2", 0) == len(pages)  # none refused
    assert stats.retries == 0


def test_oauth2_refreshes_once_on_a_401_mid_run(server):
    # The early-expiry client is told its tokens last an hour; they last 2 s: a 401 mid-run, a new
    # token, and the same request again.
    spec = auth_spec(server, "oauth2-basic-client-auth", {"client_id": "early-expiry"}, **SLOW_PAGES)
    before = server.stats()
    pages = read(spec)
    assert_whole_data_set(pages)
    after = server.stats()
    assert after["tokens_issued"] - before["tokens_issued"] > 1
    assert after["requests"]["/auth/oauth2"] - before["requests"].get("/auth/oauth2", 0) > len(
        pages
    )  # the refused ones


def test_429_with_retry_after_and_5xx_are_retried(server):
    stats = PullStats()
    started = time.monotonic()
    pages = read(
        spec_of(
            server,
            path="/flaky",
            paginator={"type": "offset", "limit": 500, "total_path": "total"},
            records={"path": "items"},
        ),
        stats=stats,
    )
    assert_whole_data_set(pages)
    assert stats.retries == 4
    assert stats.retry_reasons == {"HTTP 429": 2, "HTTP 503": 2}
    assert time.monotonic() - started >= 2  # Retry-After: 1, honoured for each page


def test_records_that_are_not_interchange_json_objects_are_rejects(server):
    [page] = read(spec_of(server, path="/bad", records={"path": "items"}))
    assert page.records.column("id").to_pylist() == [1, 4]
    reasons = sorted(reject.reason for reject in page.rejects)
    assert len(reasons) == 4
    assert sum("not an object" in r for r in reasons) == 2
    assert any("malformed JSON" in r for r in reasons)  # NaN
    assert any("differs from the records before it" in r for r in reasons)  # amount an object, not a number


def test_a_cursor_that_does_not_move_stops_the_run(server):
    spec = spec_of(server, path="/loop", paginator={"type": "cursor", "cursor_path": "next"}, records={"path": "items"})
    with pytest.raises(SourceApiError, match="same next page"):
        read(spec)
