"""The receiver at the public edge: a per-client rate limit (429 + Retry-After), and peek off by default."""

from __future__ import annotations

import uuid

import pytest
from webhook_http import metric_value, post_json, request

pytestmark = pytest.mark.integration


def _post(url: str, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return post_json(url, {"id": uuid.uuid4().hex}, headers=headers)


def test_a_client_past_its_rate_gets_429_with_retry_after_and_others_are_served(start_receiver, make_inbox_url):
    receiver = start_receiver(
        make_inbox_url("sqlite"),
        env={
            "WEBHOOK_RATE_LIMIT_PER_SECOND": "0.5",
            "WEBHOOK_RATE_LIMIT_BURST": "3",
            "WEBHOOK_TRUSTED_PROXIES": "127.0.0.1/32",  # the test plays the ingress controller
        },
    )
    url = f"{receiver.url}/webhook/limited"
    statuses = [_post(url, "203.0.113.1").status for _ in range(4)]
    assert statuses == [202, 202, 202, 429]
    refused = _post(url, "203.0.113.1")
    assert refused.status == 429 and "rate limit" in refused.error_reason()
    assert int(refused.headers["retry-after"]) >= 1
    assert _post(url, "203.0.113.2").status == 202, "another client behind the same proxy has its own bucket"
    # Reads are not limited, and the refusals are counted.
    metrics = request("GET", f"{receiver.url}/metrics")
    assert metrics.status == 200
    assert metric_value(metrics.body.decode(), "webhook_rejected_total", 'reason="rate_limited"') == 2


def test_peek_is_off_without_an_admin_token(start_receiver, make_inbox_url):
    receiver = start_receiver(make_inbox_url("sqlite"))
    answer = request("GET", f"{receiver.url}/webhook/any/pending?peek=1", headers={"Authorization": "Bearer x"})
    assert answer.status == 403 and "WEBHOOK_ADMIN_TOKEN" in answer.error_reason()


def test_stripe_shopify_and_slack_deliveries_are_accepted_and_tampered_ones_get_401(start_receiver, make_inbox_url):
    import base64
    import hashlib
    import hmac
    import json
    import time

    from slack_sdk.signature import SignatureVerifier
    from stripe import WebhookSignature

    secrets = {"pay": "whsec_stripe_endpoint_secret", "shop": "shopify-client-secret", "chat": "slack-signing-secret"}
    receiver = start_receiver(
        make_inbox_url("sqlite"), env={f"WEBHOOK_SECRET_{k.upper()}": v for k, v in secrets.items()}
    )
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "charge.succeeded"}).encode()
    now = str(int(time.time()))
    signed = {
        "pay": {"Stripe-Signature": WebhookSignature.generate_signature_header(body.decode(), secrets["pay"])},
        "shop": {
            "X-Shopify-Hmac-Sha256": base64.b64encode(
                hmac.new(secrets["shop"].encode(), body, hashlib.sha256).digest()
            ).decode(),
            "X-Shopify-Webhook-Id": f"shop-{uuid.uuid4().hex}",
        },
        "chat": {
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": SignatureVerifier(secrets["chat"]).generate_signature(
                timestamp=now, body=body.decode()
            ),
        },
    }
    for source, headers in signed.items():
        assert post_json(f"{receiver.url}/webhook/{source}", body=body, headers=headers).status == 202, source
        tampered = post_json(
            f"{receiver.url}/webhook/{source}", body=body.replace(b"charge", b"refund"), headers=headers
        )
        assert tampered.status == 401 and "does not match the body" in tampered.error_reason(), source
    unsigned = post_json(f"{receiver.url}/webhook/pay", body=body)
    assert unsigned.status == 401 and "Stripe-Signature" in unsigned.error_reason()


def test_metrics_show_the_inbox_sizes(start_receiver, make_inbox_url):
    receiver = start_receiver(make_inbox_url("sqlite"))
    for _ in range(2):
        assert _post(f"{receiver.url}/webhook/sized").status == 202
    text = request("GET", f"{receiver.url}/metrics").body.decode()
    assert metric_value(text, "webhook_inbox_rows", 'state="pending"') == 2
    assert metric_value(text, "webhook_inbox_rows", 'state="done"') == 0
    assert metric_value(text, "webhook_inbox_storage_bytes") > 0
