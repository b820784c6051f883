"""503 with Retry-After (and /ready 503) while the inbox is unavailable; recovery without a restart."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from webhook_http import get, metric_value, post_json

from ingestion_devtools.processes import free_port, wait_until

pytestmark = pytest.mark.integration


def assert_unavailable(answer) -> None:
    assert answer.status == 503, answer.body
    assert int(answer.headers["retry-after"]) > 0
    assert "inbox unavailable" in answer.error_reason()


def test_postgres_refusing_connections_gives_503_and_not_ready(start_receiver):
    receiver = start_receiver(
        f"postgresql://ingest@127.0.0.1:{free_port()}/postgres", env={"WEBHOOK_RETRY_AFTER_SECONDS": "7"}
    )
    assert get(f"{receiver.url}/health").status == 200  # liveness does no I/O
    ready = get(f"{receiver.url}/ready")
    assert_unavailable(ready)
    assert ready.headers["retry-after"] == "7"
    assert_unavailable(post_json(f"{receiver.url}/webhook/src", {"id": "e1"}))
    assert_unavailable(get(f"{receiver.url}/webhook/src/pending"))
    metrics = get(f"{receiver.url}/metrics")
    assert metrics.status == 200
    text = metrics.body.decode()
    assert metric_value(text, "webhook_inbox_up") == 0
    assert metric_value(text, "webhook_rejected_total", 'reason="inbox_unavailable"') >= 1


def test_postgres_going_down_and_coming_back(start_receiver, dedicated_postgres):
    receiver = start_receiver(dedicated_postgres.url, ready_path="/ready")
    url = f"{receiver.url}/webhook/src"
    assert post_json(url, {"id": "before"}).status == 202

    dedicated_postgres.stop()
    assert_unavailable(post_json(url, {"id": "during"}))
    assert_unavailable(get(f"{receiver.url}/ready"))

    dedicated_postgres.start()
    wait_until(lambda: get(f"{receiver.url}/ready").status == 200, timeout=30, what="ready again")
    assert post_json(url, {"id": "during"}).status == 202  # the 503'd event was not stored
    assert post_json(url, {"id": "before"}).status == 200
    assert get(f"{url}/pending").json["pending"] == 2


def test_sqlite_file_that_cannot_be_created_gives_503(start_receiver, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    receiver = start_receiver(f"sqlite:///{blocker}/inbox.sqlite3")
    assert_unavailable(get(f"{receiver.url}/ready"))
    assert_unavailable(post_json(f"{receiver.url}/webhook/src", {"id": "e1"}))


def test_sqlite_locked_by_another_writer_gives_503_then_recovers(start_receiver, tmp_path):
    path = tmp_path / "inbox.sqlite3"
    receiver = start_receiver(f"sqlite:///{path}?timeout=0.3", ready_path="/ready")
    url = f"{receiver.url}/webhook/src"
    assert post_json(url, {"id": "first"}).status == 202

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock and does not let go
    try:
        assert_unavailable(post_json(url, {"id": "blocked"}))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert post_json(url, {"id": "blocked"}).status == 202  # not stored by the 503'd attempt
    assert get(f"{url}/pending").json["pending"] == 2


def test_a_commit_slower_than_the_request_budget_gives_503(start_receiver, tmp_path):
    """The request gives up after WEBHOOK_INBOX_TIMEOUT_SECONDS; the sender's retry is then safe."""
    path = tmp_path / "inbox.sqlite3"
    receiver = start_receiver(
        f"sqlite:///{path}?timeout=5", env={"WEBHOOK_INBOX_TIMEOUT_SECONDS": "0.5"}, ready_path="/ready"
    )
    url = f"{receiver.url}/webhook/src"
    event_id = str(uuid.uuid4())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        answer = post_json(url, {"id": event_id})
        assert_unavailable(answer)
        assert "0.5 s" in answer.error_reason()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # The retry is either the first store (202) or finds the late commit (200): never two rows.
    assert post_json(url, {"id": event_id}).status in (200, 202)
    assert get(f"{url}/pending").json["pending"] == 1
