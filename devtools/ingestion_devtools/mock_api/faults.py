"""Misbehaviour on demand: rate limiting and injected faults, decided per request."""

from __future__ import annotations

import math
import random
import time


class TokenBucket:
    """``rate`` requests per second with bursts of ``burst``; one bucket per worker process."""

    def __init__(self, rate: float, burst: int = 0, clock=time.monotonic):
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


class FaultPlan:
    """Which fault, if any, this request suffers."""

    def __init__(self, *, error_ratio: float, timeout_ratio: float, truncate_ratio: float,
                 rng: random.Random | None = None):
        self.error_ratio = error_ratio
        self.timeout_ratio = timeout_ratio
        self.truncate_ratio = truncate_ratio
        self._rng = rng or random.Random()

    def draw(self) -> str | None:
        """``"error"``, ``"timeout"``, ``"truncate"`` or None, with the configured probabilities."""
        roll = self._rng.random()
        for name, ratio in (("error", self.error_ratio), ("timeout", self.timeout_ratio),
                            ("truncate", self.truncate_ratio)):
            if roll < ratio:
                return name
            roll -= ratio
        return None
