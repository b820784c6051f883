"""Values of charts/webhook-receiver: the webhook receiver (aiohttp under gunicorn)."""

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
    NullableObject,
    Object,
    OpenObject,
    Port,
    PositiveInt,
    Service,
    ServiceAccount,
    SourcesMount,
    SubchartValues,
    Unique,
    Workers,
)

# A source name: it becomes part of an env var name (WEBHOOK_SECRET_<SOURCE>) and of the URL path.
SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class EnvVar(OpenObject):
    name: str
    value: str | None = None


class Inbox(ClosedObject):
    existingSecret: str | None = None
    existingSecretKey: NonEmptyStr | None = None
    # Empty (no generated Secret), PostgreSQL or SQLite.
    url: Annotated[str, Field(pattern=r"^$|^postgres(ql)?://|^sqlite:///")] | None = None


class Signing(ClosedObject):
    existingSecret: str | None = None
    sources: Annotated[list[SourceName], Unique] | None = None


class RateLimit(ClosedObject):
    perSecond: Annotated[float, Field(ge=0)] = Field(
        description="WEBHOOK_RATE_LIMIT_PER_SECOND: requests per second from one client address; 0 = off."
    )
    burst: NonNegativeInt = Field(description="WEBHOOK_RATE_LIMIT_BURST; 0 = the per-second rate.")
    trustedProxies: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$")]] = Field(
        default_factory=list,
        description="WEBHOOK_TRUSTED_PROXIES: CIDRs of the proxies in front (the ingress controller's pods) whose "
        "X-Forwarded-For names the client; empty = the peer address is the client.",
    )


class Admin(ClosedObject):
    existingSecret: str | None = Field(None, description="A Secret with the admin token (templated); else generated.")
    existingSecretKey: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None


class PublicPaths(ClosedObject):
    match: Literal["exact", "regex"] = Field(
        description="exact: an Exact path per source; regex: /webhook/[A-Za-z0-9_-]{1,64}$ (not with Traefik's Ingress)."
    )
    sources: Annotated[list[SourceName], Unique] | None = Field(None, description="Empty: signing.sources.")


class IngressHost(ClosedObject):
    """The paths are the chart's (publicPaths), never a host's own."""

    host: str | None = None


class Traefik(ClosedObject):
    bodySizeMiddleware: bool | None = None


class Nginx(ClosedObject):
    bodySizeAnnotation: bool | None = None


class CertManager(ClosedObject):
    issuer: str | None = None
    clusterIssuer: str | None = None


class Ingress(ClosedObject):
    enabled: bool | None = None
    className: str | None = None
    annotations: Object | None = None
    hosts: list[IngressHost] | None = None
    tls: list[Object] | None = None
    certManager: CertManager | None = None
    traefik: Traefik | None = None
    nginx: Nginx | None = None


class HttpRoute(ClosedObject):
    enabled: bool | None = None
    parentRefs: list[Object] | None = None
    hostnames: list[str] | None = None
    annotations: Object | None = None
    traefikBodySizeMiddleware: bool | None = Field(
        None, description="Traefik's Gateway provider: the buffering Middleware as an ExtensionRef filter."
    )
    filters: list[Object] | None = None


class Autoscaling(ClosedObject):
    enabled: bool | None = None
    minReplicas: PositiveInt | None = None
    maxReplicas: PositiveInt | None = None
    targetCPUUtilizationPercentage: Annotated[int, Field(ge=1, le=100)] | None = None


class PodDisruptionBudget(ClosedObject):
    enabled: bool | None = None
    minAvailable: int | str | None = None


class IngressController(ClosedObject):
    namespaceSelector: Object = Field(description="The ingress controller's namespaces (a LabelSelector).")
    podSelector: Object | None = Field(None, description="Its pods there (a LabelSelector; empty: all).")


class NetworkPolicy(ClosedObject):
    enabled: bool | None = None
    ingressController: IngressController | None = None
    extraIngressFrom: list[Object] | None = None
    postgresPort: Port | None = None


class Metrics(ClosedObject):
    annotations: bool | None = None


class Values(SubchartValues):
    global_: Global | None = Field(None, alias="global")  # type: ignore[assignment]  # narrows the base's free-form globals to the ones this chart reads
    nameOverride: str | None = None
    fullnameOverride: str | None = None
    replicaCount: NonNegativeInt | None = None
    image: Image
    imagePullSecrets: list[LocalObjectReference] | None = None
    workers: Workers
    keepAliveSeconds: PositiveInt = Field(
        description="gunicorn keep-alive; keep above the proxy's upstream idle timeout"
    )
    maxBodyBytes: PositiveInt
    signatureToleranceSeconds: PositiveInt | None = None
    extraEnv: list[EnvVar] | None = None
    rateLimit: RateLimit
    admin: Admin
    inbox: Inbox
    signing: Signing
    sources: SourcesMount | None = None
    acceptUndeclaredSources: bool | None = Field(
        None,
        description="WEBHOOK_ACCEPT_UNDECLARED_SOURCES: take a source id no declaration names (local development); "
        "off, it gets a 404.",
    )
    envSecrets: Annotated[list[NonEmptyStr], Unique] | None = Field(
        None,
        description="Secrets whose keys become env vars (templated names): the variables the declared sources' "
        "secret_env name.",
    )
    publicPaths: PublicPaths
    serviceAccount: ServiceAccount | None = None
    podAnnotations: Object | None = None
    podLabels: Object | None = None
    podSecurityContext: Object | None = None
    securityContext: Object | None = None
    service: Service | None = None
    containerPort: Port | None = None
    ingress: Ingress | None = None
    httpRoute: HttpRoute | None = None
    resources: Object | None = None
    livenessProbe: Object | None = None
    readinessProbe: Object | None = None
    startupProbe: NullableObject = None
    autoscaling: Autoscaling | None = None
    podDisruptionBudget: PodDisruptionBudget | None = None
    networkPolicy: NetworkPolicy | None = None
    metrics: Metrics | None = None
    terminationGracePeriodSeconds: NonNegativeInt | None = None
    nodeSelector: Object | None = None
    tolerations: Array | None = None
    affinity: Object | None = None
    topologySpreadConstraints: Array | None = None
