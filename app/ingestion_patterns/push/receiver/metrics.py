"""Prometheus metrics of the receiver, right under several gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``ingest webhook-receiver`` sets it up), every worker writes
its counters to files in that directory and ``/metrics`` — whichever worker serves it — adds them
up (prometheus-client's multiprocess mode). Without it (e.g. an app built in-process) the metrics
live in this app's own registry. The pending gauges are read from the inbox at scrape time: the
inbox is shared by all workers, so any worker reports the same, current figure. So are its sizes
(``read_inbox``): rows done (kept for duplicate detection until retention deletes them) and pending,
and the bytes its storage takes (the SQLite file and WAL, or the PostgreSQL table with its indexes).
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from ..inbox import Inbox, InboxSizes, InboxUnavailable, PendingSummary

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# How far behind the shared metric files a worker's counts may be (see ReceiverMetrics).
FLUSH_SECONDS = 0.1

# Request latency buckets around the durable-ack budget (an fsync is a few ms; the target p99 25 ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ReceiverMetrics:
    """The request counters and latency histogram, counted in plain ints on the hot path.

    A request adds to a dict entry (a bucket of the histogram found by bisection); the first one
    after a flush schedules the next flush ``FLUSH_SECONDS`` later, which writes what changed into
    the prometheus metrics, so under load one file write serves hundreds of requests instead of
    three per request (a prometheus_client ``inc``/``observe`` takes a lock, checks the pid and
    writes the multiprocess file each time: a quarter of the no-op path's CPU; a flush per loop
    pass still cost the no-op path 3 µs per request). ``render`` flushes first, so this worker's
    own figures are never behind; another worker's are behind at most ``FLUSH_SECONDS`` (a scrape
    interval is seconds), and each worker flushes on shutdown.
    """

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR_ENV) or None
        # In multiprocess mode values go to the shared files, not to a registry.
        self.registry = None if self.multiprocess_dir else CollectorRegistry()
        self.accepted = Counter(
            "webhook_accepted", "Webhooks committed to the inbox (202).", ["source_id"], registry=self.registry
        )
        self.duplicates = Counter(
            "webhook_duplicates",
            "Webhooks whose event id the inbox already held (200).",
            ["source_id"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "webhook_rejected", "Webhooks refused, by reason (4xx/503).", ["reason"], registry=self.registry
        )
        self.latency = Histogram(
            "webhook_request_duration_seconds",
            "Time to answer POST /webhook/{source_id}, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Not yet flushed: per label value, a count; per outcome, one count per bucket (+Inf last)
        # and then the sum of the seconds.
        self._accepted: dict[str, int] = {}
        self._duplicates: dict[str, int] = {}
        self._rejected: dict[str, int] = {}
        self._latency: dict[str, list[float]] = {}
        self._flush_scheduled = False

    # -- the hot path --------------------------------------------------------------------------------

    def answered(self, outcome: str, label: str, seconds: float) -> None:
        """One answered POST: counted by ``label`` (the source id when accepted or a duplicate, else
        the rejection's reason) and its latency by ``outcome``, in one call per request."""
        counts = (
            self._accepted if outcome == "accepted" else self._duplicates if outcome == "duplicate" else self._rejected
        )
        counts[label] = counts.get(label, 0) + 1
        pending = self._latency.get(outcome)
        if pending is None:
            pending = self._latency[outcome] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        pending[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le is inclusive: the first bound >= seconds
        pending[-1] += seconds
        self._schedule_flush()

    def count_rejected(self, reason: str) -> None:
        """A request refused before it was handled (rate limited): counted, its latency not observed."""
        self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no loop (a direct call): flush now
                self.flush()
                return
            self._flush_scheduled = True

    def flush(self) -> None:
        """Write the counts taken since the last flush into the prometheus metrics."""
        self._flush_scheduled = False
        for pending, metric in (
            (self._accepted, self.accepted),
            (self._duplicates, self.duplicates),
            (self._rejected, self.rejected),
        ):
            for label, count in pending.items():
                metric.labels(label).inc(count)
            pending.clear()
        for outcome, counts in self._latency.items():
            child = self.latency.labels(outcome)
            # prometheus_client's Histogram has no batch observe: add to its per-bucket values (not
            # cumulative; the exposition accumulates them) and its sum, as ``observe`` does one at a time.
            for bucket, observed in zip(child._buckets, counts, strict=False):
                if observed:
                    bucket.inc(observed)
            child._sum.inc(counts[-1])
        self._latency.clear()

    # -- /metrics ------------------------------------------------------------------------------------

    def render(self, pending: list[PendingSummary] | None, sizes: InboxSizes | None = None) -> tuple[bytes, str]:
        """The exposition text: request metrics (all workers) plus the inbox's pending gauges and,
        when given, its sizes.

        ``pending`` is None when the inbox could not be read; ``webhook_inbox_up`` then says 0.
        """
        self.flush()
        if self.registry is None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
        else:
            registry = self.registry
        inbox_registry = CollectorRegistry()
        inbox_registry.register(_InboxSnapshot(pending, sizes))
        return generate_latest(registry) + generate_latest(inbox_registry), CONTENT_TYPE_LATEST


class _InboxSnapshot:
    """A one-scrape collector for the inbox figures read just before the scrape."""

    def __init__(self, pending: list[PendingSummary] | None, sizes: InboxSizes | None = None):
        self._pending = pending
        self._sizes = sizes

    def collect(self):
        up = GaugeMetricFamily("webhook_inbox_up", "1 when the inbox answered this scrape.")
        up.add_metric([], 0 if self._pending is None else 1)
        yield up
        count = GaugeMetricFamily(
            "webhook_inbox_pending", "Webhooks in the inbox not yet processed.", labels=["source_id"]
        )
        age = GaugeMetricFamily(
            "webhook_inbox_oldest_pending_age_seconds", "Age of the oldest pending webhook.", labels=["source_id"]
        )
        now = datetime.now(UTC)
        for summary in self._pending or []:
            count.add_metric([summary.source_id], summary.count)
            age.add_metric([summary.source_id], summary.oldest_age_seconds(now) or 0.0)
        yield count
        yield age
        if self._sizes is not None:
            rows = GaugeMetricFamily(
                "webhook_inbox_rows",
                "Rows in the inbox: done (landed, kept for duplicate detection until retention) and pending.",
                labels=["state"],
            )
            rows.add_metric(["done"], self._sizes.done)
            rows.add_metric(["pending"], self._sizes.pending)
            yield rows
            if self._sizes.storage_bytes is not None:
                yield GaugeMetricFamily(
                    "webhook_inbox_storage_bytes",
                    "Bytes the inbox takes: the SQLite file and its WAL, or the PostgreSQL table with its indexes.",
                    value=self._sizes.storage_bytes,
                )


async def read_inbox(inbox: Inbox) -> tuple[list[PendingSummary] | None, InboxSizes | None]:
    """The inbox figures for one scrape (``render``'s arguments): None for what could not be read."""
    try:
        pending = await inbox.pending_sources()
    except InboxUnavailable:
        return None, None
    try:
        sizes = await inbox.sizes()
    except InboxUnavailable:
        sizes = None
    return pending, sizes
