"""The mock API's second resource, ``GET /v1/items``, over HTTP under gunicorn: the records of
``/v1/records`` in another API's shape (an ``{"items": [...]}`` envelope, ``Link: <...>; rel="next"``
paging, an API key in ``X-API-Key``, ``updated_since``), and the declarative REST client reading it
as a ``RestApiSpec`` declares it."""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

import pytest
from pull_helpers import MockApi

from ingestion_patterns.pull.client import HttpPolicy, PullStats
from ingestion_patterns.pull.rest_api.client import RestApiClient, RestPage
from ingestion_patterns.pull.rest_api.spec import RestApiSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

API_KEY = "items-test-key"
KEY_ENV = "MOCK_ITEMS_API_KEY"  # the variable the declaration names; the key is handed to the client as env
NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="next"')


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def next_link(headers: dict[str, str]) -> str | None:
    match = NEXT.search(headers.get("Link", ""))
    return match.group(1) if match else None


def follow_items(url: str) -> list[tuple[dict[str, str], list[dict]]]:
    """Every page from ``url`` on, following ``rel="next"``: (its headers, its items)."""
    pages = []
    following: str | None = url
    while following:
        status, headers, body = get(following, {"X-API-Key": API_KEY})
        assert status == 200, (following, status, body[:300])
        assert headers["Content-Type"].startswith("application/json")
        document = json.loads(body)
        assert list(document) == ["items"], list(document)
        assert headers["X-Record-Count"] == str(len(document["items"]))
        pages.append((headers, document["items"]))
        following = next_link(headers)
        assert len(pages) < 10_000, "the Link header never ends"
    return pages


def follow_records(api: MockApi, query: str) -> list[dict]:
    """Every record of ``/v1/records`` through its own cursor paging, for comparison."""
    records, cursor = [], ""
    while True:
        _, _, body = get(f"{api.url}/v1/records?{query}&cursor={cursor}", {"Authorization": f"Bearer {api.token}"})
        page = json.loads(body)
        records += page["data"]
        if not page["has_more"]:
            return records
        cursor = page["next_cursor"]


def items_of(pages) -> list[dict]:
    return [item for _, items in pages for item in items]


def key_order(records: list[dict]) -> list[tuple[str, int]]:
    return [(r["updated_at"], r["id"]) for r in records]


def test_items_are_the_records_in_an_envelope_paged_by_link_headers(start_mock_api):
    api = start_mock_api(records=1234, api_key=API_KEY)
    api.mutate(create=10, update=50)  # newer versions and new ids, after the base records
    source = {r["id"]: r for r in api.export()}
    assert len(source) == 1244

    pages = follow_items(f"{api.url}/v1/items?limit=100")
    items = items_of(pages)
    # Every record exactly once, as exported, in (updated_at, id) order: no gap, no duplicate.
    assert len(pages) == math.ceil(1244 / 100)
    assert [len(page_items) for _, page_items in pages] == [100] * 12 + [44]
    assert len({r["id"] for r in items}) == len(items) == 1244
    assert {r["id"]: r for r in items} == source
    assert key_order(items) == sorted(key_order(items)) and len(set(key_order(items))) == len(items)
    # The next URL is absolute, keeps the page size, carries an opaque cursor and no secret; the last page has none.
    for headers, _ in pages[:-1]:
        parts = urllib.parse.urlsplit(next_link(headers))
        assert f"{parts.scheme}://{parts.netloc}" == api.url and parts.path == "/v1/items"
        query = urllib.parse.parse_qs(parts.query)
        assert query["limit"] == ["100"] and query["cursor"][0] and API_KEY not in headers["Link"]
    assert "Link" not in pages[-1][0]
    # The same records, fields and order as /v1/records.
    assert items == follow_records(api, "limit=300")

    # Without a limit: the default page size, kept in the next URL.
    status, headers, body = get(f"{api.url}/v1/items", {"X-API-Key": API_KEY})
    assert status == 200 and len(json.loads(body)["items"]) == 100
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(next_link(headers)).query)["limit"] == ["100"]
    # One page holds everything: no Link at all.
    [(headers, everything)] = follow_items(f"{api.url}/v1/items?limit=5000")
    assert everything == items and "Link" not in headers


def test_a_missing_or_wrong_api_key_gets_a_401_with_the_reason(start_mock_api):
    api = start_mock_api(records=300, api_key=API_KEY)
    url = f"{api.url}/v1/items?limit=10"
    missing = "missing API key: send it in the X-API-Key header"
    for headers, reason in (
        ({}, missing),
        ({"X-API-Key": ""}, missing),
        ({"X-API-Key": "wrong"}, "invalid API key in the X-API-Key header"),
        ({"X-API-Key": API_KEY + "x"}, "invalid API key in the X-API-Key header"),
        ({"Authorization": f"Bearer {api.token}"}, missing),  # the other resource's credential
        ({"X-Api-Key": api.token}, "invalid API key in the X-API-Key header"),  # header names are case-insensitive
    ):
        status, answer_headers, body = get(url, headers)
        assert (status, json.loads(body)) == (401, {"error": reason}), headers
        assert answer_headers["WWW-Authenticate"] == 'ApiKey realm="mock-api", header="X-API-Key"'
    # The API key opens /v1/items only: /v1/records and /admin keep the bearer token.
    assert get(f"{api.url}/v1/records?limit=10", {"X-API-Key": API_KEY})[0] == 401
    assert get(f"{api.url}/admin/export", {"X-API-Key": API_KEY})[0] == 401
    # A next URL is no credential: followed without the key, it is refused too.
    status, headers, _ = get(url, {"x-api-key": API_KEY})
    assert status == 200
    assert get(next_link(headers))[0] == 401
    # With the key, bad parameters get a 400 with the reason, as on /v1/records.
    for query, reason in (
        ("limit=0", "limit must be an integer between 1 and 50000"),
        ("cursor=zzz", "invalid cursor"),
        ("updated_since=yesterday", "updated_since must be an ISO 8601 timestamp"),
    ):
        status, _, body = get(f"{api.url}/v1/items?{query}", {"X-API-Key": API_KEY})
        assert status == 400 and reason in json.loads(body)["error"], query


def test_updated_since_resumes_inclusively_and_reads_what_changed_since(start_mock_api):
    api = start_mock_api(records=500, api_key=API_KEY)
    first_run = items_of(follow_items(f"{api.url}/v1/items?limit=64"))
    assert len(first_run) == 500
    # From a record's updated_at on (inclusive), through several pages of the window.
    since = first_run[200]["updated_at"]
    resumed = items_of(follow_items(f"{api.url}/v1/items?limit=37&{urllib.parse.urlencode({'updated_since': since})}"))
    assert resumed == first_run[200:]
    # A window [updated_since, updated_before) keeps its upper bound across the Link pages.
    window = urllib.parse.urlencode({"updated_since": first_run[100]["updated_at"], "updated_before": since})
    assert items_of(follow_items(f"{api.url}/v1/items?limit=9&{window}")) == first_run[100:200]

    # The source changes; the next run asks from the largest updated_at it landed.
    change = api.mutate(create=5, update=20)
    last_seen = first_run[-1]["updated_at"]
    second_run = items_of(
        follow_items(f"{api.url}/v1/items?limit=8&{urllib.parse.urlencode({'updated_since': last_seen})}")
    )
    changed = set(change["updated_ids"]) | set(range(change["created_ids"][0], change["created_ids"][1] + 1))
    assert len(changed) == 25
    current = {r["id"]: r for r in api.export()}
    expected = sorted(
        (r for r in current.values() if r["updated_at"] >= last_seen), key=lambda r: (r["updated_at"], r["id"])
    )
    assert second_run == expected
    # What changed, plus the last record of the first run when it did not change (the bound is inclusive).
    assert {r["id"] for r in second_run} == changed | {first_run[-1]["id"]}


def items_spec(api: MockApi, *, limit: int) -> RestApiSpec:
    """/v1/items declared as the shipped example declares it: link_header paging, records at ``items``,
    the API key in ``X-API-Key`` from an environment variable, ``updated_since`` incremental."""
    return RestApiSpec.model_validate(
        {
            "base_url": api.url,
            "path": "/v1/items",
            "params": {"limit": str(limit)},
            "auth": {"type": "api_key", "name": "X-API-Key", "location": "header", "value_env": KEY_ENV},
            "paginator": {"type": "link_header"},
            "records": {"path": "items"},
            "incremental": {"cursor_field": "updated_at", "param": "updated_since", "end_param": "updated_before"},
        }
    )


async def _read(client: RestApiClient, **kwargs) -> list[RestPage]:
    return [page async for page in client.pages(**kwargs)]


def test_the_rest_api_client_reads_every_item_exactly_once(start_mock_api):
    """``RestApiClient`` reads every page of ``items_spec`` by its Link headers: every record once, a
    checkpointed next request resumes, and the next run reads from the largest updated_at landed."""
    api = start_mock_api(records=5000, api_key=API_KEY)
    api.mutate(create=7, update=30)
    spec = items_spec(api, limit=700)
    http = HttpPolicy(max_retries=4, backoff_initial_seconds=0.05, backoff_max_seconds=0.5)
    client = RestApiClient(spec, env={KEY_ENV: API_KEY}, http=http)
    source = {r["id"]: r for r in api.export()}

    pages = asyncio.run(_read(client))
    ids = [i for page in pages for i in page.records.column("id").to_pylist()]
    assert len(pages) == math.ceil(5007 / 700) and pages[-1].next_request is None
    assert all(not page.rejects for page in pages)
    assert len(ids) == len(set(ids)) == len(source) and set(ids) == set(source)
    read = {
        record["id"]: (record["version"], record["amount"], record["email"])
        for page in pages
        for record in page.records.select(["id", "version", "amount", "email"]).to_pylist()
    }
    assert read == {i: (r["version"], r["amount"], r["email"]) for i, r in source.items()}
    largest = max(r["updated_at"] for r in source.values())
    assert pages[-1].cursor_max is not None and _same_instant(pages[-1].cursor_max, largest)

    # A checkpointed next request resumes at the page after it: the rest, nothing twice.
    rest = asyncio.run(_read(client, resume=pages[2].next_request))
    assert [i for page in rest for i in page.records.column("id").to_pylist()] == ids[3 * 700 :]

    # A backfill window [since, until) through incremental.end_param: the records updated inside it.
    by_key = sorted(source.values(), key=lambda r: (r["updated_at"], r["id"]))
    window = asyncio.run(_read(client, since=by_key[1000]["updated_at"], until=by_key[2500]["updated_at"]))
    assert [i for page in window for i in page.records.column("id").to_pylist()] == [r["id"] for r in by_key[1000:2500]]

    # The next run, from the largest updated_at landed: what changed (and the record at that instant again).
    change = api.mutate(create=3, update=10)
    again = asyncio.run(_read(client, since=pages[-1].cursor_max))
    read_again = {i for page in again for i in page.records.column("id").to_pylist()}
    expected = {r["id"] for r in api.export() if r["updated_at"] >= largest}
    assert read_again == expected and set(change["updated_ids"]) <= read_again and len(expected) >= 13


def test_the_rest_api_client_reads_every_item_once_through_429s_5xx_and_cut_bodies(start_mock_api):
    """/v1/items fails as /v1/records does (the same rate limit and faults); the client retries each
    failure and still reads every record exactly once."""
    api = start_mock_api(
        records=3000,
        api_key=API_KEY,
        fault_5xx_ratio=0.2,
        fault_truncate_ratio=0.2,
        rate_limit=50,
        rate_burst=3,
        fault_seed=11,
    )
    spec = items_spec(api, limit=100)
    stats = PullStats()
    http = HttpPolicy(max_retries=10, backoff_initial_seconds=0.02, backoff_max_seconds=0.2)
    pages = asyncio.run(_read(RestApiClient(spec, env={KEY_ENV: API_KEY}, http=http, stats=stats)))
    ids = [i for page in pages for i in page.records.column("id").to_pylist()]
    assert sorted(ids) == list(range(1, 3001)) and len(pages) == 30
    reasons = set(stats.retry_reasons)
    assert stats.retries >= 3 and {"HTTP 503", "ClientPayloadError"} <= reasons, stats.retry_reasons


def _same_instant(sent_back: str, served: str) -> bool:
    """The client's cursor value (ISO 8601, maybe without trailing zeros) and the API's updated_at."""
    return datetime.fromisoformat(sent_back) == datetime.fromisoformat(served)
