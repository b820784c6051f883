"""A mock SaaS source API: seeded deterministic records that change over time, cursor pagination,
bearer auth, rate limiting and injected faults. ``ingest mock-api`` serves it under gunicorn."""

from .app import create_app
from .config import SCHEMA_MODES, MockApiConfig

__all__ = ["SCHEMA_MODES", "MockApiConfig", "create_app"]
