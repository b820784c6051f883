"""Values of charts/mock-api: the mock SaaS source API of the pull pattern."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    Array,
    ClosedObject,
    Global,
    Image,
    LocalObjectReference,
    NonEmptyStr,
    NonNegativeInt,
    Object,
    Port,
    PositiveInt,
    Ratio,
    Service,
    ServiceAccount,
    SubchartValues,
    Workers,
)

NonNegative = Annotated[float, Field(ge=0)]


class Faults(ClosedObject):
    latencyMs: NonNegative | None = None
    fault5xxRatio: Ratio | None = None
    faultTimeoutRatio: Ratio | None = None
    faultTimeoutSeconds: NonNegative | None = None
    faultTruncateRatio: Ratio | None = None
    rateLimit: NonNegative | None = None
    rateBurst: NonNegativeInt | None = None
    schemaMode: Literal["normal", "renamed", "retyped"] | None = None


class Credential(ClosedObject):
    """A credential the API checks: from existingSecret (templated), else value, else generated once."""

    existingSecret: str | None = None
    existingSecretKey: NonEmptyStr | None = None
    value: str | None = None


class Persistence(ClosedObject):
    enabled: bool | None = None
    size: str | None = None
    storageClass: str | None = None
    accessModes: list[str] | None = None
    existingClaim: str | None = None


class NetworkPolicy(ClosedObject):
    enabled: bool | None = None
    extraIngressFrom: list[Object] | None = None


class Values(SubchartValues):
    global_: Global | None = Field(None, alias="global")  # type: ignore[assignment]  # narrows the base's free-form globals to the ones this chart reads
    nameOverride: str | None = None
    fullnameOverride: str | None = None
    replicaCount: Annotated[int, Field(ge=0, le=1)] | None = Field(
        None, description="one pod: the admin-mutation state is a single SQLite file"
    )
    image: Image
    imagePullSecrets: list[LocalObjectReference] | None = None
    workers: Workers
    containerPort: Port | None = None
    records: NonNegativeInt | None = None
    seed: int | None = None
    spanDays: Annotated[float, Field(gt=0)] | None = None
    maxPageSize: PositiveInt | None = None
    faults: Faults
    token: Credential = Field(description="The bearer token of /v1/records (MOCK_API_TOKEN).")
    apiKey: Credential = Field(description="The API key of /v1/items, in X-API-Key (MOCK_API_API_KEY).")
    persistence: Persistence | None = None
    serviceAccount: ServiceAccount | None = None
    podAnnotations: Object | None = None
    podLabels: Object | None = None
    podSecurityContext: Object | None = None
    securityContext: Object | None = None
    service: Service | None = None
    resources: Object | None = None
    livenessProbe: Object | None = None
    readinessProbe: Object | None = None
    nodeSelector: Object | None = None
    tolerations: Array | None = None
    affinity: Object | None = None
    networkPolicy: NetworkPolicy | None = None
