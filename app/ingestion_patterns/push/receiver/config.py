"""The receiver's configuration: the webhook part of the settings, plus the signing secrets.

Signing secrets are per source: ``WEBHOOK_SECRET_<SOURCE>`` (the source id upper-cased, ``-`` as
``_``), or a JSON file ``{"source-id": "secret", …}`` named by ``WEBHOOK_SECRETS_FILE`` (e.g. a mounted
Kubernetes Secret). The environment wins over the file. A source without a secret takes unsigned
webhooks.

Declared sources (``push/source.py``: the ``WebhookSource`` defs.yaml files and ``INGEST_SOURCES_FILE``)
pin their scheme, and their secret comes from the variable the declaration names (``secret_env``),
read once at start: a declared scheme whose variable is unset stops the receiver with its name. A
source id no declaration names gets a 404, unless ``WEBHOOK_ACCEPT_UNDECLARED_SOURCES`` is on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...settings import ConfigError, Settings, load_settings, secret_key
from ..source import SourceConfigError, WebhookSourceSpec, environ_secrets, load_webhook_sources, package_defs_folder

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
    sources: Mapping[str, WebhookSourceSpec] = field(default_factory=dict)  # the declared sources by id
    declared_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # source id -> secret
    accept_undeclared: bool = True  # a source id no declaration names is taken (local development)

    def secret_for(self, source_id: str) -> str | None:
        if source_id in self.sources:
            return self.declared_secrets.get(source_id)
        return self.secrets.get(secret_key(source_id))

    def scheme_for(self, source_id: str) -> str | None:
        """The scheme a declared, signed source pins; None: told by the delivery's headers."""
        spec = self.sources.get(source_id)
        return spec.signature if spec is not None and spec.signature != "none" else None

    def tolerance_for(self, source_id: str) -> int:
        spec = self.sources.get(source_id)
        return spec.tolerance_seconds if spec is not None else self.signature_tolerance_seconds

    def is_known(self, source_id: str) -> bool:
        return self.accept_undeclared or source_id in self.sources

    @classmethod
    def from_settings(
        cls, settings: Settings, *, workers: int = 1, environ: Mapping[str, str] | None = None
    ) -> ReceiverConfig:
        """The configuration of one of ``workers`` worker processes (each takes its share of the rate);
        declared secrets are read from ``environ`` (default: this process's environment)."""
        try:
            sources = load_webhook_sources(package_defs_folder(), settings.ingest_sources_file)
            declared_secrets = environ_secrets(sources, environ)
        except SourceConfigError as error:
            raise ConfigError(str(error)) from error
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
            sources=sources,
            declared_secrets=declared_secrets,
            accept_undeclared=settings.webhook_accept_undeclared_sources,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReceiverConfig:
        """The configuration from ``environ`` (default: this process's environment)."""
        return cls.from_settings(load_settings(environ), environ=environ)


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
