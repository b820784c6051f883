"""Webhook signature verification: Standard Webhooks, GitHub, Stripe, Shopify and Slack.

Each scheme follows its provider's documented algorithm; which one a delivery uses is told by the
headers it carries (a source's declared scheme will pin it):
- Standard Webhooks (Svix and others): HMAC-SHA256 of ``{id}.{timestamp}.{body}``, base64, timestamped;
- GitHub ``X-Hub-Signature-256``: ``sha256=`` hex HMAC-SHA256 of the body (no timestamp);
- Stripe ``Stripe-Signature: t=…,v1=…``: hex HMAC-SHA256 of ``{t}.{body}``, timestamped;
- Shopify ``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the body (no timestamp; the
  ``X-Shopify-Webhook-Id`` makes a replay a duplicate);
- Slack ``X-Slack-Signature: v0=…`` with ``X-Slack-Request-Timestamp``: hex HMAC-SHA256 of
  ``v0:{timestamp}:{body}``, timestamped.
Comparisons are constant-time; a timestamped scheme refuses a delivery outside the tolerance.

Standard Webhooks signs ``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256; the
``standardwebhooks`` library computes that signature here. We do not call its ``verify`` because its
replay window is fixed at 5 minutes and ours is configurable; the header parsing, the window check
and the constant-time comparison below are what ``verify`` does, with our tolerance and with reasons
that tell the sender what is wrong. GitHub signs the body alone (``sha256=<hex>``), so a GitHub
delivery has no timestamp to check; its ``X-GitHub-Delivery`` id makes a replay a duplicate instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
GITHUB_HEADER = "x-hub-signature-256"
STRIPE_HEADER = "stripe-signature"
SHOPIFY_HEADER = "x-shopify-hmac-sha256"
SLACK_HEADERS = ("x-slack-signature", "x-slack-request-timestamp")


class SignatureError(Exception):
    """The request does not carry a valid signature; ``reason`` says why (goes into the 401)."""

    def __init__(self, reason: str, *, missing: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


# The headers each scheme's signature travels in (any of them present means the scheme was attempted).
SCHEME_HEADERS: dict[str, tuple[str, ...]] = {
    "standard-webhooks": STANDARD_HEADERS,
    "github": (GITHUB_HEADER,),
    "stripe": (STRIPE_HEADER,),
    "shopify": (SHOPIFY_HEADER,),
    "slack": SLACK_HEADERS,
}
_SCHEME_NAMES = {
    "standard-webhooks": "webhook-id/webhook-timestamp/webhook-signature (Standard Webhooks)",
    "github": "X-Hub-Signature-256 (GitHub)",
    "stripe": "Stripe-Signature",
    "shopify": "X-Shopify-Hmac-Sha256",
    "slack": "X-Slack-Signature and X-Slack-Request-Timestamp",
}


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_seconds: int,
    now: float | None = None,
    scheme: str | None = None,
) -> str:
    """Check ``body`` against the signature headers; return the scheme that verified it.

    ``scheme`` pins the scheme (a declared source's): only its headers count, and a delivery without
    them is refused as unsigned. Without it (a source known only by its secret) the headers tell
    which scheme the sender used.

    Raises SignatureError when no signature is present, it is malformed or wrong, or (timestamped
    schemes) its timestamp is further than ``tolerance_seconds`` from now.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if scheme is not None:
        if not any(name in lowered for name in SCHEME_HEADERS[scheme]):
            raise SignatureError(f"missing signature: this source requires {_SCHEME_NAMES[scheme]}", missing=True)
        lowered = {
            name: value
            for name, value in lowered.items()
            if name in SCHEME_HEADERS[scheme] or not any(name in names for names in SCHEME_HEADERS.values())
        }
    if any(name in lowered for name in STANDARD_HEADERS):
        verify_standard(secret, body, lowered, tolerance_seconds=tolerance_seconds, now=now)
        return "standard-webhooks"
    if GITHUB_HEADER in lowered:
        verify_github(secret, body, lowered[GITHUB_HEADER])
        return "github"
    if STRIPE_HEADER in lowered:
        verify_stripe(secret, body, lowered[STRIPE_HEADER], tolerance_seconds=tolerance_seconds, now=now)
        return "stripe"
    if SHOPIFY_HEADER in lowered:
        verify_shopify(secret, body, lowered[SHOPIFY_HEADER])
        return "shopify"
    if any(name in lowered for name in SLACK_HEADERS):
        verify_slack(secret, body, lowered, tolerance_seconds=tolerance_seconds, now=now)
        return "slack"
    raise SignatureError(
        "missing signature: this source requires webhook-id/webhook-timestamp/webhook-signature "
        "(Standard Webhooks), X-Hub-Signature-256 (GitHub), Stripe-Signature, X-Shopify-Hmac-Sha256 or "
        "X-Slack-Signature",
        missing=True,
    )


def check_timestamp(timestamp_text: str, header: str, *, tolerance_seconds: int, now: float | None) -> int:
    """The timestamp of a timestamped scheme, refused when malformed or outside the tolerance."""
    if not timestamp_text.isdigit():
        raise SignatureError(f"malformed {header}: expected integer unix seconds")
    timestamp = int(timestamp_text)
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance_seconds:
        raise SignatureError(
            f"{header} is {abs(skew):.0f} s {'old' if skew > 0 else 'in the future'}, outside the "
            f"{tolerance_seconds} s tolerance (replayed, or the sender's clock is off)"
        )
    return timestamp


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


@lru_cache(maxsize=256)
def _standard_webhook(secret: str) -> Webhook:
    return Webhook(secret)


def verify_standard(
    secret: str, body: bytes, headers: Mapping[str, str], *, tolerance_seconds: int, now: float | None = None
) -> None:
    """Verify a Standard Webhooks signature; ``headers`` must have lower-case names."""
    missing = [name for name in STANDARD_HEADERS if not headers.get(name)]
    if missing:
        raise SignatureError(f"missing Standard Webhooks header(s): {', '.join(missing)}", missing=True)
    msg_id, timestamp_text, signature_header = (headers[name] for name in STANDARD_HEADERS)
    timestamp = check_timestamp(timestamp_text, "webhook-timestamp", tolerance_seconds=tolerance_seconds, now=now)
    passed = _parse_standard_signatures(signature_header)
    try:
        text = body.decode("utf-8")
        webhook = _standard_webhook(secret)
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8, so it cannot match a Standard Webhooks signature") from None
    except (ValueError, RuntimeError, EmptyWebhookSecretError) as error:  # not base64, or empty
        raise SignatureError(
            f"this source's secret is not a Standard Webhooks secret (whsec_<base64>): {error}"
        ) from None
    expected = webhook.sign(msg_id, datetime.fromtimestamp(timestamp, UTC), text)
    expected_bytes = base64.b64decode(expected.split(",", 1)[1])
    if not any(hmac.compare_digest(expected_bytes, candidate) for candidate in passed):
        raise SignatureError("webhook-signature does not match the body (tampered, or signed with another secret)")


def _parse_standard_signatures(header: str) -> list[bytes]:
    """The v1 signatures in a space-separated ``v1,<base64> v1,<base64>`` header."""
    signatures = []
    for part in header.split():
        version, sep, encoded = part.partition(",")
        if not sep:
            raise SignatureError("malformed webhook-signature: expected space-separated 'v1,<base64>' entries")
        if version != "v1":
            continue  # other versions (e.g. v1a asymmetric) are not ours to check
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            raise SignatureError("malformed webhook-signature: not base64") from None
    if not signatures:
        raise SignatureError("malformed webhook-signature: no v1 signature")
    return signatures


def verify_github(secret: str, body: bytes, header: str) -> None:
    """Verify GitHub's ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``."""
    prefix, sep, digest = header.strip().partition("=")
    if prefix != "sha256" or not sep or len(digest) != 64:
        raise SignatureError("malformed X-Hub-Signature-256: expected sha256=<64 hex digits>")
    expected = _hmac_sha256(secret, body).hex()
    if not hmac.compare_digest(expected, digest.lower()):
        raise SignatureError("X-Hub-Signature-256 does not match the body (tampered, or signed with another secret)")


def verify_stripe(secret: str, body: bytes, header: str, *, tolerance_seconds: int, now: float | None = None) -> None:
    """Verify ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`` (Stripe's documented scheme: the
    endpoint secret ``whsec_…`` is the HMAC key as it is; other schemes such as v0 are ignored)."""
    items = [part.strip().partition("=") for part in header.split(",")]
    timestamps = [value for key, sep, value in items if key == "t" and sep]
    signatures = [value.lower() for key, sep, value in items if key == "v1" and sep]
    if len(timestamps) != 1 or not signatures:
        raise SignatureError("malformed Stripe-Signature: expected t=<unix seconds>,v1=<hex>")
    timestamp = check_timestamp(timestamps[0], "Stripe-Signature t", tolerance_seconds=tolerance_seconds, now=now)
    expected = _hmac_sha256(secret, f"{timestamp}.".encode() + body).hex()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("Stripe-Signature does not match the body (tampered, or signed with another secret)")


def verify_shopify(secret: str, body: bytes, header: str) -> None:
    """Verify ``X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`` (the app's client secret)."""
    try:
        passed = base64.b64decode(header.strip(), validate=True)
    except binascii.Error:
        raise SignatureError("malformed X-Shopify-Hmac-Sha256: not base64") from None
    if not hmac.compare_digest(_hmac_sha256(secret, body), passed):
        raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body (tampered, or signed with another secret)")


def verify_slack(
    secret: str, body: bytes, headers: Mapping[str, str], *, tolerance_seconds: int, now: float | None = None
) -> None:
    """Verify Slack's ``X-Slack-Signature: v0=<hex>`` of ``v0:{X-Slack-Request-Timestamp}:{body}``;
    ``headers`` must have lower-case names."""
    missing = [name for name in SLACK_HEADERS if not headers.get(name)]
    if missing:
        raise SignatureError(f"missing Slack header(s): {', '.join(missing)}", missing=True)
    signature, timestamp_text = (headers[name] for name in SLACK_HEADERS)
    version, sep, digest = signature.strip().partition("=")
    if version != "v0" or not sep:  # what the header is comes before when it was sent
        raise SignatureError("malformed X-Slack-Signature: expected v0=<hex>")
    timestamp = check_timestamp(
        timestamp_text, "X-Slack-Request-Timestamp", tolerance_seconds=tolerance_seconds, now=now
    )
    expected = _hmac_sha256(secret, f"v0:{timestamp}:".encode() + body).hex()
    if not hmac.compare_digest(expected, digest.lower()):
        raise SignatureError("X-Slack-Signature does not match the body (tampered, or signed with another secret)")


# -- signing (for the simulator; tests sign with the libraries directly) ---------------------------


def standard_signature_headers(secret: str, msg_id: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    """webhook-id/-timestamp/-signature headers for ``body``, signed by the standardwebhooks library."""
    moment = datetime.fromtimestamp(int(time.time() if timestamp is None else timestamp), UTC)
    signature = _standard_webhook(secret).sign(msg_id, moment, body.decode("utf-8"))
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


def github_signature_header(secret: str, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hmac_sha256(secret, body).hex()}
