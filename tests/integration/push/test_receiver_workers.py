"""Two gunicorn workers on one SQLite inbox file: every webhook lands once and /metrics adds up."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from webhook_http import get, metric_value

from ingestion_devtools.webhook_simulator import send_webhooks

pytestmark = pytest.mark.integration


def test_two_workers_share_one_sqlite_inbox(start_receiver, make_inbox_url):
    receiver = start_receiver(make_inbox_url("sqlite"), workers=2, ready_path="/ready")
    summary = asyncio.run(send_webhooks(receiver.url, "two", 2000, concurrency=32))
    assert (len(summary.accepted), summary.duplicates, summary.rejected, summary.failed) == (2000, [], [], [])

    # The same event sent 40 times at once, spread over both processes: stored once.
    event_id = str(uuid.uuid4())
    copies = asyncio.run(send_webhooks(receiver.url, "two", 0, event_ids=[event_id] * 40, concurrency=40))
    assert (copies.accepted, len(copies.duplicates)) == ([event_id], 39)

    pending = get(f"{receiver.url}/webhook/two/pending").json
    assert pending["pending"] == 2001

    # Both workers took requests (each writes its own metrics file) ...
    metrics_dir = receiver.env["PROMETHEUS_MULTIPROC_DIR"]
    pids = {re.search(r"_(\d+)\.db$", p.name).group(1) for p in Path(metrics_dir).glob("counter_*.db")}
    assert len(pids) == 2, pids
    # ... and whichever worker answers /metrics reports the sum over both.
    for _ in range(6):
        text = get(f"{receiver.url}/metrics").body.decode()
        assert metric_value(text, "webhook_accepted_total", 'source_id="two"') == 2001
        assert metric_value(text, "webhook_duplicates_total", 'source_id="two"') == 39
        assert metric_value(text, "webhook_inbox_pending", 'source_id="two"') == 2001
