"""Values of charts/user-code: the Dagster code location (gRPC code server), whose image runs every run pod."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .common import (
    ENV_NAME,
    Array,
    ClosedObject,
    EnvNameKeys,
    Global,
    Image,
    LocalObjectReference,
    NonEmptyStr,
    NonNegativeInt,
    Object,
    OpenObject,
    Port,
    ServiceAccount,
    SourcesMount,
    SubchartValues,
    Unique,
)

AccessMode = Literal["ReadWriteOnce", "ReadWriteMany"]


class CodeServer(ClosedObject):
    port: Port
    module: NonEmptyStr
    locationName: NonEmptyStr


class Env(OpenObject):
    """The plain settings (a ConfigMap the code server and every run pod load): DUCKDB_PATH and any others."""

    model_config = ConfigDict(json_schema_extra={"propertyNames": {"pattern": ENV_NAME}})
    __pydantic_extra__: dict[str, str | float | bool]

    DUCKDB_PATH: NonEmptyStr


class EnvEntry(OpenObject):
    """A container env entry (name plus value or valueFrom)."""

    name: NonEmptyStr


class Pinning(ClosedObject):
    mode: Literal["auto", "podAffinity", "node", "none"] = Field(
        description="auto: podAffinity unless accessModes includes ReadWriteMany. podAffinity: the code server and "
        "run pods share the node of whichever mounts the volume first. node: all on `node`. none: no pinning."
    )
    node: str | None = Field(None, description="mode node: the node's kubernetes.io/hostname label.")


class Persistence(ClosedObject):
    # mode: node needs the node.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"pinning": {"properties": {"mode": {"const": "node"}}, "required": ["mode"]}},
                "required": ["pinning"],
            },
            "then": {"properties": {"pinning": {"properties": {"node": {"minLength": 1}}, "required": ["node"]}}},
        }
    )

    enabled: bool | None = None
    size: str | None = None
    storageClass: str | None = None
    accessModes: Annotated[list[AccessMode], Field(min_length=1)] | None = Field(
        None, description="ReadWriteOncePod is refused: the code server and the run pods share the volume."
    )
    existingClaim: str | None = None
    mountPath: Annotated[str, Field(pattern=r"^/")] | None = None
    keep: bool | None = None
    pinning: Pinning | None = None


class SecretKey(ClosedObject):
    name: str | None = Field(None, description="The Secret's name (templated).")
    key: NonEmptyStr | None = None


class KafkaSecurity(ClosedObject):
    # SASL needs a user and its password's Secret; SSL needs the CA's Secret.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"protocol": {"pattern": "^SASL_"}}},
                    "then": {
                        "properties": {
                            "username": {"minLength": 1},
                            "passwordSecret": {"properties": {"name": {"minLength": 1}}, "required": ["name"]},
                        },
                        "required": ["username", "passwordSecret"],
                    },
                },
                {
                    "if": {"properties": {"protocol": {"pattern": "SSL$"}}},
                    "then": {
                        "properties": {"caSecret": {"properties": {"name": {"minLength": 1}}, "required": ["name"]}},
                        "required": ["caSecret"],
                    },
                },
            ]
        }
    )

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
    saslMechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = Field(None, description="SASL_*: the Kafka user (templated).")
    passwordSecret: SecretKey | None = Field(None, description="SASL_*: the Secret and key of the user's password.")
    caSecret: SecretKey | None = Field(None, description="SSL, SASL_SSL: the Secret and key of the CA certificate.")


class Kafka(ClosedObject):
    security: KafkaSecurity


class Service(ClosedObject):
    port: Port | None = None


class NetworkPolicy(ClosedObject):
    enabled: bool | None = None
    extraIngressFrom: list[Object] | None = None


class Values(SubchartValues):
    global_: Global | None = Field(None, alias="global")  # type: ignore[assignment]  # narrows the base's free-form globals to the ones this chart reads
    nameOverride: str | None = None
    fullnameOverride: str | None = None
    replicaCount: NonNegativeInt | None = None
    image: Image
    imagePullSecrets: list[LocalObjectReference] | None = None
    codeServer: CodeServer
    env: Env
    kafka: Kafka
    envSecrets: Annotated[list[NonEmptyStr], Unique] | None = None
    extraEnv: list[EnvEntry] | None = Field(
        None, description="Extra env entries of the code server container (templated)."
    )
    secretEnv: Annotated[dict[str, str], EnvNameKeys] | None = None
    persistence: Persistence
    sources: SourcesMount | None = None
    strategy: Object | None = Field(
        None, description="The Deployment strategy. Empty: Recreate while the volume is pinned, else RollingUpdate."
    )
    serviceAccount: ServiceAccount | None = None
    podAnnotations: Object | None = None
    podLabels: Object | None = None
    podSecurityContext: Object | None = None
    securityContext: Object | None = None
    service: Service | None = None
    resources: Object | None = None
    startupProbe: Object | None = None
    livenessProbe: Object | None = None
    readinessProbe: Object | None = None
    nodeSelector: Object | None = None
    tolerations: Array | None = None
    affinity: Object | None = None
    networkPolicy: NetworkPolicy | None = None
