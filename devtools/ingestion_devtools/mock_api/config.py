"""Configuration of the mock source API: one immutable value handed to ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCHEMA_MODES = ("normal", "renamed", "retyped")
MAX_MUTATION = 1_000_000  # the most records one POST /admin/mutate creates or updates
API_KEY_HEADER = "X-API-Key"  # the header /v1/items reads its API key from


@dataclass(frozen=True)
class MockApiConfig:
    """What the mock API serves and how badly it behaves.

    The data is a pure function of ``seed``, ``records`` and the admin mutations kept in the SQLite
    file at ``state_path``, so every gunicorn worker (and every server sharing that file) serves the
    same records.
    """

    state_path: Path
    token: str = "dev-token"  # bearer token of /v1/records and /admin
    api_key: str = "dev-api-key"  # API key of /v1/items, sent in the X-API-Key header
    records: int = 10_000
    seed: int = 42
    span_days: float = 30.0  # the base records' updated_at spread over the days before start-up
    max_page_size: int = 50_000
    default_page_size: int = 100
    rate_limit: float = 0.0  # requests per second per worker; 0 = unlimited
    rate_burst: int = 0  # bucket size; 0 = max(1, rate_limit)
    latency_ms: float = 0.0  # added to every /v1 request
    fault_5xx_ratio: float = 0.0
    fault_timeout_ratio: float = 0.0
    fault_timeout_seconds: float = 30.0  # how long a "timeout" request hangs before answering 504
    fault_truncate_ratio: float = 0.0
    fault_seed: int | None = None  # seed of the fault dice (per worker), for repeatable tests
    schema_mode: str = "normal"  # initial schema; POST /admin/schema changes it at runtime

    def __post_init__(self) -> None:
        for name in ("fault_5xx_ratio", "fault_timeout_ratio", "fault_truncate_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not self.api_key.strip():
            raise ValueError("api_key must not be empty")
        if self.records < 0:
            raise ValueError(f"records must be >= 0, got {self.records}")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise ValueError("default_page_size must be between 1 and max_page_size")
        if self.schema_mode not in SCHEMA_MODES:
            raise ValueError(f"schema_mode must be one of {SCHEMA_MODES}, got {self.schema_mode!r}")
