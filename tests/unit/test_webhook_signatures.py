"""Signature checks against payloads signed by the real standardwebhooks library and by GitHub-style HMAC."""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from ingestion_patterns.push.receiver.signatures import (
    SignatureError,
    github_signature_header,
    standard_signature_headers,
    verify_signature,
)

SECRET = "whsec_" + base64.b64encode(b"a-32-byte-long-secret-for-tests!").decode()
BODY = b'{"id": "evt-1", "data": {"amount": 10}}'


def library_signed(body: bytes = BODY, msg_id: str = "msg_1", at: float | None = None, secret: str = SECRET) -> dict:
    """Headers as a Standard Webhooks sender produces them, signed by the reference library."""
    moment = datetime.fromtimestamp(int(time.time() if at is None else at), UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


def github_signed(body: bytes = BODY, secret: str = "gh-secret") -> dict:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def verify(headers: dict, body: bytes = BODY, secret: str = SECRET, tolerance: int = 300) -> str:
    return verify_signature(secret, body, headers, tolerance_seconds=tolerance)


def test_library_signed_payload_verifies():
    assert verify(library_signed()) == "standard-webhooks"


def test_header_names_are_case_insensitive():
    headers = {name.title(): value for name, value in library_signed().items()}
    assert verify(headers) == "standard-webhooks"


def test_one_of_several_signatures_may_match():
    headers = library_signed()
    headers["webhook-signature"] = "v1,Zm9vYmFy " + headers["webhook-signature"]
    assert verify(headers) == "standard-webhooks"


def test_our_signer_produces_what_the_library_verifies():
    headers = standard_signature_headers(SECRET, "msg_9", BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {"id": "evt-1", "data": {"amount": 10}}


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b"10", b"99")),  # body changed
        lambda h, b: ({**h, "webhook-id": "msg_other"}, b),  # id changed
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),  # timestamp changed
    ],
)
def test_tampering_is_refused(tamper):
    headers, body = tamper(library_signed(), BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(headers, body)


def test_wrong_secret_is_refused():
    other = "whsec_" + base64.b64encode(b"another-secret-another-secret!!!").decode()
    with pytest.raises(SignatureError, match="does not match"):
        verify(library_signed(secret=other))


@pytest.mark.parametrize("age, word", [(301, "old"), (-301, "in the future"), (3600, "old")])
def test_timestamps_outside_the_window_are_refused(age, word):
    with pytest.raises(SignatureError, match=f"{word}.*300 s tolerance"):
        verify(library_signed(at=time.time() - age))


def test_the_window_is_configurable():
    headers = library_signed(at=time.time() - 100)
    assert verify(headers, tolerance=300) == "standard-webhooks"
    with pytest.raises(SignatureError, match="60 s tolerance"):
        verify(headers, tolerance=60)
    # Wider than the library's fixed 5 minutes works too.
    assert verify(library_signed(at=time.time() - 1000), tolerance=3600) == "standard-webhooks"


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "missing signature"),
        ({"webhook-id": "m", "webhook-timestamp": "1"}, "missing Standard Webhooks header.*webhook-signature"),
        (
            {"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
            "malformed webhook-timestamp",
        ),
        (
            {"webhook-id": "m", "webhook-timestamp": "NOW", "webhook-signature": "v1,AAAA"},
            "malformed webhook-timestamp",
        ),
        ({"X-Hub-Signature-256": "sha1=abc"}, "malformed X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": "sha256=abc"}, "malformed X-Hub-Signature-256"),
    ],
)
def test_missing_and_malformed_headers_are_named(headers, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(headers)


@pytest.mark.parametrize(
    "signature, reason",
    [
        ("garbage", "malformed webhook-signature"),
        ("v1,not*base64", "not base64"),
        ("v2,Zm9v", "no v1 signature"),
    ],
)
def test_malformed_signature_values_are_named(signature, reason):
    headers = {**library_signed(), "webhook-signature": signature}
    with pytest.raises(SignatureError, match=reason):
        verify(headers)


def test_missing_flag_separates_absent_from_wrong():
    with pytest.raises(SignatureError) as absent:
        verify({})
    assert absent.value.missing
    with pytest.raises(SignatureError) as wrong:
        verify({**library_signed(), "webhook-signature": "v1,Zm9v"})
    assert not wrong.value.missing


def test_github_hmac_verifies_and_refuses_tampering_and_wrong_secret():
    assert verify(github_signed(), secret="gh-secret") == "github"
    upper = {"X-Hub-Signature-256": github_signed()["X-Hub-Signature-256"].upper().replace("SHA256", "sha256")}
    assert verify(upper, secret="gh-secret") == "github"
    with pytest.raises(SignatureError, match="does not match"):
        verify(github_signed(), body=BODY + b" ", secret="gh-secret")
    with pytest.raises(SignatureError, match="does not match"):
        verify(github_signed(secret="other"), secret="gh-secret")
    assert github_signature_header("gh-secret", BODY) == github_signed()
