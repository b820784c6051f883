"""Request checks of the receiver: media type, JSON object, event id, kept headers, in-batch dedup."""

import time
import uuid

import pytest
from multidict import CIMultiDict

from ingestion_patterns.push.inbox import NewWebhook, open_inbox
from ingestion_patterns.push.inbox.base import first_occurrences
from ingestion_patterns.push.receiver.intake import (
    Rejection,
    check_content_type,
    check_source_id,
    event_id_for,
    kept_headers,
    parse_json_object,
)


@pytest.mark.parametrize(
    "value", ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.github+json"]
)
def test_json_media_types_pass(value):
    check_content_type(value)


@pytest.mark.parametrize("value", [None, "", "text/plain", "application/x-www-form-urlencoded", "text/json+xml"])
def test_other_media_types_are_415(value):
    with pytest.raises(Rejection) as error:
        check_content_type(value)
    assert error.value.status == 415 and "application/json" in error.value.reason


@pytest.mark.parametrize("source", ["a", "github", "my-source_2", "x" * 64])
def test_valid_source_ids(source):
    assert check_source_id(source) == source


@pytest.mark.parametrize("source", ["x" * 65, "has space", "dot.ted", "ümlaut", ""])
def test_invalid_source_ids_are_400(source):
    with pytest.raises(Rejection) as error:
        check_source_id(source)
    assert error.value.status == 400 and "source_id must match" in error.value.reason


@pytest.mark.parametrize(
    "body, code, reason",
    [
        (b"", "malformed_json", "empty"),
        (b"{not json", "malformed_json", "malformed JSON"),
        (b"\xff\xfe{}", "malformed_json", "UTF-8"),
        (b"[1, 2]", "not_an_object", "got list"),
        (b'"text"', "not_an_object", "got str"),
        (b"null", "not_an_object", "got NoneType"),
        (b"[" * 100000, "malformed_json", "malformed JSON"),
    ],
)
def test_bad_bodies_are_400_with_a_reason(body, code, reason):
    with pytest.raises(Rejection) as error:
        parse_json_object(body)
    assert (error.value.status, error.value.code) == (400, code)
    assert reason in error.value.reason


def test_an_object_parses():
    assert parse_json_object(b'{"id": 1}') == {"id": 1}


def test_event_id_precedence():
    both = CIMultiDict({"Webhook-Id": "wh-1", "X-GitHub-Delivery": "gh-1"})
    assert event_id_for(both, {"id": "p-1"}) == "wh-1"
    assert event_id_for(CIMultiDict({"x-github-delivery": "gh-1"}), {"id": "p-1"}) == "gh-1"
    assert event_id_for(CIMultiDict(), {"id": "p-1"}) == "p-1"
    assert event_id_for(CIMultiDict(), {"id": 42}) == "42"
    assert event_id_for(CIMultiDict({"webhook-id": "  "}), {"id": 7}) == "7"


@pytest.mark.parametrize("payload", [{}, {"id": None}, {"id": True}, {"id": ""}, {"id": {"nested": 1}}])
def test_without_an_id_a_new_uuid_is_made(payload):
    made = event_id_for(CIMultiDict(), payload)
    assert uuid.UUID(made) and made != event_id_for(CIMultiDict(), payload)


def test_overlong_event_ids_are_400():
    with pytest.raises(Rejection) as error:
        event_id_for(CIMultiDict({"webhook-id": "x" * 300}), {})
    assert error.value.status == 400 and "webhook-id" in error.value.reason


def test_kept_headers_are_the_useful_ones_lower_cased():
    headers = CIMultiDict(
        {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/1",
            "X-GitHub-Event": "push",
            "Authorization": "Bearer secret",
            "Cookie": "c=1",
        }
    )
    assert kept_headers(headers) == {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/1",
        "x-github-event": "push",
    }


def test_in_batch_repeats_are_marked_after_the_first():
    at = time.time()
    items = [
        NewWebhook("a", "1", b"{}", {}, at),
        NewWebhook("a", "1", b"{}", {}, at),
        NewWebhook("b", "1", b"{}", {}, at),
        NewWebhook("a", "2", b"{}", {}, at),
    ]
    unique, repeats = first_occurrences(items)
    assert [(i.source_id, i.event_id) for i in unique] == [("a", "1"), ("b", "1"), ("a", "2")]
    assert repeats == {1}


@pytest.mark.parametrize(
    "url, kind, detail",
    [
        ("sqlite:///data/inbox.sqlite3", "SQLiteInbox", "data/inbox.sqlite3"),
        ("sqlite:////var/lib/inbox.sqlite3", "SQLiteInbox", "/var/lib/inbox.sqlite3"),
        ("postgresql://u:p@h:5432/db", "PostgresInbox", None),
        ("noop://", "NoopInbox", None),
    ],
)
def test_open_inbox_picks_the_backend_from_the_url(url, kind, detail):
    inbox = open_inbox(url)
    assert type(inbox).__name__ == kind
    if detail:
        assert str(inbox.path) == detail


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite://", "sqlite:///", "inbox.sqlite3"])
def test_open_inbox_refuses_unknown_urls(url):
    with pytest.raises(ValueError):
        open_inbox(url)


def test_postgres_password_is_not_in_repr():
    assert "hunter2" not in repr(open_inbox("postgresql://u:hunter2@h/db"))
