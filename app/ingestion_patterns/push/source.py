"""A webhook source, declared: ``WebhookSourceSpec``, and the declarations a deployment holds.

Plain pydantic, no Dagster: the receiver reads the same declarations the code location does
(docs/architecture.md, "Declared sources"). A declaration comes from a ``defs.yaml`` whose ``type``
is the ``WebhookSource`` component (its ``attributes``), or from the ``webhooks:`` list of the file
``INGEST_SOURCES_FILE`` names (the chart's ConfigMap). The receiver answers 404 for a source id that
is not declared, unless ``WEBHOOK_ACCEPT_UNDECLARED_SOURCES`` is on (local development).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import declarations
from ..declarations import SourceConfigError as SourceConfigError
from ..declarations import package_defs_folder as package_defs_folder
from ..settings import SOURCE_ID_PATTERN

SOURCE_ID = SOURCE_ID_PATTERN  # the receiver's own rule for the path segment
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Scheme = Literal["none", "standard-webhooks", "github", "stripe", "shopify", "slack"]
# Schemes whose signature carries a timestamp, so a tolerance applies.
TIMESTAMPED: frozenset[str] = frozenset({"standard-webhooks", "stripe", "slack"})
# The shared tables' names: a source that names its own table names another.
RESERVED_TABLES: frozenset[str] = frozenset({"webhook_data", "webhook_rejects"})
# The `type:` of a defs.yaml that declares a webhook source.
COMPONENT_TYPE = "ingestion_patterns.components.WebhookSource"


class FieldFrom(BaseModel):
    """Where a value comes from: a request header or a path into the JSON payload (dots between keys)."""

    model_config = ConfigDict(extra="forbid")
    header: str | None = Field(default=None, description="A request header, e.g. X-Request-Id.")
    json_path: str | None = Field(default=None, description="Dotted keys into the payload, e.g. event.id.")

    @model_validator(mode="after")
    def _one_of(self) -> FieldFrom:
        if (self.header is None) == (self.json_path is None):
            raise ValueError("give exactly one of header or json_path")
        return self

    def read(self, headers: Mapping[str, str], payload: Mapping[str, Any]) -> str | None:
        if self.header is not None:
            value = headers.get(self.header, "").strip()
            return value or None
        found: Any = payload
        for key in (self.json_path or "").split("."):
            if not isinstance(found, Mapping) or key not in found:
                return None
            found = found[key]
        if isinstance(found, bool) or not isinstance(found, (str, int, float)):
            return None
        text = str(found).strip()
        return text or None


class DagsterNames(BaseModel):
    """Names that replace the ones made from the source id; the shipped reference instance keeps the
    names the reference example pins with them, and nothing else should need them."""

    model_config = ConfigDict(extra="forbid")
    asset: str | None = Field(default=None, description="The asset's name; default <source>_webhooks.")
    job: str | None = Field(default=None, description="The job's name; default <source>_webhook_job.")


class WebhookSourceSpec(BaseModel):
    """One webhook source: what its deliveries look like and how they are checked and landed."""

    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(description="The path segment senders POST to: /webhook/<source_id>.")
    signature: Scheme = Field(
        default="none",
        description="The signature scheme every delivery must carry (each provider's documented algorithm); "
        "none: unsigned deliveries are accepted.",
    )
    secret_env: str | None = Field(
        default=None, description="The environment variable that holds the signing secret (required with a scheme)."
    )
    tolerance_seconds: int = Field(
        default=300,
        ge=1,
        description="How far a signed timestamp may be from now (standard-webhooks, stripe, slack): the replay window.",
    )
    event_id: FieldFrom | None = Field(
        default=None,
        description="Where the event id comes from; default: webhook-id, X-GitHub-Delivery, X-Shopify-Webhook-Id, "
        'then the payload\'s "id", else a new UUID.',
    )
    event_type: FieldFrom | None = Field(
        default=None, description='Where the event type comes from; default: the payload\'s "type" or "event_type".'
    )
    required_fields: list[str] = Field(
        default_factory=lambda: ["timestamp", "data"],
        description="Top-level keys every payload must have; a payload without one becomes a reject with the reason.",
    )
    json_schema: str | None = Field(
        default=None,
        description="A JSON Schema file (relative to the defs.yaml's folder, or the sources file's) every payload "
        "must match, beside required_fields; a payload that does not is a reject naming the first violation.",
    )
    batch_size: int = Field(default=5000, ge=1, description="Payloads claimed and landed per transaction.")
    table: str | None = Field(
        default=None,
        description="The source's own table, ingestion.<table> (rejects in ingestion.<table>_rejects); default: "
        "the shared ingestion.webhook_data, keyed by source_id, and ingestion.webhook_rejects.",
    )
    # Dagster's side only (the receiver ignores them).
    names: DagsterNames = Field(default_factory=DagsterNames, description="Asset and job names, when not the default.")
    lands_undeclared_sources: bool = Field(
        default=False,
        description="This source's job also lands sources the receiver accepted without a declaration "
        "(WEBHOOK_ACCEPT_UNDECLARED_SOURCES, local development), with the default rules.",
    )

    @model_validator(mode="after")
    def _checked(self) -> WebhookSourceSpec:
        if not SOURCE_ID.match(self.source_id):
            raise ValueError(
                f"source_id {self.source_id!r}: 1-64 letters, digits, '_' or '-' (the path segment of /webhook/<source_id>)"
            )
        if self.signature != "none" and not self.secret_env:
            raise ValueError(f"signature {self.signature!r} needs secret_env (the variable that holds the secret)")
        if self.table is not None and (not declarations.TABLE_NAME.match(self.table) or self.table in RESERVED_TABLES):
            raise ValueError(
                f"table {self.table!r}: lower-case letters, digits and '_', starting with a letter, and not "
                f"one of {', '.join(sorted(RESERVED_TABLES))} (leave it out for the shared table)"
            )
        if self.secret_env is not None and not ENV_NAME.match(self.secret_env):
            raise ValueError(f"secret_env {self.secret_env!r} is not an environment variable name")
        return self

    def payload_schema(self, folder: Path | None) -> Validator | None:
        """The declared JSON Schema, read from ``json_schema`` (relative to ``folder``) and checked, as a
        validator; an unreadable or invalid schema is a ``SourceConfigError`` naming the file."""
        if self.json_schema is None:
            return None
        path = Path(self.json_schema)
        path = path if path.is_absolute() or folder is None else folder / path
        try:
            schema = json.loads(path.read_text())
            validator = validator_for(schema)
            validator.check_schema(schema)
        except (OSError, ValueError, SchemaError) as error:
            message = getattr(error, "message", None) or str(error)
            raise SourceConfigError(f"webhook source {self.source_id!r}: json_schema {path}: {message}") from None
        return validator(schema)

    def secret(self, environ: Mapping[str, str]) -> str | None:
        """The signing secret from the environment; a scheme whose variable is unset is a ``SourceConfigError``."""
        if self.signature == "none" or self.secret_env is None:
            return None
        secret = environ.get(self.secret_env, "")
        if not secret:
            raise SourceConfigError(
                f"webhook source {self.source_id!r}: {self.secret_env} is not set (its {self.signature} secret)"
            )
        return secret


def declarations_in_defs(defs_folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, attributes)`` of every WebhookSource ``defs.yaml`` under ``defs_folder``."""
    return [(where, fields) for where, fields, _ in declarations.declarations_in_defs(defs_folder, COMPONENT_TYPE)]


def declarations_in_file(path: Path) -> list[tuple[str, Any]]:
    """``(where, fields)`` of each entry of the ``webhooks:`` list in a sources file (the chart's ConfigMap)."""
    return declarations.declarations_in_file(path, "webhooks")


def parse_declarations(found: Iterable[tuple[str, Any]]) -> dict[str, WebhookSourceSpec]:
    """The declared sources by id; a bad declaration or a repeated id is a ``SourceConfigError`` naming where."""
    specs = ((where, declarations.validated(WebhookSourceSpec, where, fields)) for where, fields in found)
    return {
        source_id: spec
        for source_id, (_, spec) in declarations.by_key(specs, lambda s: s.source_id, "source_id").items()
    }


def load_webhook_sources(defs_folder: Path | None, sources_file: str = "") -> dict[str, WebhookSourceSpec]:
    """Every declared webhook source: the ``defs.yaml`` files under ``defs_folder``, then ``sources_file``'s."""
    found = declarations_in_defs(defs_folder) if defs_folder is not None else []
    if sources_file:
        found += declarations_in_file(Path(sources_file))
    return parse_declarations(found)


def environ_secrets(
    sources: Mapping[str, WebhookSourceSpec], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each signed source's secret, read now from ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    return {source_id: secret for source_id, spec in sources.items() if (secret := spec.secret(env))}
