"""Misbehaviour on demand: rate limiting and injected faults, decided per request."""

from __future__ import annotations

import random

from ingestion_patterns.rate_limit import TokenBucket, retry_after_header

__all__ = ["FaultPlan", "TokenBucket", "retry_after_header"]


class FaultPlan:
    """Which fault, if any, this request suffers."""

    def __init__(
        self, *, error_ratio: float, timeout_ratio: float, truncate_ratio: float, rng: random.Random | None = None
    ):
        self.error_ratio = error_ratio
        self.timeout_ratio = timeout_ratio
        self.truncate_ratio = truncate_ratio
        self._rng = rng or random.Random()

    def draw(self) -> str | None:
        """``"error"``, ``"timeout"``, ``"truncate"`` or None, with the configured probabilities."""
        roll = self._rng.random()
        for name, ratio in (
            ("error", self.error_ratio),
            ("timeout", self.timeout_ratio),
            ("truncate", self.truncate_ratio),
        ):
            if roll < ratio:
                return name
            roll -= ratio
        return None
