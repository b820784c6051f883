"""Each signature scheme against its provider's published example vector, or against the provider's own
library where it publishes none (Stripe's stripe-python), and tampered or stale deliveries refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from slack_sdk.signature import SignatureVerifier
from stripe import WebhookSignature

from ingestion_patterns.push.receiver.signatures import SignatureError, verify_signature

# GitHub's "Validating webhook deliveries" example.
GITHUB_SECRET, GITHUB_BODY = "It's a Secret to Everybody", b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# Slack's "Verifying requests from Slack" example.
SLACK_SECRET, SLACK_TIMESTAMP = "8f742231b10e8888abcd99yyyzzz85a5", 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

# The Standard Webhooks specification's test vector.
STANDARD_SECRET, STANDARD_ID, STANDARD_TIMESTAMP = (
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "msg_p5jXN8AQM9LWM0D4loKWxJek",
    1614265330,
)
STANDARD_BODY, STANDARD_SIGNATURE = b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

STRIPE_SECRET = "whsec_test_secret_for_the_receiver"
SHOPIFY_SECRET = "shopify-app-client-secret"
BODY = b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"amount": 2000}}'


def verify(secret: str, body: bytes, headers: dict, *, now: float | None = None, tolerance: int = 300) -> str:
    return verify_signature(secret, body, headers, tolerance_seconds=tolerance, now=now)


def test_published_vectors_verify():
    assert verify(GITHUB_SECRET, GITHUB_BODY, {"X-Hub-Signature-256": GITHUB_SIGNATURE}) == "github"
    slack = {"X-Slack-Signature": SLACK_SIGNATURE, "X-Slack-Request-Timestamp": str(SLACK_TIMESTAMP)}
    assert verify(SLACK_SECRET, SLACK_BODY, slack, now=SLACK_TIMESTAMP + 10) == "slack"
    standard = {
        "webhook-id": STANDARD_ID,
        "webhook-timestamp": str(STANDARD_TIMESTAMP),
        "webhook-signature": STANDARD_SIGNATURE,
    }
    assert verify(STANDARD_SECRET, STANDARD_BODY, standard, now=STANDARD_TIMESTAMP) == "standard-webhooks"


def test_stripe_deliveries_signed_by_stripes_library_verify():
    header = WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET)
    assert verify(STRIPE_SECRET, BODY, {"Stripe-Signature": header}) == "stripe"
    # Stripe sends several v1 signatures while a secret rolls, and a v0 we ignore.
    rolled = f"{header},v1={'0' * 64},v0=deadbeef"
    assert verify(STRIPE_SECRET, BODY, {"Stripe-Signature": rolled}) == "stripe"
    # And stripe-python accepts what its own scheme says we accept: the two agree on the algorithm.
    assert WebhookSignature.verify_header(BODY.decode(), header, STRIPE_SECRET, tolerance=300)


def test_slack_deliveries_signed_by_slacks_sdk_verify():
    now = int(time.time())
    signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=str(now), body=BODY.decode())
    headers = {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(now)}
    assert verify(SLACK_SECRET, BODY, headers) == "slack"


def test_shopify_deliveries_verify():
    # Shopify's documented scheme: base64 of the HMAC-SHA256 of the raw body with the app's secret.
    header = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert verify(SHOPIFY_SECRET, BODY, {"X-Shopify-Hmac-Sha256": header}) == "shopify"


def _signed(scheme: str, body: bytes, at: int) -> tuple[str, dict]:
    if scheme == "stripe":
        return STRIPE_SECRET, {
            "Stripe-Signature": WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET, timestamp=at)
        }
    if scheme == "slack":
        signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=str(at), body=body.decode())
        return SLACK_SECRET, {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(at)}
    digest = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return SHOPIFY_SECRET, {"X-Shopify-Hmac-Sha256": digest}


@pytest.mark.parametrize("scheme", ["stripe", "slack", "shopify"])
def test_tampered_deliveries_are_refused_with_the_reason(scheme):
    secret, headers = _signed(scheme, BODY, int(time.time()))
    with pytest.raises(SignatureError, match="does not match the body"):
        verify(secret, BODY.replace(b"2000", b"2001"), headers)
    with pytest.raises(SignatureError, match="does not match the body"):
        verify(secret + "-other", BODY, headers)


@pytest.mark.parametrize("scheme", ["stripe", "slack"])
def test_stale_timestamped_deliveries_are_refused_as_replays(scheme):
    secret, headers = _signed(scheme, BODY, int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="outside the 300 s tolerance"):
        verify(secret, BODY, headers)


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Stripe-Signature": "v1=abc"}, "malformed Stripe-Signature"),
        ({"Stripe-Signature": "t=soon,v1=abc"}, "malformed Stripe-Signature t"),
        ({"X-Shopify-Hmac-Sha256": "not base64!"}, "malformed X-Shopify-Hmac-Sha256"),
        ({"X-Slack-Signature": "v0=abc"}, "missing Slack header"),
        ({"X-Slack-Signature": "v1=abc", "X-Slack-Request-Timestamp": str(int(time.time()))}, "malformed X-Slack"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(headers, reason):
    with pytest.raises(SignatureError, match=reason):
        verify("secret", BODY, headers)
