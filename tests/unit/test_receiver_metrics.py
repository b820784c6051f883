"""The receiver's metrics: counted in plain ints per request, written to prometheus once per
FLUSH_SECONDS, and rendered exactly (this worker's counts are flushed before every render)."""

from __future__ import annotations

import asyncio
import re

from ingestion_patterns.push.receiver.metrics import FLUSH_SECONDS, ReceiverMetrics


def _value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} not in:\n{text}"
    return float(match.group(1))


def test_counts_and_latency_buckets_render_exactly(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ReceiverMetrics()
    for seconds in (0.001, 0.0011, 0.02):  # on a bound (le is inclusive), past it, mid-range
        metrics.answered("accepted", "a", seconds)
    metrics.answered("duplicate", "a", 30.0)  # past all bounds
    metrics.answered("rejected", "malformed_json", 0.0005)
    metrics.count_rejected("rate_limited")  # refused before handling: counted, no latency
    text = metrics.render([])[0].decode()
    assert _value(text, 'webhook_accepted_total{source_id="a"}') == 3
    assert _value(text, 'webhook_duplicates_total{source_id="a"}') == 1
    assert _value(text, 'webhook_rejected_total{reason="malformed_json"}') == 1
    assert _value(text, 'webhook_rejected_total{reason="rate_limited"}') == 1
    bucket = 'webhook_request_duration_seconds_bucket{le="%s",outcome="%s"}'
    assert _value(text, bucket % ("0.001", "accepted")) == 1
    assert _value(text, bucket % ("0.0025", "accepted")) == 2
    assert _value(text, bucket % ("0.025", "accepted")) == 3
    assert _value(text, bucket % ("+Inf", "accepted")) == 3
    assert _value(text, bucket % ("10.0", "duplicate")) == 0
    assert _value(text, bucket % ("+Inf", "duplicate")) == 1
    assert _value(text, bucket % ("0.001", "rejected")) == 1
    assert _value(text, 'webhook_request_duration_seconds_count{outcome="accepted"}') == 3
    assert abs(_value(text, 'webhook_request_duration_seconds_sum{outcome="accepted"}') - 0.0221) < 1e-9
    assert _value(text, 'webhook_request_duration_seconds_count{outcome="duplicate"}') == 1
    assert _value(text, 'webhook_request_duration_seconds_count{outcome="rejected"}') == 1
    # A second render adds nothing twice.
    assert metrics.render([])[0].decode() == metrics.render([])[0].decode()


def test_one_flush_per_interval_writes_the_counts(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ReceiverMetrics()
    flushes = 0
    flush = metrics.flush

    def counted_flush() -> None:
        nonlocal flushes
        flushes += 1
        flush()

    metrics.flush = counted_flush

    async def scenario() -> None:
        for _ in range(3):  # requests over several loop passes, within one interval
            for _ in range(100):
                metrics.answered("accepted", "b", 0.002)
            await asyncio.sleep(0)
        assert flushes == 0  # nothing written yet: one flush is scheduled FLUSH_SECONDS after the first
        assert metrics.accepted.labels("b")._value.get() == 0
        await asyncio.sleep(FLUSH_SECONDS * 1.5)
        assert flushes == 1
        assert metrics.accepted.labels("b")._value.get() == 300
        metrics.answered("accepted", "b", 0.002)  # the next answer schedules the next flush
        await asyncio.sleep(FLUSH_SECONDS * 1.5)
        assert (flushes, metrics.accepted.labels("b")._value.get()) == (2, 301)

    asyncio.run(scenario())
