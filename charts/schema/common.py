"""Building blocks shared by the charts' values models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ingestion_patterns.poll.source import NAME as TOPIC_SOURCE_NAME
from ingestion_patterns.poll.source import TOPIC, KafkaTopicSpec
from ingestion_patterns.pull.source import NAME as REST_API_NAME
from ingestion_patterns.pull.source import RestApiSourceSpec
from ingestion_patterns.push.source import ENV_NAME as SECRET_ENV_NAME
from ingestion_patterns.push.source import SOURCE_ID, WebhookSourceSpec


class ClosedObject(BaseModel):
    """An object whose keys are all known: any other key is refused (a typo fails the install)."""

    model_config = ConfigDict(extra="forbid")


class OpenObject(BaseModel):
    """An object with some known keys (checked) that may carry others (e.g. Kubernetes fields passed through)."""

    model_config = ConfigDict(extra="allow")


# Free-form values handed to Kubernetes or to the application as they are (resources, probes, affinity...).
Object = Annotated[dict[str, Any], WithJsonSchema({"type": "object"})]
Array = Annotated[list[Any], WithJsonSchema({"type": "array"})]
# An object that may also be null (the chart treats null as "off").
NullableObject = Annotated[dict[str, Any] | None, WithJsonSchema({"type": ["object", "null"]})]

NonEmptyStr = Annotated[str, Field(min_length=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
Port = Annotated[int, Field(ge=1, le=65535)]
# Kubernetes' default NodePort range.
NodePort = Annotated[int, Field(ge=30000, le=32767)]
Ratio = Annotated[float, Field(ge=0, le=1)]
Workers = Annotated[int, Field(ge=1, le=64)]
# A DNS-1123 label (Kubernetes object names).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Environment variable names as the services read them.
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
# An image digest.
Digest = Annotated[str, Field(pattern=r"^$|^sha256:[a-f0-9]{64}$")]

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]


# Field markers: a list of distinct items; a map keyed by environment variable names.
Unique = Field(json_schema_extra={"uniqueItems": True})
EnvNameKeys = Field(json_schema_extra={"propertyNames": {"pattern": ENV_NAME}})


class Image(ClosedObject):
    """The chart's own image; its tag defaults to the chart's appVersion."""

    repository: NonEmptyStr
    tag: str | None = None
    digest: Digest | None = Field(
        None, description="sha256:<hex>: the image by digest (repository@digest), the tag ignored."
    )
    pullPolicy: PullPolicy | None = None


class PinnedImage(ClosedObject):
    """A third-party image, always with an explicit tag."""

    repository: NonEmptyStr
    tag: NonEmptyStr
    pullPolicy: PullPolicy | None = None


class LocalObjectReference(OpenObject):
    """An imagePullSecrets entry."""

    name: str | None = None


class ServiceAccount(ClosedObject):
    create: bool | None = None
    name: str | None = None
    annotations: Object | None = None


class Service(ClosedObject):
    type: ServiceType | None = None
    port: Port | None = None


class LibraryValues(ClosedObject):
    """What helm puts under the library chart's key: only the globals (the library has no values)."""

    global_: Object | None = Field(None, alias="global")


class ChartValues(ClosedObject):
    """The top level of every chart's values: helm's own keys beside the chart's."""

    global_: Object | None = Field(None, alias="global")
    ingestion_common: LibraryValues | None = Field(
        None,
        alias="ingestion-common",
        description="Helm's own: the values of the ingestion-common library chart, which has none (helm puts "
        "the globals there).",
    )


def _declaration_rules(schema: dict[str, Any]) -> None:
    """The checks WebhookSourceSpec makes in its validator, as schema keywords (same patterns, same rule)."""
    properties = schema["properties"]
    properties["source_id"]["pattern"] = SOURCE_ID.pattern
    # A variable's name, never a secret's value (whsec_..., base64 with + / =) in its place.
    properties["secret_env"]["pattern"] = SECRET_ENV_NAME.pattern
    schema["allOf"] = [
        {
            "if": {"required": ["signature"], "properties": {"signature": {"not": {"const": "none"}}}},
            "then": {"required": ["secret_env"]},
        }
    ]


class WebhookSourceDeclaration(WebhookSourceSpec):
    """A webhook source declared in the values: exactly the app's WebhookSourceSpec (its fields, and no other:
    a secret's value has no field to go in), plus its validator's rules as schema keywords."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_declaration_rules)


def declared_env_names(model: type, schema: dict[str, Any]) -> None:
    """The app's rule for every declaration (docs/architecture.md, "Declared sources" 2): a field named *_env
    holds an environment variable's name, never a secret's value. Applied to the app's own models (nested
    ones too: auth variants) and the declarations made of them, as the pattern their validators check."""
    if not any(cls.__module__.startswith("ingestion_patterns.") for cls in model.__mro__):
        return
    for name, field in schema.get("properties", {}).items():
        if name.endswith("_env") and field.get("type") == "string":
            field.setdefault("pattern", SECRET_ENV_NAME.pattern)


# Headers a REST API declaration may not send (RestApiSpec refuses them: credentials go under auth).
CREDENTIAL_HEADERS = r"^(?i)(authorization|proxy-authorization|cookie)$"


def _rest_api_rules(schema: dict[str, Any]) -> None:
    """The checks RestApiSourceSpec makes in its validators that a schema can say."""
    properties = schema["properties"]
    properties["name"]["pattern"] = REST_API_NAME.pattern
    properties["headers"]["propertyNames"] = {"not": {"pattern": CREDENTIAL_HEADERS}}
    # A rerun must not land a record twice: the key and the incremental cursor are required.
    schema["required"] = [*schema["required"], "primary_key", "incremental"]


class RestApiSourceDeclaration(RestApiSourceSpec):
    """A REST API declared in the values: exactly the app's RestApiSourceSpec (its fields and no other; secrets
    named by *_env fields), plus what of its validators a schema can say."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_rest_api_rules)


def _kafka_topic_rules(schema: dict[str, Any]) -> None:
    """The checks KafkaTopicSpec (and the sources file's reader) make that a schema can say."""
    properties = schema["properties"]
    # A sources-file entry has no folder to take its name from.
    properties["name"] |= {"minLength": 1, "pattern": TOPIC_SOURCE_NAME.pattern}
    properties["topic"]["pattern"] = f"^$|{TOPIC.pattern}"
    properties["dead_letter_topic"]["pattern"] = TOPIC.pattern
    schema["required"] = ["name", *schema["required"]]


class KafkaTopicDeclaration(KafkaTopicSpec):
    """A Kafka topic declared in the values: exactly the app's KafkaTopicSpec, plus its rules as keywords."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_kafka_topic_rules)


class Sources(ClosedObject):
    """The declared sources: the keys of the file INGEST_SOURCES_FILE names, each entry a declaration's fields."""

    webhooks: list[WebhookSourceDeclaration] | None = Field(
        None,
        description="WebhookSource declarations (app/ingestion_patterns/push/source.py, WebhookSourceSpec): "
        "POST /webhook/<source_id>. Secrets are named (secret_env), never written here.",
    )
    rest_apis: list[RestApiSourceDeclaration] | None = Field(
        None,
        description="RestApiSource declarations (app/ingestion_patterns/pull/source.py, RestApiSourceSpec), as a "
        "defs.yaml's attributes. Secrets are named (auth's *_env), never written here.",
    )
    kafka_topics: list[KafkaTopicDeclaration] | None = Field(
        None,
        description="KafkaTopicSource declarations (app/ingestion_patterns/poll/source.py, KafkaTopicSpec), each "
        "with its name. With Strimzi, the kafka chart also renders a KafkaTopic for each topic.",
    )


class SchemaRegistry(ClosedObject):
    enabled: bool | None = Field(
        None,
        description="Apicurio Registry in the kafka chart (kafka.registry), its Confluent-compatible URL given to "
        "the user code as SCHEMA_REGISTRY_URL.",
    )


class Global(OpenObject):
    """Helm's global values, shared with every subchart."""

    imagePullSecrets: list[LocalObjectReference] | None = Field(
        None, description="Added to every pod of the platform's charts (and run pods)."
    )
    sources: Sources | None = Field(
        None,
        description="The declared sources, rendered into one ConfigMap (key sources.yaml) that the code server, "
        "the run pods and the webhook receiver mount (INGEST_SOURCES_FILE). Adding one is a helm upgrade.",
    )
    schemaRegistry: SchemaRegistry | None = None


class SourcesMount(ClosedObject):
    """Where this chart's pods read the declared sources (global.sources) from."""

    existingConfigMap: str | None = Field(
        None,
        description="A ConfigMap with key sources.yaml rendered by the parent chart (templated); empty: this chart "
        "renders its own from global.sources.",
    )


class SubchartValues(ChartValues):
    """A chart that the platform umbrella also installs as a subchart."""

    enabled: bool | None = Field(None, description="Used by the platform umbrella chart's dependency condition.")
