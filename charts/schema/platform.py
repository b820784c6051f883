"""Values of charts/platform, the umbrella: Dagster's control plane and PostgreSQL, plus the subcharts' switches
(each subchart's own values are checked by its own schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    ChartValues,
    ClosedObject,
    LocalObjectReference,
    NonEmptyStr,
    NonNegativeInt,
    Object,
    OpenObject,
    Port,
    PositiveInt,
    PullPolicy,
    Service,
)

# A PostgreSQL identifier the chart creates without quoting.
SqlName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]


class Resources(OpenObject):
    requests: Object | None = None
    limits: Object | None = None


class DagsterImage(ClosedObject):
    """Defaults to the user-code image."""

    repository: str | None = None
    tag: str | None = None
    pullPolicy: PullPolicy | None = None


class Webserver(ClosedObject):
    replicaCount: NonNegativeInt | None = None
    port: Port | None = None
    service: Service | None = None
    resources: Resources | None = None


class Daemon(ClosedObject):
    resources: Resources | None = None
    sensorWorkers: PositiveInt | None = None


class TagConcurrencyLimit(OpenObject):
    key: str
    limit: NonNegativeInt


class RunCoordinator(ClosedObject):
    maxConcurrentRuns: Annotated[int, Field(ge=-1)] | None = None
    dequeueIntervalSeconds: PositiveInt | None = None
    tagConcurrencyLimits: list[TagConcurrencyLimit] | None = None


class Pools(OpenObject):
    """Dagster's concurrency pools: name -> slots."""

    __pydantic_extra__: dict[str, NonNegativeInt]

    duckdb: Literal[1] = Field(description="DuckDB allows one writer: keep 1")


class Concurrency(ClosedObject):
    granularity: Literal["op", "run"] | None = None
    defaultPoolLimit: NonNegativeInt | None = None
    pools: Pools


class RunLauncher(ClosedObject):
    jobNamespace: str | None = None
    imagePullPolicy: PullPolicy | None = None
    ttlSecondsAfterFinished: NonNegativeInt
    backoffLimit: NonNegativeInt | None = None
    failPodOnRunFailure: bool | None = None
    resources: Resources | None = None
    labels: dict[str, str] | None = None


class RunMonitoring(ClosedObject):
    enabled: bool | None = None
    startTimeoutSeconds: PositiveInt | None = None
    cancelTimeoutSeconds: PositiveInt | None = None
    pollIntervalSeconds: PositiveInt | None = None
    maxResumeRunAttempts: NonNegativeInt | None = None
    freeSlotsAfterRunEndSeconds: NonNegativeInt | None = None


class RunRetries(ClosedObject):
    enabled: bool | None = None
    maxRetries: NonNegativeInt | None = None


class Telemetry(ClosedObject):
    enabled: bool | None = None


class Dagster(ClosedObject):
    image: DagsterImage | None = None
    imagePullSecrets: list[LocalObjectReference] | None = None
    webserver: Webserver | None = None
    daemon: Daemon | None = None
    runCoordinator: RunCoordinator | None = None
    concurrency: Concurrency
    runLauncher: RunLauncher
    runMonitoring: RunMonitoring
    runRetries: RunRetries | None = None
    telemetry: Telemetry | None = None


class PostgresImage(ClosedObject):
    repository: NonEmptyStr | None = None
    tag: NonEmptyStr | None = None
    pullPolicy: PullPolicy | None = None


class PostgresAuth(ClosedObject):
    username: SqlName
    database: SqlName
    inboxDatabase: SqlName
    existingSecret: str | None = None


class PostgresPersistence(ClosedObject):
    size: str | None = None
    storageClass: str | None = None


class ExternalPostgres(ClosedObject):
    host: str | None = None
    port: Port | None = None


class Postgresql(ClosedObject):
    enabled: bool | None = None
    image: PostgresImage | None = None
    auth: PostgresAuth | None = None
    persistence: PostgresPersistence | None = None
    resources: Resources | None = None
    external: ExternalPostgres | None = None


class ExistingSecret(ClosedObject):
    existingSecret: str | None = None


class UserCode(OpenObject):
    enabled: Literal[True] | None = Field(None, description="The code location is the platform's core.")


class Subchart(OpenObject):
    enabled: bool | None = None


class Values(ChartValues):
    nameOverride: str | None = None
    fullnameOverride: Annotated[str, Field(max_length=40)] | None = None
    dagster: Dagster
    postgresql: Postgresql
    inbox: ExistingSecret | None = None
    sourceApi: ExistingSecret | None = None
    podSecurityContext: Object | None = None
    securityContext: Object | None = None
    user_code: UserCode = Field(alias="user-code")
    webhook_receiver: Subchart | None = Field(None, alias="webhook-receiver")
    mock_api: Subchart | None = Field(None, alias="mock-api")
    kafka: Subchart | None = None
