"""Where declared sources come from, for every kind (docs/architecture.md, "Declared sources"): the
``defs.yaml`` files of a component type under ``defs/``, and a list in the sources file that
``INGEST_SOURCES_FILE`` names (the chart's ConfigMap: ``webhooks:``, ``rest_apis:``,
``kafka_topics:``). Plain YAML and pydantic, no Dagster: the receiver reads them too. Every error
names the file (and the entry) it is about."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Spec = TypeVar("Spec", bound=BaseModel)
# A declared name that becomes a table (in schema ingestion) and the stem of Dagster names.
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SourceConfigError(ValueError):
    """A declaration is invalid or two declare the same source; the message names the file and field."""


def package_defs_folder() -> Path:
    """The ``defs/`` folder of this package: where the shipped instances' ``defs.yaml`` files live."""
    return Path(__file__).resolve().parent / "defs"


def declarations_in_defs(defs_folder: Path, component_type: str) -> list[tuple[str, dict[str, Any], Path]]:
    """``(where, attributes, folder)`` of every ``defs.yaml`` document of ``component_type`` under ``defs_folder``."""
    found = []
    for path in sorted(defs_folder.rglob("defs.yaml")):
        for number, document in enumerate(yaml.safe_load_all(path.read_text()) or [], start=1):
            if isinstance(document, dict) and document.get("type") == component_type:
                found.append((f"{path} (document {number})", document.get("attributes") or {}, path.parent))
    return found


def declarations_in_file(path: Path, key: str) -> list[tuple[str, Any]]:
    """``(where, fields)`` of each entry of the sources file's ``key`` list (none: an empty list)."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SourceConfigError(f"INGEST_SOURCES_FILE={path}: cannot read it as YAML ({error})") from error
    entries = document.get(key) or [] if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SourceConfigError(f"INGEST_SOURCES_FILE={path}: `{key}` must be a list of declarations")
    return [(f"{path} {key}[{index}]", entry) for index, entry in enumerate(entries)]


def validated(model: type[Spec], where: str, fields: Any) -> Spec:
    """``fields`` as ``model``; invalid: a ``SourceConfigError`` naming where and each field's problem."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'source'}: {issue['msg']}" for issue in error.errors()
        )
        raise SourceConfigError(f"{where}: {problems}") from None


def by_key(specs: Iterable[tuple[str, Spec]], key: Callable[[Spec], str], what: str) -> dict[str, tuple[str, Spec]]:
    """The specs by ``key`` with where each was declared; a key declared twice is a ``SourceConfigError``
    naming both places."""
    found: dict[str, tuple[str, Spec]] = {}
    for where, spec in specs:
        name = key(spec)
        if name in found:
            raise SourceConfigError(f"{where}: {what} {name!r} is declared twice (first in {found[name][0]})")
        found[name] = (where, spec)
    return found
