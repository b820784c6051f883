"""Building blocks shared by the charts' values models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


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


class Global(OpenObject):
    """Helm's global values, shared with every subchart."""

    imagePullSecrets: list[LocalObjectReference] | None = Field(
        None, description="Added to every pod of the platform's charts (and run pods)."
    )


class SubchartValues(ChartValues):
    """A chart that the platform umbrella also installs as a subchart."""

    enabled: bool | None = Field(None, description="Used by the platform umbrella chart's dependency condition.")
