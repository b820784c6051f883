"""Declared webhook sources at the receiver (push/source.py): an undeclared source gets a 404, a
declared scheme is required and pinned, and the event id comes from where the declaration says."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from webhook_http import post_json, request

from ingestion_patterns.push.receiver.signatures import github_signature_header, standard_signature_headers

pytestmark = pytest.mark.integration

SOURCES = """
webhooks:
  - source_id: orders
    signature: standard-webhooks
    secret_env: ORDERS_SIGNING_SECRET
    tolerance_seconds: 60
  - source_id: audit
    event_id: {json_path: meta.delivery}
  - source_id: open
"""


@pytest.fixture(scope="module")
def receiver(module_receivers, module_inbox_urls, tmp_path_factory):
    sources = tmp_path_factory.mktemp("sources") / "sources.yaml"
    sources.write_text(SOURCES)
    return module_receivers(
        module_inbox_urls("sqlite"),
        env={
            "INGEST_SOURCES_FILE": str(sources),
            "WEBHOOK_ACCEPT_UNDECLARED_SOURCES": "false",
            "ORDERS_SIGNING_SECRET": "orders-secret",
            "WEBHOOK_SECRET_OPEN": "a legacy secret a declared unsigned source ignores",
        },
    )


def _body(**fields) -> bytes:
    return json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": 1, **fields}).encode()


def test_an_undeclared_source_gets_404_with_a_reason(receiver):
    answer = post_json(f"{receiver.url}/webhook/nobody-declared-me", {"data": 1})
    assert answer.status == 404
    assert "nobody-declared-me" in answer.error_reason() and "declared" in answer.error_reason()


def test_a_declared_scheme_is_required_pinned_and_its_tolerance_applies(receiver):
    url = f"{receiver.url}/webhook/orders"
    body = _body()
    unsigned = request("POST", url, body=body, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401 and "Standard Webhooks" in unsigned.error_reason()

    # Signed with the right secret but in another scheme's format: refused as unsigned, not verified.
    github = request(
        "POST",
        url,
        body=body,
        headers={"Content-Type": "application/json", **github_signature_header("orders-secret", body)},
    )
    assert github.status == 401 and "requires" in github.error_reason()

    event = f"msg_{uuid.uuid4().hex}"
    signed = standard_signature_headers("orders-secret", event, body)
    accepted = request("POST", url, body=body, headers={"Content-Type": "application/json", **signed})
    assert accepted.status == 202, accepted.body

    stale = standard_signature_headers("orders-secret", f"msg_{uuid.uuid4().hex}", body, timestamp=time.time() - 120)
    refused = request("POST", url, body=body, headers={"Content-Type": "application/json", **stale})
    assert refused.status == 401 and "60 s tolerance" in refused.error_reason()

    tampered = request("POST", url, body=body + b" ", headers={"Content-Type": "application/json", **signed})
    assert tampered.status == 401


def test_the_event_id_comes_from_the_declared_json_path(receiver):
    url = f"{receiver.url}/webhook/audit"
    delivery = f"d-{uuid.uuid4().hex}"
    first = post_json(url, {"timestamp": "2026-01-01T00:00:00Z", "data": 1, "meta": {"delivery": delivery}})
    assert (first.status, json.loads(first.body)["id"]) == (202, delivery)
    again = post_json(url, {"timestamp": "2026-01-01T00:00:01Z", "data": 2, "meta": {"delivery": delivery}})
    assert again.status == 200, "the same delivery id is a duplicate"
    missing = post_json(url, {"timestamp": "2026-01-01T00:00:00Z", "data": 1})
    assert missing.status == 400 and "meta.delivery" in missing.error_reason()


def test_a_declared_unsigned_source_takes_unsigned_deliveries(receiver):
    assert post_json(f"{receiver.url}/webhook/open", {"timestamp": "2026-01-01T00:00:00Z", "data": 1}).status == 202
