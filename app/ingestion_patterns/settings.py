"""Every setting comes from the environment (12-factor); these are the names and local defaults.

The same names are read by the Dagster resources (through ``dg.EnvVar``), the HTTP services and the
CLI, and set by the Helm charts, so one image runs locally and in the cluster.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Absolute, so child processes started in another folder (dg runs in app/) share the same files.
DATA_DIR = Path(os.environ.get("INGEST_DATA_DIR", "data")).resolve()

DEFAULTS: dict[str, str] = {
    "DUCKDB_PATH": str(DATA_DIR / "ingestion_patterns.duckdb"),
    "WEBHOOK_INBOX_URL": f"sqlite:///{DATA_DIR / 'webhook_inbox.sqlite3'}",
    "WEBHOOK_MAX_BODY_BYTES": str(1024 * 1024),
    "WEBHOOK_SIGNATURE_TOLERANCE_SECONDS": "300",
    "WEBHOOK_RETRY_AFTER_SECONDS": "5",
    "WEBHOOK_INBOX_TIMEOUT_SECONDS": "10",
    "SOURCE_API_URL": "http://127.0.0.1:8000",
    "SOURCE_API_TOKEN": "dev-token",
    "PULL_MAX_STALENESS_HOURS": "48",
    "PULL_DUCKDB_MEMORY_LIMIT": "128MB",
    "KAFKA_BOOTSTRAP_SERVERS": "",
    "KAFKA_TOPIC": "transactions",
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "KAFKA_CLIENT_ID": "ingestion-patterns",
    "KAFKA_GROUP_ID": "ingestion-patterns",
    "KAFKA_SASL_MECHANISM": "",
    "KAFKA_SASL_USERNAME": "",
    "KAFKA_SASL_PASSWORD": "",
    "KAFKA_SSL_CAFILE": "",
    "KAFKA_SSL_CERTFILE": "",
    "KAFKA_SSL_KEYFILE": "",
}

SOURCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def get(name: str) -> str:
    """The value of setting ``name``: the environment first, then the local default."""
    return os.environ.get(name) or DEFAULTS.get(name, "")


def apply_defaults() -> None:
    """Put every unset setting into the environment, so ``dg.EnvVar`` resolves locally too."""
    os.environ.setdefault("INGEST_DATA_DIR", str(DATA_DIR))
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
