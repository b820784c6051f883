"""The receiver's HTTP contract, against ``ingest webhook-receiver`` under gunicorn, on both inboxes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from webhook_http import get, metric_value, post_json, raw_exchange, request

from ingestion_devtools.webhook_simulator import send_webhooks

pytestmark = pytest.mark.integration

STANDARD_SECRET = "whsec_" + base64.b64encode(b"receiver-test-secret-32-bytes!!!").decode()
GITHUB_SECRET = "it's a secret to everybody"
MAX_BODY = 64 * 1024
ADMIN_TOKEN = "receiver-test-admin-token"
ENV = {
    "WEBHOOK_ADMIN_TOKEN": ADMIN_TOKEN,
    "WEBHOOK_SECRET_SIGNED": STANDARD_SECRET,
    "WEBHOOK_SECRET_GITHUB": GITHUB_SECRET,
    "WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
    "WEBHOOK_SIGNATURE_TOLERANCE_SECONDS": "300",
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def receiver(request, module_receivers, module_inbox_urls):
    return module_receivers(module_inbox_urls(request.param), env=ENV, ready_path="/ready")


def new_source() -> str:
    return f"src-{uuid.uuid4().hex[:12]}"


def new_id() -> str:
    return f"evt-{uuid.uuid4().hex}"


def admin_get(url: str):
    """A GET with the admin token (``?peek`` needs it)."""
    return request("GET", url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def pending_count(receiver, source: str) -> int:
    return get(f"{receiver.url}/webhook/{source}/pending").json["pending"]


def standard_signed(body: bytes, msg_id: str, *, at: float | None = None, secret: str = STANDARD_SECRET) -> dict:
    moment = datetime.fromtimestamp(int(time.time() if at is None else at), UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, moment, body.decode()),
    }


def github_signed(body: bytes, delivery: str, secret: str = GITHUB_SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Delivery": delivery, "X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={digest}"}


# -- accepted, duplicate, event ids -----------------------------------------------------------------


def test_accepted_payload_is_stored_with_its_raw_body_and_headers(receiver):
    source, event_id = new_source(), new_id()
    body = json.dumps({"id": event_id, "data": {"amount": 12.5, "note": "ünïcode"}}, ensure_ascii=False).encode()
    answer = post_json(f"{receiver.url}/webhook/{source}", body=body, headers={"User-Agent": "test-sender/1"})
    assert (answer.status, answer.json) == (202, {"status": "accepted", "id": event_id})

    pending = admin_get(f"{receiver.url}/webhook/{source}/pending?peek=5").json
    assert pending["source_id"] == source and pending["pending"] == 1
    assert 0 <= pending["oldest_age_seconds"] < 60
    [stored] = pending["payloads"]
    assert stored["event_id"] == event_id
    assert stored["payload"] == json.loads(body)
    assert stored["headers"]["content-type"] == "application/json"
    assert stored["headers"]["user-agent"] == "test-sender/1"


def test_a_body_that_arrives_after_its_head_is_read_whole(receiver):
    """The usual body comes with the head and is read without waiting; one in slow pieces is awaited."""
    source, event_id = new_source(), new_id()
    body = json.dumps({"id": event_id, "note": "sent in three pieces, 50 ms apart"}).encode()
    head = (
        f"POST /webhook/{source} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = raw_exchange(receiver.url, head, [body[:10], body[10:30], body[30:]], pause_seconds=0.05)
    assert (answer.status, json.loads(answer.body)) == (202, {"status": "accepted", "id": event_id})
    [stored] = admin_get(f"{receiver.url}/webhook/{source}/pending?peek=5").json["payloads"]
    assert stored["payload"] == json.loads(body)


def test_peek_leases_nothing(receiver):
    from ingestion_patterns.push.inbox import open_inbox

    source = new_source()
    for n in range(2):
        assert post_json(f"{receiver.url}/webhook/{source}", {"id": f"p-{n}"}).status == 202
    looks = [admin_get(f"{receiver.url}/webhook/{source}/pending?peek=5").json for _ in range(2)]
    assert [[p["event_id"] for p in look["payloads"]] for look in looks] == [["p-0", "p-1"]] * 2

    async def claim():
        async with open_inbox(receiver.inbox_url) as inbox:
            return [record.event_id for record in await inbox.claim(source, 10)]

    assert asyncio.run(claim()) == ["p-0", "p-1"], "the peeks left both rows claimable"
    # A leased row is still pending, and a peek still shows it.
    peeked = admin_get(f"{receiver.url}/webhook/{source}/pending?peek=5").json
    assert peeked["pending"] == 2 and [p["event_id"] for p in peeked["payloads"]] == ["p-0", "p-1"]


def test_a_repeated_event_id_is_a_duplicate_and_stored_once(receiver):
    source, event_id = new_source(), new_id()
    url = f"{receiver.url}/webhook/{source}"
    assert post_json(url, {"id": event_id}).status == 202
    again = post_json(url, {"id": event_id, "changed": True})
    assert (again.status, again.json) == (200, {"status": "duplicate", "id": event_id})
    # The same id on another source is a different event.
    assert post_json(f"{receiver.url}/webhook/{new_source()}", {"id": event_id}).status == 202
    assert pending_count(receiver, source) == 1


def test_concurrent_copies_of_one_event_are_accepted_exactly_once(receiver):
    source, event_id = new_source(), new_id()
    summary = asyncio.run(send_webhooks(receiver.url, source, 0, event_ids=[event_id] * 40, concurrency=20))
    assert (summary.accepted, len(summary.duplicates), summary.rejected, summary.failed) == ([event_id], 39, [], [])
    assert pending_count(receiver, source) == 1


def test_event_id_comes_from_headers_then_payload_then_is_generated(receiver):
    source = new_source()
    url = f"{receiver.url}/webhook/{source}"
    both = {"webhook-id": "wh-1", "X-GitHub-Delivery": "gh-1"}
    assert post_json(url, {"id": "p-1"}, headers=both).json["id"] == "wh-1"
    assert post_json(url, {"id": "p-1"}, headers={"X-GitHub-Delivery": "gh-1"}).json["id"] == "gh-1"
    assert post_json(url, {"id": "p-1"}).json["id"] == "p-1"
    assert post_json(url, {"id": 42}).json == {"status": "accepted", "id": "42"}
    generated = post_json(url, {"no": "id"})
    assert generated.status == 202 and uuid.UUID(generated.json["id"])
    assert pending_count(receiver, source) == 5


# -- bad input: status and reason, never stored ---------------------------------------------------------

BAD_REQUESTS = [
    # (case, path suffix, body, headers, status, reason fragment)
    ("text/plain", "", b'{"id": 1}', {"Content-Type": "text/plain"}, 415, "application/json"),
    ("no content type", "", b'{"id": 1}', {}, 415, "got none"),
    ("form", "", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ("malformed JSON", "", b'{"id": 1', {"Content-Type": "application/json"}, 400, "malformed JSON"),
    ("empty body", "", b"", {"Content-Type": "application/json"}, 400, "empty"),
    ("array", "", b"[1, 2]", {"Content-Type": "application/json"}, 400, "JSON object"),
    ("string", "", b'"hello"', {"Content-Type": "application/json"}, 400, "JSON object"),
    ("not UTF-8", "", b'{"a": "\xff"}', {"Content-Type": "application/json"}, 400, "UTF-8"),
    ("too deep", "", b"[" * 60000, {"Content-Type": "application/json"}, 400, "JSON"),
    ("long event id", "", b"{}", {"Content-Type": "application/json", "webhook-id": "x" * 300}, 400, "longer"),
]


@pytest.mark.parametrize("case, suffix, body, headers, status, reason", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_gets_its_status_and_a_reason(receiver, case, suffix, body, headers, status, reason):
    source = new_source()
    answer = request("POST", f"{receiver.url}/webhook/{source}{suffix}", body, headers)
    assert answer.status == status, answer.body
    assert reason in answer.error_reason()
    assert pending_count(receiver, source) == 0


@pytest.mark.parametrize(
    "method, path, status, reason",
    [
        ("POST", "/webhook/bad.source", 400, "source_id must match"),
        ("POST", "/webhook/" + "x" * 65, 400, "source_id must match"),
        ("POST", "/webhook/a%20b", 400, "source_id must match"),
        ("POST", "/webhook/a/b", 404, "no such endpoint"),
        ("POST", "/webhook/", 404, "no such endpoint"),
        ("GET", "/nowhere", 404, "no such endpoint"),
        ("PUT", "/webhook/src", 405, "not allowed"),
        ("GET", "/webhook/src", 405, "not allowed"),
        ("GET", "/webhook/bad.source/pending", 400, "source_id must match"),
        ("GET", "/webhook/src/pending?peek=lots", 400, "peek"),
        ("GET", "/webhook/src/pending?peek=101", 400, "peek"),
    ],
)
def test_bad_paths_and_methods_get_a_json_reason(receiver, method, path, status, reason):
    answer = request(
        method, receiver.url + path, b"{}" if method != "GET" else None, {"Content-Type": "application/json"}
    )
    assert answer.status == status, answer.body
    assert reason in answer.error_reason()


def test_413_from_content_length_is_answered_before_the_body_is_sent(receiver):
    source = new_source()
    head = (
        f"POST /webhook/{source} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = raw_exchange(receiver.url, head)  # no body at all: the answer cannot wait for it
    assert answer.status == 413
    assert str(MAX_BODY) in answer.error_reason()
    assert pending_count(receiver, source) == 0


def test_413_for_a_chunked_body_that_grows_past_the_limit(receiver):
    source = new_source()
    head = (
        f"POST /webhook/{source} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b'{"pad": "' + b"x" * (16 * 1024) + b'"}'
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * 8 + [b"0\r\n\r\n"]  # ~128 KiB > 64 KiB
    answer = raw_exchange(receiver.url, head, chunks)
    assert answer.status == 413
    assert "larger than" in answer.error_reason()
    assert pending_count(receiver, source) == 0


def test_a_body_of_exactly_the_limit_is_accepted(receiver):
    source = new_source()
    skeleton = json.dumps({"id": new_id(), "pad": ""}).encode()
    body = skeleton.replace(b'"pad": ""', b'"pad": "' + b"x" * (MAX_BODY - len(skeleton)) + b'"')
    assert len(body) == MAX_BODY
    assert post_json(f"{receiver.url}/webhook/{source}", body=body).status == 202
    assert post_json(f"{receiver.url}/webhook/{source}", body=body[:-1] + b" }").status == 413


def test_odd_requests_never_get_a_500(receiver):
    url = f"{receiver.url}/webhook/{new_source()}"
    odd = [
        ("POST", url, b'{"a": "\x00"}', {"Content-Type": "application/json"}),
        ("POST", url, b"\x00\x01\x02", {"Content-Type": "application/json"}),
        ("POST", url, b'{"id": 1}', {"Content-Type": "application/json; charset=latin-1"}),
        ("POST", url, b'{"id": 1e400}', {"Content-Type": "application/json"}),
        ("POST", url, b'{"id": "x"}', {"Content-Type": "application/json", "webhook-id": "\t"}),
        ("POST", receiver.url + "/webhook/%ff%fe", b"{}", {"Content-Type": "application/json"}),
        ("POST", url + "?x=%zz", b"{}", {"Content-Type": "application/json"}),
        ("HEAD", url, None, {}),
        ("OPTIONS", url, None, {}),
        ("DELETE", url, None, {}),
        ("GET", receiver.url + "/webhook/x/pending?peek=-1", None, {}),
    ]
    for method, target, body, headers in odd:
        answer = request(method, target, body, headers)
        assert answer.status < 500, (method, target, body, answer.status, answer.body)
        if answer.status >= 400 and method != "HEAD":
            answer.error_reason()


# -- signatures -----------------------------------------------------------------------------------------


def test_standard_webhooks_signed_by_the_library_verify(receiver):
    event_id = new_id()
    body = json.dumps({"id": event_id, "data": 1}).encode()
    answer = post_json(f"{receiver.url}/webhook/signed", body=body, headers=standard_signed(body, event_id))
    assert (answer.status, answer.json["id"]) == (202, event_id)
    # Re-delivered within the window (a sender's retry): a duplicate, not a second row.
    again = post_json(f"{receiver.url}/webhook/signed", body=body, headers=standard_signed(body, event_id))
    assert (again.status, again.json["status"]) == (200, "duplicate")


def test_github_hmac_signature_verifies(receiver):
    delivery = str(uuid.uuid4())
    body = json.dumps({"ref": "refs/heads/main", "commits": []}).encode()
    answer = post_json(f"{receiver.url}/webhook/github", body=body, headers=github_signed(body, delivery))
    assert (answer.status, answer.json["id"]) == (202, delivery)
    peek = admin_get(f"{receiver.url}/webhook/github/pending?peek=100").json["payloads"]
    stored = next(p for p in peek if p["event_id"] == delivery)
    assert stored["headers"]["x-github-event"] == "push"
    assert stored["headers"]["x-hub-signature-256"].startswith("sha256=")


def _refused(receiver, source: str, body: bytes, headers: dict) -> str:
    before = pending_count(receiver, source)
    answer = post_json(f"{receiver.url}/webhook/{source}", body=body, headers=headers)
    assert answer.status == 401, answer.body
    assert pending_count(receiver, source) == before
    return answer.error_reason()


def test_tampered_replayed_and_wrongly_signed_standard_webhooks_are_refused(receiver):
    event_id = new_id()
    body = json.dumps({"id": event_id, "amount": 10}).encode()
    good = standard_signed(body, event_id)
    assert "does not match" in _refused(receiver, "signed", body.replace(b"10", b"99"), good)
    assert "does not match" in _refused(receiver, "signed", body, {**good, "webhook-id": new_id()})
    other_secret = "whsec_" + base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()
    assert "does not match" in _refused(receiver, "signed", body, standard_signed(body, event_id, secret=other_secret))
    assert "tolerance" in _refused(receiver, "signed", body, standard_signed(body, event_id, at=time.time() - 3600))
    assert "tolerance" in _refused(receiver, "signed", body, standard_signed(body, event_id, at=time.time() + 3600))
    assert "missing" in _refused(receiver, "signed", body, {})
    unsigned = {"webhook-id": event_id, "webhook-timestamp": good["webhook-timestamp"]}
    assert "missing" in _refused(receiver, "signed", body, unsigned)
    assert "malformed" in _refused(receiver, "signed", body, {**good, "webhook-signature": "nonsense"})
    assert "malformed" in _refused(receiver, "signed", body, {**good, "webhook-timestamp": "yesterday"})


def test_tampered_and_wrongly_signed_github_deliveries_are_refused(receiver):
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    good = github_signed(body, str(uuid.uuid4()))
    assert "does not match" in _refused(receiver, "github", body + b" ", good)
    assert "does not match" in _refused(receiver, "github", body, github_signed(body, str(uuid.uuid4()), secret="nope"))
    assert "malformed" in _refused(receiver, "github", body, {**good, "X-Hub-Signature-256": "sha1=abc"})
    assert "missing" in _refused(receiver, "github", body, {"X-GitHub-Delivery": str(uuid.uuid4())})


def test_sources_without_a_secret_take_unsigned_webhooks(receiver):
    assert post_json(f"{receiver.url}/webhook/{new_source()}", {"id": new_id()}).status == 202


# -- health, readiness, metrics, OpenAPI --------------------------------------------------------------


def test_health_ready_and_openapi(receiver):
    assert (get(f"{receiver.url}/health").status, get(f"{receiver.url}/health").json) == (200, {"status": "ok"})
    assert get(f"{receiver.url}/ready").status == 200
    document = get(f"{receiver.url}/openapi.json").json
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/webhook/{source_id}",
        "/webhook/{source_id}/pending",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
    }
    responses = document["paths"]["/webhook/{source_id}"]["post"]["responses"]
    assert {"202", "200", "400", "401", "413", "415", "503"} <= set(responses)


def test_metrics_count_outcomes_and_report_pending(receiver):
    source = new_source()
    url = f"{receiver.url}/webhook/{source}"
    before = get(f"{receiver.url}/metrics").body.decode()
    post_json(url, {"id": "m-1"})
    post_json(url, {"id": "m-2"})
    post_json(url, {"id": "m-1"})
    post_json(url, body=b"{oops")
    post_json(url, {"id": "m-3"}, content_type="text/plain")
    answer = get(f"{receiver.url}/metrics")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    after = answer.body.decode()

    def delta(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    assert delta("webhook_accepted_total", f'source_id="{source}"') == 2
    assert delta("webhook_duplicates_total", f'source_id="{source}"') == 1
    assert delta("webhook_rejected_total", 'reason="malformed_json"') == 1
    assert delta("webhook_rejected_total", 'reason="unsupported_media_type"') == 1
    assert delta("webhook_request_duration_seconds_count", 'outcome="accepted"') == 2
    assert delta("webhook_request_duration_seconds_count", 'outcome="rejected"') == 2
    assert metric_value(after, "webhook_inbox_pending", f'source_id="{source}"') == 2
    assert metric_value(after, "webhook_inbox_up") == 1


# -- the admin-only peek ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, status, reason",
    [
        ({}, 401, "Authorization: Bearer"),
        ({"Authorization": "Bearer wrong-token"}, 401, "Authorization: Bearer"),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, 401, "Authorization: Bearer"),
    ],
)
def test_peek_needs_the_admin_token(receiver, headers, status, reason):
    source = new_source()
    assert post_json(f"{receiver.url}/webhook/{source}", {"id": new_id()}).status == 202
    answer = request("GET", f"{receiver.url}/webhook/{source}/pending?peek=5", headers=headers)
    assert answer.status == status and reason in answer.error_reason()
    assert "payloads" not in answer.body.decode()
    # The count alone is not a payload: it stays open inside the cluster (the ingress does not route it).
    assert get(f"{receiver.url}/webhook/{source}/pending").json["pending"] == 1
