"""Every setting of the platform in one typed model, read from the environment (12-factor).

``Settings()`` reads the environment once, at an entry point (the code location, the CLI, the
receiver), and the result is passed down; nothing reads it at import time or writes it back. The
field names are the environment names in lower case (``DUCKDB_PATH`` -> ``duckdb_path``); the same
names are set by the Helm charts, so one image runs locally and in the cluster. Unset, a field takes
its local default: files under ``INGEST_DATA_DIR`` (``./data``), the mock API, no Kafka.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SOURCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Per-source webhook signing secrets: WEBHOOK_SECRET_<SOURCE> (see ``secret_key``).
SECRET_ENV_PREFIX = "WEBHOOK_SECRET_"


_DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[wdhms])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(value: Any) -> float:
    """A duration in seconds from ``7d``, ``12h``, ``90m``, ``45s``, ``1w``, ``1d12h`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a duration: {value!r} (e.g. 7d, 12h, 30m, 45s, or seconds)")
    return float(sum(float(amount) * _DURATION_UNITS[unit] for amount, unit in _DURATION_PART.findall(text)))


#: Seconds, read from a duration such as ``7d`` (``parse_duration``); written back as seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]

_DAY = 86_400.0


def secret_key(source_id: str) -> str:
    """The normalised name under which ``source_id``'s secret is looked up (env var suffix)."""
    return source_id.upper().replace("-", "_")


class Settings(BaseSettings):
    """The platform's settings; see docs/architecture.md ("Configuration") for what each one does."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    ingest_data_dir: Path = Field(default=Path("data"), description="Local files (warehouse, inbox, logs).")

    # --- the warehouse
    duckdb_path: Path | None = Field(
        default=None, description="DuckDB file; default INGEST_DATA_DIR/ingestion_patterns.duckdb"
    )

    # --- push: the webhook receiver and its inbox
    webhook_inbox_url: str = Field(default="", description="sqlite:///path or postgresql://…; default a SQLite file")
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    webhook_signature_tolerance_seconds: int = Field(default=300, ge=1)
    webhook_retry_after_seconds: int = Field(default=5, ge=0)
    webhook_inbox_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_secrets_file: str = Field(default="", description='JSON {"source-id": "secret"} (a mounted Secret)')
    webhook_admin_token: str = Field(default="", repr=False, description="Bearer token for ?peek; empty: peek is off")
    webhook_rate_limit_per_second: float = Field(default=0, ge=0, description="Requests/s per client IP; 0: no limit")
    webhook_rate_limit_burst: int = Field(default=0, ge=0, description="Token bucket size; 0: the per-second rate")
    webhook_trusted_proxies: str = Field(
        default="", description="CIDRs of proxies whose X-Forwarded-For names the client (the ingress controller's)"
    )
    webhook_inbox_lease_seconds: int = Field(default=600, ge=1, description="How long a run's claim holds its rows")
    webhook_accept_undeclared_sources: bool = Field(
        default=True,
        description="Accept a source id no declaration names (local development); off, it gets a 404. Off in the chart.",
    )
    ingest_sources_file: str = Field(
        default="", description="A YAML file of declared sources (`webhooks:` …), e.g. the chart's mounted ConfigMap"
    )
    # Filled from WEBHOOK_SECRET_<SOURCE> variables by ``_collect_secrets``; keyed by ``secret_key``.
    webhook_secrets: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict, repr=False, exclude=True)

    # --- pull: the source API
    source_api_url: str = "http://127.0.0.1:8000"
    source_api_token: str = Field(default="dev-token", repr=False)
    # The mock API's /v1/items key, which the shipped `items` RestApiSource reads as SOURCE_API_KEY.
    source_api_key: str = Field(default="dev-api-key", repr=False)
    pull_max_staleness_hours: float = Field(default=48, gt=0)
    pull_duckdb_memory_limit: str = "128MB"

    # --- poll: Kafka
    kafka_bootstrap_servers: str = ""
    kafka_topic: str = "transactions"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_client_id: str = "ingestion-patterns"
    kafka_group_id: str = "ingestion-patterns"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = Field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""

    # --- retention (maintenance/): what is deleted after how long, by retention_job every hour
    webhook_inbox_retention: Duration = Field(
        default=7 * _DAY, gt=0, description="Landed inbox rows are kept this long (the duplicate window): 7d, 12h, s"
    )
    pull_raw_retention: Duration = Field(
        default=7 * _DAY, gt=0, description="raw_extract pages loaded into final_data are kept this long"
    )

    # --- alerting (alerting/): where failures and stuck sources are posted
    alert_webhook_url: str = Field(
        default="", repr=False, description='Slack-compatible incoming webhook (POST {"text": …}); empty: no alerts'
    )
    dagster_ui_url: str = Field(default="http://127.0.0.1:3000", description="The UI's base URL, for run links")
    alert_stuck_after: Duration = Field(
        default=3_600, gt=0, description="A source pending (webhooks) or not moving (Kafka lag) this long alerts"
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_secrets(cls, values: Any) -> Any:
        if isinstance(values, dict) and "webhook_secrets" not in values:
            values = {**values, "webhook_secrets": secrets_from(os.environ)}
        return values

    @model_validator(mode="after")
    def _local_defaults(self) -> Settings:
        # Absolute, so child processes started in another folder (dg runs in app/) share the same files.
        data_dir = self.ingest_data_dir.resolve()
        object.__setattr__(self, "ingest_data_dir", data_dir)
        if self.duckdb_path is None:
            object.__setattr__(self, "duckdb_path", data_dir / "ingestion_patterns.duckdb")
        if not self.webhook_inbox_url:
            object.__setattr__(self, "webhook_inbox_url", f"sqlite:///{data_dir / 'webhook_inbox.sqlite3'}")
        return self

    @property
    def warehouse_path(self) -> Path:
        assert self.duckdb_path is not None  # set by _local_defaults
        return self.duckdb_path

    def env(self) -> dict[str, str]:
        """These settings as environment variables, for a child process (a service the CLI starts)."""
        values = self.model_dump(exclude={"webhook_secrets"})
        env = {name.upper(): str(value) for name, value in values.items() if value is not None}
        env.update({f"{SECRET_ENV_PREFIX}{key}": secret for key, secret in self.webhook_secrets.items()})
        return env


def secrets_from(environ: Mapping[str, str]) -> dict[str, str]:
    """``WEBHOOK_SECRET_<SOURCE>`` variables as ``secret_key(source) -> secret``."""
    return {
        secret_key(name[len(SECRET_ENV_PREFIX) :]): value
        for name, value in environ.items()
        if name.startswith(SECRET_ENV_PREFIX) and len(name) > len(SECRET_ENV_PREFIX) and value
    }


class ConfigError(ValueError):
    """A setting has a value the platform cannot use; raised at start, never per request."""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``environ`` (default: this process's environment), read once.

    A value that does not fit is a ``ConfigError`` naming its environment variable.
    """
    try:
        if environ is None:
            return Settings()
        values: dict[str, Any] = {
            name: environ[name.upper()] for name in Settings.model_fields if environ.get(name.upper())
        }
        values["webhook_secrets"] = secrets_from(environ)
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise ConfigError(problems) from None
