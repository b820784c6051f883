"""The mock source API over HTTP, under gunicorn: auth, errors, rate limits, faults, stable paging."""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.request

import pytest

from ingestion_patterns.pull.client import PullStats, SourceApiError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def get(url: str, token: str | None = None, accept: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def post(url: str, body: bytes, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_auth_health_and_openapi(shared_mock_api):
    api = shared_mock_api
    status, headers, body = get(f"{api.url}/v1/records")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(body) == {"error": "missing or invalid bearer token"}
    assert get(f"{api.url}/v1/records", token="wrong")[0] == 401
    assert post(f"{api.url}/admin/mutate", b'{"create": 1}', token="wrong")[0] == 401
    # /v1/items takes an API key (X-API-Key), not the bearer token (its own tests: test_mock_api_items.py).
    status, headers, body = get(f"{api.url}/v1/items", token=api.token)
    assert status == 401 and headers["WWW-Authenticate"].startswith("ApiKey")
    assert json.loads(body) == {"error": "missing API key: send it in the X-API-Key header"}
    status, _, body = get(f"{api.url}/health")
    assert status == 200 and json.loads(body)["records"] == 50
    status, _, body = get(f"{api.url}/openapi.json")
    assert status == 200 and {"/v1/records", "/v1/items"} <= set(json.loads(body)["paths"])


@pytest.mark.parametrize(
    "query, reason",
    [
        ("limit=0", "limit must be an integer between 1 and 50000"),
        ("limit=abc", "limit must be an integer"),
        ("limit=50001", "limit must be an integer between 1 and 50000"),
        ("cursor=zzz", "invalid cursor"),
        ("updated_since=yesterday", "updated_since must be an ISO 8601 timestamp"),
    ],
)
def test_bad_parameters_get_a_400_with_the_reason(shared_mock_api, query, reason):
    api = shared_mock_api
    status, _, body = get(f"{api.url}/v1/records?{query}", token=api.token)
    assert status == 400 and reason in json.loads(body)["error"]


def test_bad_admin_bodies_get_a_400_with_the_reason(shared_mock_api):
    api = shared_mock_api
    for body, reason in (
        (b'{"create": -1}', "create must be an integer between 0"),
        (b'{"update": "x"}', "update must be an integer"),
        (b'{"create": 1, "delete": 2}', "unknown fields: delete"),
        (b"not json", "body must be a JSON object"),
        (b"[1]", "body must be a JSON object"),
    ):
        status, answer = post(f"{api.url}/admin/mutate", body, api.token)
        assert status == 400 and reason in json.loads(answer)["error"], body
    status, answer = post(f"{api.url}/admin/schema", b'{"mode": "chaos"}', api.token)
    assert status == 400 and "mode must be one of normal, renamed, retyped" in json.loads(answer)["error"]


def test_rate_limit_answers_429_with_retry_after(start_mock_api):
    api = start_mock_api(records=10, rate_limit=1, rate_burst=1)
    answers = [get(f"{api.url}/v1/records?limit=1", token=api.token) for _ in range(5)]
    limited = [headers for status, headers, _ in answers if status == 429]
    assert limited, [status for status, _, _ in answers]
    assert all(int(headers["Retry-After"]) >= 1 for headers in limited)


def test_json_lines_and_the_envelope_carry_the_same_records(shared_mock_api):
    api = shared_mock_api
    _, headers, lines = get(f"{api.url}/v1/records?limit=20", token=api.token, accept="application/x-ndjson")
    _, _, envelope = get(f"{api.url}/v1/records?limit=20", token=api.token)
    envelope = json.loads(envelope)
    assert [json.loads(line) for line in lines.splitlines()] == envelope["data"]
    assert headers["X-Next-Cursor"] == envelope["next_cursor"] and envelope["has_more"] is True
    assert headers["X-Record-Count"] == "20"


def test_paging_stays_complete_while_records_change_across_workers(start_mock_api):
    api = start_mock_api(records=3000, workers=2)
    latest: dict[int, dict] = {}
    url, pages = f"{api.url}/v1/records?limit=300", 0
    while url:
        _, _, body = get(url, token=api.token)
        page = json.loads(body)
        for record in page["data"]:
            assert record["id"] not in latest or record["updated_at"] > latest[record["id"]]["updated_at"]
            latest[record["id"]] = record
        pages += 1
        if pages == 3:  # the source changes under the reader's feet, through whichever worker
            api.mutate(create=50, update=200)
        url = f"{api.url}/v1/records?limit=300&cursor={page['next_cursor']}" if page["next_cursor"] else None
    assert {r["id"]: r for r in api.export()} == latest


def test_every_worker_serves_the_same_data(start_mock_api):
    api = start_mock_api(records=2000, workers=2)
    api.mutate(update=100)
    bodies = {get(f"{api.url}/v1/records?limit=2000", token=api.token)[2] for _ in range(12)}
    assert len(bodies) == 1


def test_a_restart_on_the_same_state_serves_the_same_source(start_mock_api, tmp_path):
    first = start_mock_api(records=500)
    first.mutate(create=5, update=20)
    before = first.export()
    first.process.stop()
    assert start_mock_api(records=500).export() == before


def test_truncated_bodies_are_detected_and_retried(start_mock_api):
    api = start_mock_api(records=100, fault_truncate_ratio=1.0, api_key="test-api-key")
    for path, headers in (
        ("/v1/records", {"Authorization": f"Bearer {api.token}"}),
        ("/v1/items", {"X-API-Key": "test-api-key"}),
    ):
        request = urllib.request.Request(f"{api.url}{path}?limit=100", headers=headers)
        with pytest.raises(http.client.IncompleteRead), urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    async def drain(stats: PullStats) -> None:
        async for _ in api.client(max_retries=2).rest_client(stats).pages():
            pass

    stats = PullStats()
    with pytest.raises(SourceApiError, match="still failing after 2 retries"):
        asyncio.run(drain(stats))
    assert stats.retries == 2 and set(stats.retry_reasons) == {"ClientPayloadError"}
