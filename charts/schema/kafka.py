"""Values of charts/kafka: Kafka as Strimzi resources (mode strimzi) or one KRaft StatefulSet (standalone)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .common import (
    DNS_LABEL,
    ClosedObject,
    Global,
    NodePort,
    NonEmptyStr,
    NonNegativeInt,
    Object,
    PinnedImage,
    Port,
    PositiveInt,
    PullPolicy,
    SubchartValues,
)

# A listener name as Strimzi allows it.
ListenerName = Annotated[str, Field(pattern=r"^[a-z0-9]{1,11}$")]
SINGLE_NODE = "standalone mode runs a single KRaft node"
TOPIC_NAME = r"^[a-zA-Z0-9._-]{1,249}$"


class Kafka(ClosedObject):
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    config: Object | None = None


class Storage(ClosedObject):
    size: str
    # Strimzi's field names.
    class_: str | None = Field(None, alias="class")
    deleteClaim: bool | None = None


class NodePool(ClosedObject):
    name: Annotated[str, Field(pattern=DNS_LABEL)]
    replicas: PositiveInt
    storage: Storage
    resources: Object | None = None
    jvmOptions: Object | None = None
    podAntiAffinity: Literal["", "soft", "hard"] | None = Field(
        None, description="strimzi: brokers of the cluster on different nodes, preferred (soft) or required (hard)."
    )


class InternalListener(ClosedObject):
    enabled: bool | None = Field(None, description="The plaintext, unauthenticated listener (default on).")
    name: ListenerName
    port: Port


class TlsListener(ClosedObject):
    enabled: bool | None = Field(None, description="TLS with SCRAM-SHA-512 authentication: the application's listener.")
    name: ListenerName | None = None
    port: Port | None = None


class NodePortBroker(ClosedObject):
    broker: NonNegativeInt
    nodePort: NodePort
    advertisedHost: NonEmptyStr | None = None
    advertisedPort: Port | None = None


class NodePortListener(ClosedObject):
    enabled: bool | None = None
    name: ListenerName | None = None
    port: Port | None = None
    bootstrapNodePort: NodePort | None = None
    brokers: list[NodePortBroker] | None = None


class Listeners(ClosedObject):
    internal: InternalListener
    tls: TlsListener | None = None
    nodePort: NodePortListener | None = None


class Authorization(ClosedObject):
    enabled: bool | None = Field(
        None, description="Kafka's simple ACL authorizer (Strimzi `simple`, standalone StandardAuthorizer)."
    )
    superUsers: list[Annotated[str, Field(pattern=r"^User:.+$")]] | None = None


TopicOperation = Literal[
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
]


class User(ClosedObject):
    enabled: bool | None = None
    name: Annotated[str, Field(pattern=f"^$|{DNS_LABEL}", max_length=63)] | None = Field(
        None, description="Default <clusterName>-app; also its password Secret's name (key password)."
    )
    topics: list[Annotated[str, Field(pattern=TOPIC_NAME)]] | None = Field(
        None, description="Topics the application uses beside topic.name."
    )
    topicOperations: list[TopicOperation] | None = Field(None, min_length=1)
    groups: list[NonEmptyStr] | None = Field(None, description="Consumer groups (literal names) it may read.")


class Rack(ClosedObject):
    topologyKey: str | None = Field(None, description="strimzi: the node label whose values are racks (zones).")


class Topic(ClosedObject):
    name: Annotated[str, Field(pattern=TOPIC_NAME)]
    partitions: PositiveInt
    replicas: PositiveInt
    config: Object | None = None


class TopicSettings(ClosedObject):
    partitions: PositiveInt | None = None
    replicas: PositiveInt | None = None
    config: Object | None = Field(None, description="Merged over topic.config.")


class DeclaredTopics(ClosedObject):
    enabled: bool | None = Field(
        None,
        description="Make the topics global.sources.kafka_topics declares (topic, dead_letter_topic) like topic, "
        "and give them to the application's user.",
    )
    overrides: dict[str, TopicSettings] | None = Field(
        None,
        description="Per topic name: partitions, replicas, config instead of topic's.",
        json_schema_extra={"propertyNames": {"pattern": TOPIC_NAME}},
    )


class EntityOperator(ClosedObject):
    topicOperator: bool | None = None
    userOperator: bool | None = None


class KafkaUi(ClosedObject):
    enabled: bool | None = None
    image: PinnedImage | None = None
    port: Port | None = None
    resources: Object | None = None


class RegistryNetworkPolicy(ClosedObject):
    extraIngressFrom: list[Object] | None = None


class RegistryPersistence(ClosedObject):
    """The registry's H2 file storage on a PersistentVolumeClaim (on by default; off: in memory)."""

    enabled: bool | None = None
    size: str | None = None
    storageClass: str | None = Field(None, description="Empty: the cluster's default StorageClass.")
    accessModes: (
        Annotated[list[Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]], Field(min_length=1)] | None
    ) = Field(None, description="One pod writes the H2 file (the Deployment is Recreate).")


class Registry(ClosedObject):
    """Apicurio Registry, rendered when global.schemaRegistry.enabled."""

    image: PinnedImage
    env: list[Object] | None = Field(
        None,
        description="Extra container env entries (templated). One named APICURIO_DATASOURCE_URL or "
        "APICURIO_STORAGE_KIND sets its storage instead of persistence's H2 file.",
    )
    persistence: RegistryPersistence | None = None
    resources: Object | None = None
    networkPolicy: RegistryNetworkPolicy | None = None


class TestPod(ClosedObject):
    image: PinnedImage | None = None


class StandaloneImage(ClosedObject):
    repository: NonEmptyStr
    tag: str | None = Field(None, description="Empty: kafka.version.")
    pullPolicy: PullPolicy | None = None


class Certificates(ClosedObject):
    validityDays: PositiveInt | None = None


class Standalone(ClosedObject):
    image: StandaloneImage | None = None
    kubectlImage: PinnedImage | None = Field(
        None, description="Writes the certificates Job's Secrets (its entrypoint must be kubectl)."
    )
    certificates: Certificates | None = None


class Values(SubchartValues):
    global_: Global | None = Field(None, alias="global")  # type: ignore[assignment]  # narrows the base's free-form globals to the ones this chart reads
    # One KRaft node cannot hold more replicas: in standalone mode, nodePool.replicas and topic.replicas are 1.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"mode": {"const": "standalone"}}, "required": ["mode"]},
                    "then": {
                        "properties": {
                            "nodePool": {"properties": {"replicas": {"const": 1, "description": SINGLE_NODE}}},
                            "topic": {"properties": {"replicas": {"const": 1, "description": SINGLE_NODE}}},
                            "declaredTopics": {
                                "properties": {
                                    "overrides": {
                                        "additionalProperties": {
                                            "properties": {"replicas": {"const": 1, "description": SINGLE_NODE}}
                                        }
                                    }
                                }
                            },
                        }
                    },
                }
            ]
        }
    )

    mode: Literal["strimzi", "standalone"] = Field(
        description="strimzi (default): Strimzi resources for the operator. standalone: one KRaft node as a plain "
        "StatefulSet (nodePool.replicas and topic.replicas must be 1)."
    )
    nameOverride: str | None = None
    fullnameOverride: str | None = None
    clusterName: Annotated[str, Field(pattern=f"^$|{DNS_LABEL}", max_length=40)] | None = None
    kafka: Kafka
    nodePool: NodePool
    listeners: Listeners
    topic: Topic
    declaredTopics: DeclaredTopics | None = None
    authorization: Authorization | None = None
    user: User | None = None
    rack: Rack | None = None
    entityOperator: EntityOperator | None = None
    kafkaUi: KafkaUi | None = None
    registry: Registry | None = None
    test: TestPod | None = None
    podSecurityContext: Object | None = None
    securityContext: Object | None = None
    standalone: Standalone | None = Field(None, description="mode: standalone only.")
