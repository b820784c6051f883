"""values.schema.json from the models: pydantic's JSON schema, made self-contained and plain draft-07.

pydantic writes shared models once under $defs and points at them with $ref; a chart schema is read by
people and by helm, so every $ref is inlined where it is used (draft-07 ignores keywords beside a $ref,
inlining also keeps each field's description with its constraints). Titles pydantic derives from names go,
and so does `additionalProperties: true` (the default) and the null pydantic would add for optional keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from . import kafka, mock_api, platform, user_code, webhook_receiver
from .common import declared_env_names

CHARTS_DIR = Path(__file__).resolve().parents[1]
DRAFT = "https://json-schema.org/draft-07/schema#"

# chart -> (its values model, the schema's title)
CHARTS: dict[str, tuple[type[BaseModel], str]] = {
    "user-code": (user_code.Values, "user-code values"),
    "webhook-receiver": (webhook_receiver.Values, "webhook-receiver values"),
    "mock-api": (mock_api.Values, "mock-api values"),
    "kafka": (kafka.Values, "kafka (Strimzi or standalone) values"),
    "platform": (platform.Values, "platform (umbrella) values"),
}

# Keywords in reading order: what a value is, then its constraints, then what it contains.
ORDER = [
    "$schema",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "allOf",
    "if",
    "then",
]


class _ValuesSchema(GenerateJsonSchema):
    """pydantic's generator, minus what a values schema must not say."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> dict[str, Any]:
        # Docstrings document the models; the schema carries the fields' own descriptions only.
        json_schema = super().model_schema(schema)
        json_schema.pop("title", None)
        json_schema.pop("description", None)
        declared_env_names(schema["cls"], json_schema)
        return json_schema

    def nullable_schema(self, schema: core_schema.NullableSchema) -> dict[str, Any]:
        # `X | None = None` means "may be left out": the schema is X's (see the package docstring).
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        # Defaults are values.yaml's business.
        return self.generate_inner(schema["schema"])


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Every {"$ref": "#/$defs/X", ...} replaced by X's schema, the keywords beside the $ref winning."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].removeprefix("#/$defs/")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return {key: _inline(value, defs) for key, value in node.items()}


def _by_type(node: Any) -> Any:
    """A union of objects told apart by a `type` constant (a REST API's auth and paginator) as one if/then per
    type, as the app reads it (the variant its `type` names): a mistake is reported against that variant alone,
    not as "anyOf failed"."""
    if isinstance(node, list):
        return [_by_type(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _by_type(value) for key, value in node.items()}
    variants = node.get("anyOf") or []
    kinds = [((v.get("properties") or {}).get("type") or {}).get("const") for v in variants]
    if not variants or not all(isinstance(kind, str) for kind in kinds):
        return node
    node.pop("anyOf")
    return {
        **node,
        "type": "object",
        "properties": {"type": {"enum": kinds}},
        "required": ["type"],
        "allOf": [
            {"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": variant}
            for kind, variant in zip(kinds, variants, strict=True)
        ],
    }


def _tidy(node: Any, *, in_properties: bool = False) -> Any:
    """Plain draft-07: anyOf of bare types as a type list, no `additionalProperties: true`, keywords ordered."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    if in_properties:  # property name -> schema: keep the model's field order
        return {key: _tidy(value) for key, value in node.items()}
    node = {key: _tidy(value, in_properties=key == "properties") for key, value in node.items()}
    alternatives = node.get("anyOf")
    if alternatives and all(alt.keys() == {"type"} and isinstance(alt["type"], str) for alt in alternatives):
        del node["anyOf"]
        node["type"] = [alt["type"] for alt in alternatives]
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]
    rank = {key: index for index, key in enumerate(ORDER)}
    return dict(sorted(node.items(), key=lambda item: rank.get(item[0], len(ORDER))))


def schema(chart: str) -> dict[str, Any]:
    """The values schema of a chart, as a dict."""
    model, title = CHARTS[chart]
    generated = model.model_json_schema(by_alias=True, schema_generator=_ValuesSchema)
    defs = generated.pop("$defs", {})
    return _tidy({"$schema": DRAFT, "title": title, **_by_type(_inline(generated, defs))})


def render(chart: str) -> str:
    """The values.schema.json text of a chart."""
    return json.dumps(schema(chart), indent=2, ensure_ascii=False) + "\n"


def path(chart: str) -> Path:
    return CHARTS_DIR / chart / "values.schema.json"
