"""The receiver's configuration: the webhook part of the settings, plus the signing secrets.

Signing secrets are per source: ``WEBHOOK_SECRET_<SOURCE>`` (the source id upper-cased, ``-`` as
``_``), or a JSON file ``{"source-id": "secret", …}`` named by ``WEBHOOK_SECRETS_FILE`` (e.g. a mounted
Kubernetes Secret). The environment wins over the file. A source without a secret takes unsigned
webhooks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...settings import ConfigError, Settings, load_settings, secret_key

__all__ = ["ConfigError", "ReceiverConfig", "load_secrets"]


@dataclass(frozen=True)
class ReceiverConfig:
    inbox_url: str
    max_body_bytes: int = 1024 * 1024
    signature_tolerance_seconds: int = 300
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # secret_key -> secret
    retry_after_seconds: int = 5  # what a 503 tells the sender to wait
    inbox_timeout_seconds: float = 10.0  # the longest a request waits for its commit before 503
    admin_token: str = field(default="", repr=False)  # Bearer token for ?peek; empty: peek is off
    rate_limit_per_second: float = 0.0  # per client address and worker process; 0: no limit
    rate_limit_burst: int = 0
    trusted_proxies: tuple[str, ...] = ()

    def secret_for(self, source_id: str) -> str | None:
        return self.secrets.get(secret_key(source_id))

    @classmethod
    def from_settings(cls, settings: Settings, *, workers: int = 1) -> ReceiverConfig:
        """The configuration of one of ``workers`` worker processes (each takes its share of the rate)."""
        return cls(
            inbox_url=settings.webhook_inbox_url,
            max_body_bytes=settings.webhook_max_body_bytes,
            signature_tolerance_seconds=settings.webhook_signature_tolerance_seconds,
            secrets=load_secrets(settings),
            retry_after_seconds=settings.webhook_retry_after_seconds,
            inbox_timeout_seconds=settings.webhook_inbox_timeout_seconds,
            admin_token=settings.webhook_admin_token,
            rate_limit_per_second=settings.webhook_rate_limit_per_second / workers,
            rate_limit_burst=-(-settings.webhook_rate_limit_burst // workers),  # rounded up: 0 stays 0
            trusted_proxies=tuple(p.strip() for p in settings.webhook_trusted_proxies.split(",") if p.strip()),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReceiverConfig:
        """The configuration from ``environ`` (default: this process's environment)."""
        return cls.from_settings(load_settings(environ))


def load_secrets(settings: Settings) -> dict[str, str]:
    """Secrets keyed by ``secret_key(source)``: from the file first, then the environment over it."""
    secrets: dict[str, str] = {}
    if path := settings.webhook_secrets_file:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"WEBHOOK_SECRETS_FILE={path}: cannot read a JSON object ({error})") from error
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
        ):
            raise ConfigError(f"WEBHOOK_SECRETS_FILE={path}: must be a JSON object of source id -> non-empty secret")
        secrets.update({secret_key(source): secret for source, secret in data.items()})
    secrets.update(settings.webhook_secrets)
    return secrets
