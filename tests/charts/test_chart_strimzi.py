"""The Strimzi resources: validated against Strimzi's own v1 CRD schemas (generated from Maven Central
artifacts by .ci/install-chart-tools.sh), and the fields the platform relies on asserted one by one."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_helpers import PROFILES, RELEASE, TOOLS_DIR, Renderer, by_kind, one

pytestmark = pytest.mark.charts

STRIMZI_KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic")
CRD_DIR = TOOLS_DIR / "schemas" / "strimzi-0.51.0"
REPO = Path(__file__).resolve().parents[2]


def strict(schema: dict) -> dict:
    """An openAPIV3Schema as a strict JSON schema: objects with known properties allow no others."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        if schema.get("nullable") and "type" in schema:
            schema["type"] = [schema["type"], "null"]
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@pytest.fixture(scope="session")
def strimzi_schemas() -> dict[str, dict]:
    if not (CRD_DIR / "kafkatopic.yaml").is_file():
        pytest.skip(f"Strimzi CRDs not generated in {CRD_DIR} (needs mvn + java): run .ci/install-chart-tools.sh")
    schemas = {}
    for path in CRD_DIR.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schemas[crd["spec"]["names"]["kind"]] = strict(version["schema"]["openAPIV3Schema"])
    assert set(schemas) == set(STRIMZI_KINDS)
    return schemas


def strimzi_objects(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in STRIMZI_KINDS]


@pytest.mark.parametrize("chart", ["kafka", "platform"])
@pytest.mark.parametrize("profile", PROFILES)
def test_resources_match_strimzi_v1_crds(render: Renderer, strimzi_schemas: dict, chart: str, profile: str) -> None:
    objects = strimzi_objects(render(chart, profile, "--set", "kafka.kafkaUi.enabled=true" if chart == "platform"
                                     else "kafkaUi.enabled=true"))
    assert sorted(o["kind"] for o in objects) == sorted(STRIMZI_KINDS)
    for obj in objects:
        errors = sorted(jsonschema.Draft7Validator(strimzi_schemas[obj["kind"]]).iter_errors(obj), key=str)
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: " + "; ".join(
            f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_crd_schemas_catch_a_removed_v1beta2_field(strimzi_schemas: dict, render: Renderer) -> None:
    """The schema check has teeth: spec.kafka.replicas (v1beta2, gone in v1) is refused."""
    kafka = one(render("kafka"), "Kafka", f"{RELEASE}-kafka")
    kafka["spec"]["kafka"]["replicas"] = 1
    assert not jsonschema.Draft7Validator(strimzi_schemas["Kafka"]).is_valid(kafka)


@pytest.mark.parametrize("profile", PROFILES)
def test_kraft_cluster_with_one_dual_role_pool(render: Renderer, profile: str) -> None:
    objects = render("kafka", profile)
    for obj in strimzi_objects(objects):
        assert obj["apiVersion"] == "kafka.strimzi.io/v1"
    kafka = one(objects, "Kafka", f"{RELEASE}-kafka")
    assert "zookeeper" not in kafka["spec"]
    assert not {"replicas", "storage"} & set(kafka["spec"]["kafka"]), "v1 moved these to the node pool"
    pools = by_kind(objects, "KafkaNodePool")
    assert len(pools) == 1
    pool = pools[0]
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["spec"]["storage"]["type"] == "jbod"
    assert pool["spec"]["storage"]["volumes"][0]["kraftMetadata"] == "shared"
    plain = next(listener for listener in kafka["spec"]["kafka"]["listeners"] if listener["type"] == "internal")
    assert (plain["port"], plain["tls"]) == (9092, False)
    config = kafka["spec"]["kafka"]["config"]
    replicas = pool["spec"]["replicas"]
    assert config["default.replication.factor"] <= replicas and config["min.insync.replicas"] <= replicas


def test_topic_partitions_come_from_values(render: Renderer) -> None:
    objects = render("kafka", "default", "--set", "topic.partitions=7")
    topic = one(objects, "KafkaTopic", "transactions")
    assert topic["spec"]["topicName"] == "transactions"
    assert topic["spec"]["partitions"] == 7
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == f"{RELEASE}-kafka"


def test_nodeport_listener_only_on_kind_and_mapped_by_the_kind_config(render: Renderer) -> None:
    default = one(render("kafka"), "Kafka", f"{RELEASE}-kafka")
    assert [listener["type"] for listener in default["spec"]["kafka"]["listeners"]] == ["internal"]
    kafka = one(render("kafka", "kind"), "Kafka", f"{RELEASE}-kafka")
    nodeport = next(listener for listener in kafka["spec"]["kafka"]["listeners"] if listener["type"] == "nodeport")
    ports = {nodeport["configuration"]["bootstrap"]["nodePort"]}
    ports |= {b["nodePort"] for b in nodeport["configuration"]["brokers"]}
    assert all(b["advertisedHost"] == "localhost" for b in nodeport["configuration"]["brokers"])
    kind_config = yaml.safe_load((REPO / "k8s" / "kind-config.yaml").read_text())
    mapped = {m["containerPort"]: m["hostPort"] for node in kind_config["nodes"]
              for m in node.get("extraPortMappings", [])}
    for port in ports:
        assert mapped.get(port) == port, f"kind does not map node port {port} to the same host port"


def test_code_location_points_at_the_bootstrap_service_and_topic(render: Renderer) -> None:
    objects = render("platform", "kind")
    kafka = one(objects, "Kafka", f"{RELEASE}-kafka")
    topic = one(objects, "KafkaTopic", "transactions")
    env = one(objects, "ConfigMap", f"{RELEASE}-user-code-env")["data"]
    internal = next(listener for listener in kafka["spec"]["kafka"]["listeners"] if listener["type"] == "internal")
    # Strimzi names the bootstrap Service <cluster>-kafka-bootstrap.
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"{kafka['metadata']['name']}-kafka-bootstrap:{internal['port']}"
    assert env["KAFKA_TOPIC"] == topic["spec"]["topicName"]


def test_kafka_ui_is_off_by_default_and_valid_when_on(render: Renderer) -> None:
    assert not by_kind(render("kafka"), "Deployment")
    objects = render("kafka", "default", "--set", "kafkaUi.enabled=true")
    deployment = one(objects, "Deployment", f"{RELEASE}-kafka-ui")
    kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == f"{RELEASE}-kafka-kafka-bootstrap:9092"
    assert one(objects, "Service", f"{RELEASE}-kafka-ui")["spec"]["ports"][0]["port"] == 8080
