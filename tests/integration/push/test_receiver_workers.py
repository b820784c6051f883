"""Two gunicorn workers on one SQLite inbox file: every webhook lands once and /metrics adds up."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import pytest
from webhook_http import get, metric_value

from ingestion_devtools.webhook_simulator import send_webhooks
from ingestion_patterns.push.receiver.metrics import FLUSH_SECONDS

pytestmark = pytest.mark.integration


def test_two_workers_share_one_sqlite_inbox(start_receiver, make_inbox_url):
    receiver = start_receiver(make_inbox_url("sqlite"), workers=2, ready_path="/ready")
    summary = asyncio.run(send_webhooks(receiver.url, "two", 2000, concurrency=32))
    assert (len(summary.accepted), summary.duplicates, summary.rejected, summary.failed) == (2000, [], [], [])

    # The same event sent 40 times at once, spread over both processes: stored once.
    event_id = str(uuid.uuid4())
    copies = asyncio.run(send_webhooks(receiver.url, "two", 0, event_ids=[event_id] * 40, concurrency=40))
    assert (copies.accepted, len(copies.duplicates)) == ([event_id], 39)

    # Both workers take requests (each writes its own metrics file). The kernel hands a connection to
    # whichever worker accepts first, so on a busy machine one worker can take a whole burst (seen in
    # CI): more bursts, each on new connections, until the other has taken some too.
    metrics_dir = Path(receiver.env["PROMETHEUS_MULTIPROC_DIR"])

    def worker_pids() -> set[str]:
        return {
            match.group(1) for p in metrics_dir.glob("counter_*.db") if (match := re.search(r"_(\d+)\.db$", p.name))
        }

    stored = 2001
    for _ in range(40):
        if len(worker_pids()) == 2:
            break
        more = asyncio.run(send_webhooks(receiver.url, "two", 50, concurrency=16))
        assert len(more.accepted) == 50, more
        stored += 50
    assert len(worker_pids()) == 2, worker_pids()

    pending = get(f"{receiver.url}/webhook/two/pending").json
    assert pending["pending"] == stored
    # ... and whichever worker answers /metrics reports the sum over both, once the other worker has
    # written its last counts (within FLUSH_SECONDS of them).
    time.sleep(2 * FLUSH_SECONDS)
    for _ in range(6):
        text = get(f"{receiver.url}/metrics").body.decode()
        assert metric_value(text, "webhook_accepted_total", 'source_id="two"') == stored
        assert metric_value(text, "webhook_duplicates_total", 'source_id="two"') == 39
        assert metric_value(text, "webhook_inbox_pending", 'source_id="two"') == stored
