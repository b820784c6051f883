"""Values of charts/platform, the umbrella: Dagster's control plane and PostgreSQL, plus the subcharts' switches
(each subchart's own values are checked by its own schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .common import (
    Array,
    ChartValues,
    ClosedObject,
    Digest,
    Global,
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
    digest: Digest | None = Field(None, description="sha256:<hex>: by digest instead of the tag.")
    pullPolicy: PullPolicy | None = None


class ServiceAccount(ClosedObject):
    annotations: dict[str, str] | None = None


class EnvEntry(OpenObject):
    """A container env entry (name plus value or valueFrom)."""

    name: NonEmptyStr


class Auth(ClosedObject):
    basicAuthSecret: str | None = Field(
        None, description="htpasswd Secret: key users (Traefik basicAuth Middleware) or auth (ingress-nginx)."
    )
    traefikMiddlewares: list[NonEmptyStr] | None = Field(
        None, description="Traefik Middlewares that authenticate, as <namespace>-<name>@kubernetescrd."
    )
    annotations: dict[str, str] | None = Field(None, description="Another controller's authentication annotations.")
    unauthenticated: bool | None = Field(
        None, description="Expose the UI with no authentication at the ingress (only behind another gate)."
    )


class CertManager(ClosedObject):
    issuer: str | None = Field(None, description="cert-manager.io/issuer (a namespaced Issuer).")
    clusterIssuer: str | None = Field(None, description="cert-manager.io/cluster-issuer.")


class WebserverIngress(ClosedObject):
    enabled: bool | None = None
    className: str | None = None
    annotations: dict[str, str] | None = None
    host: str | None = None
    path: Annotated[str, Field(pattern=r"^/")] | None = None
    pathType: Literal["Prefix", "Exact", "ImplementationSpecific"] | None = None
    tls: list[Object] | None = None
    certManager: CertManager | None = None
    auth: Auth | None = None


class Component(ClosedObject):
    """What the webserver and the daemon share, as the official chart's dagsterWebserver/dagsterDaemon."""

    resources: Resources | None = None
    annotations: dict[str, str] | None = Field(None, description="Pod annotations.")
    nodeSelector: dict[str, str] | None = None
    affinity: Object | None = None
    tolerations: Array | None = None
    env: list[EnvEntry] | None = Field(None, description="Extra container env entries (templated).")
    envSecrets: list[LocalObjectReference] | None = Field(
        None, description="Secrets whose keys all become env vars (envFrom; names templated)."
    )


class Webserver(Component):
    replicaCount: NonNegativeInt | None = None
    port: Port | None = None
    readOnly: bool | None = Field(None, description="dagster-webserver --read-only.")
    service: Service | None = None
    ingress: WebserverIngress | None = None


class Daemon(Component):
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


class RunK8sConfig(ClosedObject):
    """The K8sRunLauncher's run_k8s_config (keys camelCase or snake_case)."""

    containerConfig: Object | None = None
    podSpecConfig: Object | None = None
    podTemplateSpecMetadata: Object | None = None
    jobConfig: Object | None = None
    jobMetadata: Object | None = None
    jobSpecConfig: Object | None = None


class RunLauncher(ClosedObject):
    jobNamespace: str | None = None
    imagePullPolicy: PullPolicy | None = None
    ttlSecondsAfterFinished: NonNegativeInt
    backoffLimit: NonNegativeInt | None = None
    failPodOnRunFailure: bool | None = None
    resources: Resources | None = None
    labels: dict[str, str] | None = None
    activeDeadlineSeconds: PositiveInt = Field(description="The run Job's activeDeadlineSeconds.")
    envSecrets: Annotated[list[NonEmptyStr], Field(json_schema_extra={"uniqueItems": True})] | None = Field(
        None, description="More Secrets (names, templated) loaded whole into every run pod."
    )
    serviceAccount: ServiceAccount | None = None
    runK8sConfig: RunK8sConfig | None = None


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


class S3Logs(ClosedObject):
    bucket: str | None = None
    prefix: str | None = None
    region: str | None = None
    endpointUrl: str | None = None
    useSsl: bool | None = None
    verify: bool | None = None
    skipEmptyFiles: bool | None = None
    showUrlOnly: bool | None = None
    uploadExtraArgs: Object | None = None


class GcsLogs(ClosedObject):
    bucket: str | None = None
    prefix: str | None = None
    jsonCredentialsEnvvar: Annotated[str, Field(pattern=r"^$|^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    showUrlOnly: bool | None = None


class AzureLogs(ClosedObject):
    storageAccount: str | None = None
    container: str | None = None
    prefix: str | None = None
    accessKeyOrSasTokenEnv: Annotated[str, Field(pattern=r"^$|^[A-Za-z_][A-Za-z0-9_]*$")] | None = Field(
        None, description="An env var with the account key or a SAS token; empty: DefaultAzureCredential."
    )
    endpointSuffix: str | None = None
    showUrlOnly: bool | None = None


def _requires(kind: str, where: str, keys: list[str]) -> dict:
    return {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": {
            "properties": {where: {"properties": {k: {"minLength": 1} for k in keys}, "required": keys}},
            "required": [where],
        },
    }


class ComputeLogManager(ClosedObject):
    # The chosen store's required settings.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _requires("s3", "s3", ["bucket"]),
                _requires("gcs", "gcs", ["bucket"]),
                _requires("azure", "azure", ["storageAccount", "container"]),
            ]
        }
    )

    type: Literal["none", "s3", "gcs", "azure"] = Field(
        description="none, or the object store each step's stdout/stderr is uploaded to (needs dagster-aws, "
        "dagster-gcp or dagster-azure in the images)."
    )
    localDir: Annotated[str, Field(pattern=r"^/")] | None = None
    uploadIntervalSeconds: NonNegativeInt | None = None
    s3: S3Logs | None = None
    gcs: GcsLogs | None = None
    azure: AzureLogs | None = None


Days = Annotated[int, Field(ge=-1)]


class TickDays(ClosedObject):
    skipped: Days | None = None
    failure: Days | None = None
    success: Days | None = None
    started: Days | None = None


class TickRetention(ClosedObject):
    purgeAfterDays: Days | TickDays = Field(description="Days to keep ticks (-1: forever), or per tick status.")


class Retention(ClosedObject):
    enabled: bool | None = None
    schedule: TickRetention | None = None
    sensor: TickRetention | None = None
    auto_materialize: TickRetention | None = Field(None, alias="autoMaterialize")


class Migrate(ClosedObject):
    enabled: bool | None = Field(None, description="dagster instance migrate as a pre-upgrade hook Job.")


class Dagster(ClosedObject):
    image: DagsterImage | None = None
    imagePullSecrets: list[LocalObjectReference] | None = None
    serviceAccount: ServiceAccount | None = None
    webserver: Webserver | None = None
    daemon: Daemon | None = None
    runCoordinator: RunCoordinator | None = None
    concurrency: Concurrency
    runLauncher: RunLauncher
    runMonitoring: RunMonitoring
    runRetries: RunRetries | None = None
    telemetry: Telemetry | None = None
    computeLogManager: ComputeLogManager
    retention: Retention | None = None
    migrate: Migrate | None = None


class PostgresImage(ClosedObject):
    repository: NonEmptyStr | None = None
    tag: NonEmptyStr | None = None
    digest: Digest | None = None
    pullPolicy: PullPolicy | None = None


class PostgresAuth(ClosedObject):
    username: SqlName
    database: SqlName
    inboxDatabase: SqlName
    inboxUsername: SqlName = Field(
        description="The inbox's own role (not the superuser: the chart refuses username), owner of its schema."
    )
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
    imagePullSecrets: list[LocalObjectReference] | None = None
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
    global_: Global | None = Field(None, alias="global")  # type: ignore[assignment]  # narrows the base's free-form globals to the ones this chart reads
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
