"""The receiver's configuration, read once from the environment (12-factor).

Signing secrets are per source: ``WEBHOOK_SECRET_<SOURCE>`` (the source id upper-cased, ``-`` as
``_``), or a JSON file ``{"source-id": "secret", …}`` named by ``WEBHOOK_SECRETS_FILE`` (e.g. a mounted
Kubernetes Secret). The environment wins over the file. A source without a secret takes unsigned
webhooks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import settings

SECRET_ENV_PREFIX = "WEBHOOK_SECRET_"
SECRETS_FILE_ENV = "WEBHOOK_SECRETS_FILE"


class ConfigError(ValueError):
    """A setting has a value the receiver cannot use; raised at start, never per request."""


def secret_key(source_id: str) -> str:
    """The normalised name under which ``source_id``'s secret is looked up (env var suffix)."""
    return source_id.upper().replace("-", "_")


@dataclass(frozen=True)
class ReceiverConfig:
    inbox_url: str
    max_body_bytes: int = 1024 * 1024
    signature_tolerance_seconds: int = 300
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # secret_key -> secret
    retry_after_seconds: int = 5  # what a 503 tells the sender to wait
    inbox_timeout_seconds: float = 10.0  # the longest a request waits for its commit before 503

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ConfigError("WEBHOOK_MAX_BODY_BYTES must be a positive number of bytes")
        if self.signature_tolerance_seconds < 1:
            raise ConfigError("WEBHOOK_SIGNATURE_TOLERANCE_SECONDS must be at least 1")
        if self.inbox_timeout_seconds <= 0:
            raise ConfigError("WEBHOOK_INBOX_TIMEOUT_SECONDS must be positive")
        normalised = {secret_key(source): secret for source, secret in self.secrets.items()}
        object.__setattr__(self, "secrets", normalised)

    def secret_for(self, source_id: str) -> str | None:
        return self.secrets.get(secret_key(source_id))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ReceiverConfig":
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(name) or settings.DEFAULTS.get(name) or default

        return cls(
            inbox_url=get("WEBHOOK_INBOX_URL"),
            max_body_bytes=_int(get("WEBHOOK_MAX_BODY_BYTES"), "WEBHOOK_MAX_BODY_BYTES"),
            signature_tolerance_seconds=_int(
                get("WEBHOOK_SIGNATURE_TOLERANCE_SECONDS"), "WEBHOOK_SIGNATURE_TOLERANCE_SECONDS"),
            secrets=load_secrets(env),
            retry_after_seconds=_int(get("WEBHOOK_RETRY_AFTER_SECONDS", "5"), "WEBHOOK_RETRY_AFTER_SECONDS"),
            inbox_timeout_seconds=_float(
                get("WEBHOOK_INBOX_TIMEOUT_SECONDS", "10"), "WEBHOOK_INBOX_TIMEOUT_SECONDS"),
        )


def load_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """Secrets keyed by ``secret_key(source)``: from the file first, then the environment over it."""
    secrets: dict[str, str] = {}
    if path := env.get(SECRETS_FILE_ENV):
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"{SECRETS_FILE_ENV}={path}: cannot read a JSON object ({error})") from error
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
        ):
            raise ConfigError(f"{SECRETS_FILE_ENV}={path}: must be a JSON object of source id -> non-empty secret")
        secrets.update({secret_key(source): secret for source, secret in data.items()})
    for name, value in env.items():
        if name.startswith(SECRET_ENV_PREFIX) and len(name) > len(SECRET_ENV_PREFIX) and value:
            secrets[secret_key(name[len(SECRET_ENV_PREFIX):])] = value
    return secrets


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
