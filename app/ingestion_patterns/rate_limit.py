"""Token buckets: the receiver's per-client rate limit (and the mock API's, which imports them)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class TokenBucket:
    """``rate`` requests per second with bursts of ``burst``; one bucket per worker process."""

    def __init__(self, rate: float, burst: int = 0, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.capacity = float(burst or max(1.0, rate))
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock()

    def take(self) -> float:
        """0 when the request may proceed, else the seconds until a token is available."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After carries whole seconds (RFC 9110); never advertise 0."""
    return str(max(1, math.ceil(wait_seconds)))


class ClientRateLimiter:
    """One token bucket per client address, the least recently seen forgotten past ``max_clients``
    (a forgotten client starts again with a full bucket, which errs on the side of serving it).

    Behind a proxy every request comes from the proxy's address, so for a peer in ``trusted_proxies``
    the client is the last address in X-Forwarded-For that is not itself a trusted proxy."""

    def __init__(
        self,
        rate: float,
        burst: int = 0,
        *,
        trusted_proxies: Iterable[str] = (),
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rate, self.burst, self.max_clients, self._clock = rate, burst, max_clients, clock
        self.trusted = [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in trusted_proxies if cidr.strip()]
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.enabled = rate > 0  # read on every webhook: an attribute, not a property

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address the limit applies to."""
        address = peer or "unknown"
        if not self.trusted or not forwarded_for or not self._is_trusted(address):
            return address
        for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
            if not self._is_trusted(hop):
                return hop
        return address

    def take(self, client: str) -> float:
        """0 when ``client`` may proceed, else the seconds until it may."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate, self.burst, clock=self._clock)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return bucket.take()

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)
