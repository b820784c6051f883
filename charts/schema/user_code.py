"""Values of charts/user-code: the Dagster code location (gRPC code server), whose image runs every run pod."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .common import (
    ENV_NAME,
    Array,
    ClosedObject,
    EnvNameKeys,
    Image,
    LocalObjectReference,
    NonEmptyStr,
    NonNegativeInt,
    Object,
    OpenObject,
    Port,
    ServiceAccount,
    SubchartValues,
    Unique,
)

AccessMode = Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]


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


class Persistence(ClosedObject):
    enabled: bool | None = None
    size: str | None = None
    storageClass: str | None = None
    accessModes: Annotated[list[AccessMode], Field(min_length=1)] | None = None
    existingClaim: str | None = None
    mountPath: Annotated[str, Field(pattern=r"^/")] | None = None
    keep: bool | None = None


class Service(ClosedObject):
    port: Port | None = None


class NetworkPolicy(ClosedObject):
    enabled: bool | None = None
    extraIngressFrom: list[Object] | None = None


class Values(SubchartValues):
    nameOverride: str | None = None
    fullnameOverride: str | None = None
    replicaCount: NonNegativeInt | None = None
    image: Image
    imagePullSecrets: list[LocalObjectReference] | None = None
    codeServer: CodeServer
    env: Env
    envSecrets: Annotated[list[NonEmptyStr], Unique] | None = None
    extraEnv: list[EnvEntry] | None = Field(
        None, description="Extra env entries of the code server container (templated)."
    )
    secretEnv: Annotated[dict[str, str], EnvNameKeys] | None = None
    persistence: Persistence
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
