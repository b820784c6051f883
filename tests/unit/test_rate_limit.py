"""The receiver's per-client token buckets, and who the client is behind a trusted proxy."""

from __future__ import annotations

from ingestion_patterns.rate_limit import ClientRateLimiter


def test_each_client_has_its_own_bucket_and_waits_when_it_is_empty():
    now = [0.0]
    limiter = ClientRateLimiter(rate=2, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5, "the fourth request waits for the next token (2/s)"
    assert limiter.take("b") == 0.0, "another client is not slowed by the first"
    now[0] += 0.5
    assert limiter.take("a") == 0.0


def test_forgotten_clients_start_with_a_full_bucket_and_memory_stays_bounded():
    limiter = ClientRateLimiter(rate=1, burst=1, max_clients=2, clock=lambda: 0.0)
    for client in ("a", "b", "c"):
        assert limiter.take(client) == 0.0
    assert len(limiter._buckets) == 2
    assert limiter.take("a") == 0.0, "a was forgotten (least recently seen)"
    assert limiter.take("c") > 0, "c is remembered"


def test_the_client_behind_a_trusted_proxy_is_the_last_untrusted_forwarded_address():
    limiter = ClientRateLimiter(rate=1, trusted_proxies=["10.0.0.0/8"])
    assert limiter.client("10.1.2.3", "203.0.113.7, 10.9.9.9") == "203.0.113.7"
    # A client cannot choose its identity by sending its own X-Forwarded-For: only the proxy's entry counts.
    assert limiter.client("10.1.2.3", "198.51.100.1, 203.0.113.7") == "203.0.113.7"
    assert limiter.client("203.0.113.9", "198.51.100.1") == "203.0.113.9", "an untrusted peer is the client"
    assert ClientRateLimiter(rate=1).client("10.1.2.3", "203.0.113.7") == "10.1.2.3", "no proxy trusted"
