"""REST APIs and Kafka topics declared in the values (global.sources.rest_apis, kafka_topics): rendered into the
one sources ConfigMap as the app reads them, their schema generated from the app's RestApiSourceSpec and
KafkaTopicSpec (no secret's value, no unknown field), a KafkaTopic (and the user's ACLs) for each declared topic,
the API key of the mock API's /v1/items given to the user code and the run pods from one Secret, and the optional
Apicurio Registry with its Confluent-compatible URL in the user code."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
from chart_helpers import (
    KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    Renderer,
    by_kind,
    construct_run_job,
    one,
    pod_template,
    run,
    schema_refusal,
    sources_values,
    sources_yaml,
    template_refusal,
)
from fake_kube_api import FakeKubeApi, job_spec, run_secret_init, secret_init_jobs
from pydantic import BaseModel

from ingestion_patterns.poll.source import KafkaTopicSpec
from ingestion_patterns.pull.source import RestApiSourceSpec

pytestmark = pytest.mark.charts

CODE_SERVER = f"{RELEASE}-user-code"
SOURCE_API_SECRET = f"{RELEASE}-source-api"
REGISTRY = f"{RELEASE}-kafka-registry"
REGISTRY_URL = f"http://{REGISTRY}:8080/apis/ccompat/v7"
ORDERS = {
    "name": "orders",
    "base_url": "https://api.example.com",
    "path": "/v1/orders",
    "params": {"status": "open"},
    "auth": {"type": "bearer", "token_env": "ORDERS_API_TOKEN"},
    "paginator": {"type": "cursor", "cursor_path": "meta.next_cursor", "limit_param": "limit", "limit": 500},
    "records": {"format": "json", "path": "data"},
    "incremental": {"cursor_field": "updated_at", "param": "updated_since"},
    "primary_key": "id",
    "columns": [
        {"name": "id", "type": "bigint", "required": True},
        {"name": "total", "type": "double"},
        {"name": "updated_at", "type": "timestamptz", "required": True},
    ],
    "schedule": "15 * * * *",
}
PAYMENTS = {
    "name": "payments",
    "topic": "payments.v1",
    "consumer_group": "ingestion-payments",
    "value_format": "avro",
    "columns": [
        {"name": "payment_id", "type": "varchar", "required": True},
        {"name": "amount", "type": "double", "required": True},
        {"name": "paid_at", "type": "timestamptz"},
    ],
    "checks": [{"sql": "amount >= 0", "reason": "negative amount"}],
    "dead_letter_topic": "payments.v1.dlq",
}
REFUNDS = {"name": "refunds", "topic": "refunds", "columns": [{"name": "refund_id", "type": "varchar"}]}


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return ["-f", sources_values(tmp_path_factory, {"rest_apis": [ORDERS], "kafka_topics": [PAYMENTS, REFUNDS]})]


def item_schema(charts_dir: Path, chart: str, kind: str) -> dict:
    schema = json.loads((charts_dir / chart / "values.schema.json").read_text())
    return schema["properties"]["global"]["properties"]["sources"]["properties"][kind]["items"]


# ------------------------------------------------------------------------------------------ the ConfigMap


def test_rest_apis_and_kafka_topics_land_in_the_one_configmap_as_the_app_reads_them(
    render: Renderer, declared: list[str]
) -> None:
    objects = render("platform", "default", *declared)
    document = sources_yaml(objects)
    assert document["rest_apis"] == [ORDERS] and document["kafka_topics"] == [PAYMENTS, REFUNDS]
    assert [w["source_id"] for w in document["webhooks"]] == ["demo"], "the webhooks stay beside them"
    # The app's own models take each entry as it is (the sources file's readers validate them with these).
    assert RestApiSourceSpec.model_validate(document["rest_apis"][0]).secret_envs() == ["ORDERS_API_TOKEN"]
    payments, refunds = (KafkaTopicSpec.model_validate(entry) for entry in document["kafka_topics"])
    assert payments.dead_letter_topic == "payments.v1.dlq" and payments.value_format == "avro"
    assert refunds.name == "refunds" and refunds.value_format == "json"
    # One ConfigMap, still: the code server and the receiver mount the umbrella's.
    assert [cm["metadata"]["name"] for cm in by_kind(objects, "ConfigMap") if "sources.yaml" in cm["data"]] == [
        f"{RELEASE}-sources"
    ]


def test_a_declared_rest_api_rolls_the_code_server(render: Renderer, declared: list[str]) -> None:
    def checksum(objects: list[dict]) -> str:
        return pod_template(objects, CODE_SERVER)["metadata"]["annotations"]["checksum/sources"]

    assert checksum(render("platform", "default")) != checksum(render("platform", "default", *declared))


@pytest.mark.parametrize(
    ("kind", "entries", "message"),
    [
        (
            "rest_apis",
            [ORDERS, {**ORDERS, "path": "/v2/orders"}],
            'global.sources.rest_apis: name "orders" is declared twice',
        ),
        ("kafka_topics", [PAYMENTS, {**REFUNDS, "name": "payments"}], 'global.sources.kafka_topics: name "payments"'),
    ],
)
def test_a_name_declared_twice_fails_the_render(
    helm: str, charts_dir: Path, tmp_path_factory: pytest.TempPathFactory, kind: str, entries: list, message: str
) -> None:
    stderr = template_refusal(helm, charts_dir / "platform", "-f", sources_values(tmp_path_factory, {kind: entries}))
    assert message in stderr, stderr


# ------------------------------------------------------------------------------------------ the schema


@pytest.mark.parametrize(
    ("kind", "model", "required"),
    [
        ("rest_apis", RestApiSourceSpec, {"base_url", "name", "columns", "primary_key", "incremental"}),
        ("kafka_topics", KafkaTopicSpec, {"name", "columns"}),
    ],
)
def test_the_item_schema_is_the_apps_model(
    charts_dir: Path, kind: str, model: type[BaseModel], required: set[str]
) -> None:
    """Generated from the app's model: the same fields, closed, what its validators require required."""
    for chart in ("platform", "user-code", "webhook-receiver", "kafka"):
        item = item_schema(charts_dir, chart, kind)
        assert set(item["properties"]) == set(model.model_fields), chart
        assert item["additionalProperties"] is False and set(item["required"]) == required, chart


def test_every_secret_is_named_by_a_variable_in_the_schema(charts_dir: Path) -> None:
    """Every auth scheme's *_env field (and registry_url_env) carries the variable-name pattern."""
    auth = item_schema(charts_dir, "platform", "rest_apis")["properties"]["auth"]
    # One if/then per scheme, chosen by its type (a mistake is reported against that scheme alone).
    schemes = {case["if"]["properties"]["type"]["const"]: case["then"] for case in auth["allOf"]}
    assert set(schemes) == set(auth["properties"]["type"]["enum"])
    assert set(schemes) == {"bearer", "api_key", "basic", "oauth2_client_credentials"}
    named = {
        name: field["pattern"]
        for scheme in schemes.values()
        for name, field in scheme["properties"].items()
        if name.endswith("_env")
    }
    assert set(named) == {"token_env", "value_env", "password_env", "client_secret_env"}
    assert set(named.values()) == {"^[A-Za-z_][A-Za-z0-9_]*$"}
    topic = item_schema(charts_dir, "platform", "kafka_topics")["properties"]
    assert topic["registry_url_env"]["pattern"] == "^[A-Za-z_][A-Za-z0-9_]*$"


def _with(entry: dict, **changes: object) -> dict:
    return {**entry, **changes}


REFUSED = [
    (
        "an inline token",
        "rest_apis",
        _with(ORDERS, token="ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
        "'token' not allowed",
    ),
    (
        "a token as its variable's name",
        "rest_apis",
        _with(ORDERS, auth={"type": "bearer", "token_env": "ghp_16C7e42F+292c6912E7710c8/="}),
        "does not match pattern",
    ),
    (
        "an inline API key",
        "rest_apis",
        _with(ORDERS, auth={"type": "api_key", "name": "X-API-Key", "value": "k3y", "value_env": "K"}),
        "additional properties 'value' not allowed",
    ),
    ("an unknown auth scheme", "rest_apis", _with(ORDERS, auth={"type": "hmac", "secret_env": "S"}), "must be one of"),
    ("credentials in a header", "rest_apis", _with(ORDERS, headers={"Authorization": "Bearer x"}), "'not' failed"),
    ("an unknown field", "rest_apis", _with(ORDERS, retries=3), "additional properties 'retries' not allowed"),
    (
        "no primary key",
        "rest_apis",
        {k: v for k, v in ORDERS.items() if k != "primary_key"},
        "missing property 'primary_key'",
    ),
    ("a bad name", "rest_apis", _with(ORDERS, name="Orders-API"), "does not match pattern"),
    ("an inline password", "kafka_topics", _with(PAYMENTS, sasl_password="hunter2"), "'sasl_password' not allowed"),
    (
        "a URL as the registry's variable",
        "kafka_topics",
        _with(PAYMENTS, registry_url_env="http://r:8080"),
        "does not match pattern",
    ),
    ("no name", "kafka_topics", {k: v for k, v in REFUNDS.items() if k != "name"}, "missing property 'name'"),
    ("a bad topic", "kafka_topics", _with(REFUNDS, topic="re funds"), "does not match pattern"),
    (
        "an unknown column field",
        "kafka_topics",
        _with(REFUNDS, columns=[{"name": "a", "type": "varchar", "nullable": True}]),
        "'nullable' not allowed",
    ),
]


@pytest.mark.parametrize(("kind", "declaration", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize("chart", ["platform", "user-code"])
def test_lint_refuses_a_bad_declaration(
    helm: str,
    charts_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chart: str,
    kind: str,
    declaration: dict,
    message: str,
) -> None:
    output = schema_refusal(helm, charts_dir / chart, "-f", sources_values(tmp_path_factory, {kind: [declaration]}))
    assert message in output, output


@pytest.mark.parametrize("chart", ["platform", "user-code", "webhook-receiver", "kafka"])
def test_lint_accepts_the_declarations(helm: str, charts_dir: Path, declared: list[str], chart: str) -> None:
    result = run(helm, "lint", "--strict", str(charts_dir / chart), *declared, "--kube-version", KUBE_VERSION)
    assert "0 chart(s) failed" in result.stdout


# ------------------------------------------------------------------------------------------ Kafka topics


def topics(objects: list[dict]) -> dict[str, dict]:
    return {t["spec"]["topicName"]: t for t in by_kind(objects, "KafkaTopic")}


def test_each_declared_topic_is_a_kafkatopic(render: Renderer, declared: list[str]) -> None:
    objects = render("platform", "production", *declared)
    made = topics(objects)
    assert set(made) == {"transactions", "payments.v1", "payments.v1.dlq", "refunds"}
    assert made["payments.v1"]["metadata"]["name"] == "payments-v1"
    transactions = made["transactions"]["spec"]
    for name in ("payments.v1", "payments.v1.dlq", "refunds"):
        topic = made[name]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == f"{RELEASE}-kafka"
        # The shared topic settings (production: 12 partitions, 3 replicas).
        assert {k: topic["spec"][k] for k in ("partitions", "replicas", "config")} == {
            k: transactions[k] for k in ("partitions", "replicas", "config")
        }
    assert transactions["replicas"] == 3


def test_a_topic_can_have_its_own_settings(render: Renderer, declared: list[str]) -> None:
    objects = render(
        "platform",
        "default",
        *declared,
        "--set-json",
        'kafka.declaredTopics.overrides={"refunds": {"partitions": 6, "config": {"retention.ms": 3600000}}}',
    )
    refunds = topics(objects)["refunds"]["spec"]
    assert refunds["partitions"] == 6 and refunds["config"]["retention.ms"] == 3600000
    assert refunds["config"]["cleanup.policy"] == "delete", "merged over topic.config"
    assert topics(objects)["payments.v1"]["spec"]["partitions"] == 3


def test_the_app_user_reads_the_declared_topics_and_writes_only_dead_letters(
    render: Renderer, declared: list[str]
) -> None:
    user = one(render("platform", "default", *declared), "KafkaUser", f"{RELEASE}-kafka-app")
    operations = {
        a["resource"]["name"]: set(a["operations"])
        for a in user["spec"]["authorization"]["acls"]
        if a["resource"]["type"] == "topic"
    }
    read = {"Describe", "DescribeConfigs", "Read"}
    assert operations == {
        "transactions": read,
        "payments.v1": read,
        "refunds": read,
        "payments.v1.dlq": read | {"Write"},
    }


def test_no_topic_beyond_the_resources_own_when_nothing_else_is_declared(
    render: Renderer, tmp_path_factory: pytest.TempPathFactory, declared: list[str]
) -> None:
    # An entry without topic reads KAFKA_TOPIC (transactions): no second KafkaTopic for it.
    values = sources_values(
        tmp_path_factory, {"kafka_topics": [{"name": "tx2", "columns": [{"name": "a", "type": "bigint"}]}]}
    )
    assert set(topics(render("platform", "default", "-f", values))) == {"transactions"}
    assert set(topics(render("platform", "default", *declared, "--set", "kafka.declaredTopics.enabled=false"))) == {
        "transactions"
    }


def test_two_topics_with_one_kafkatopic_name_fail(
    helm: str, charts_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = sources_values(
        tmp_path_factory,
        {"kafka_topics": [_with(REFUNDS, topic="a.b"), _with(REFUNDS, name="refunds_b", topic="a_b")]},
    )
    stderr = template_refusal(helm, charts_dir / "platform", "-f", values)
    assert 'would both be the KafkaTopic "a-b"' in stderr, stderr


def test_standalone_mode_creates_the_declared_topics_with_its_job(render: Renderer, declared: list[str]) -> None:
    objects = render("platform", "default+standalone", *declared)
    assert not by_kind(objects, "KafkaTopic")
    script = one(objects, "Job", f"{RELEASE}-kafka-topic")["spec"]["template"]["spec"]["containers"][0]["command"][2]
    for name in ("transactions", "payments.v1", "payments.v1.dlq", "refunds"):
        assert f"--topic '{name}' --partitions 1" in script or f"--topic '{name}' --partitions 3" in script, name
    assert (
        "--topic 'payments.v1.dlq' --operation Describe --operation DescribeConfigs --operation Read --operation Write"
        in script
    )


# ------------------------------------------------------------------------------------------ the mock API's key


def test_the_api_key_reaches_the_mock_api_the_code_server_and_the_run_pods(render: Renderer, tmp_path: Path) -> None:
    objects = render("platform", "kind")
    mock_api = pod_template(objects, f"{RELEASE}-mock-api")["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom") for e in mock_api["env"]}
    assert env["MOCK_API_API_KEY"] == {"secretKeyRef": {"name": SOURCE_API_SECRET, "key": "SOURCE_API_KEY"}}
    assert env["MOCK_API_TOKEN"] == {"secretKeyRef": {"name": SOURCE_API_SECRET, "key": "SOURCE_API_TOKEN"}}
    # The platform generates both keys in that Secret...
    (job,) = [j for j in secret_init_jobs(objects) if j["metadata"]["name"] == f"{RELEASE}-secret-init"]
    spec = {s["name"]: s["keys"] for s in job_spec(job)}
    assert set(spec[SOURCE_API_SECRET]) == {"SOURCE_API_TOKEN", "SOURCE_API_KEY"}
    # ...and the code server and every run pod load it whole (SOURCE_API_KEY, as the items source names it).
    secret_ref = {"secretRef": {"name": SOURCE_API_SECRET}}
    assert secret_ref in pod_template(objects, CODE_SERVER)["spec"]["containers"][0]["envFrom"]
    (run_container,) = construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]["containers"]
    assert secret_ref in run_container["envFrom"]


def test_an_upgrade_adds_the_key_to_an_existing_secret(render: Renderer, tmp_path: Path) -> None:
    """A release installed before the key existed keeps its token and gains SOURCE_API_KEY."""
    api = FakeKubeApi()
    try:
        api.put(NAMESPACE, SOURCE_API_SECRET, {"SOURCE_API_TOKEN": "the-old-token"})
        (job,) = [
            j for j in secret_init_jobs(render("platform", "kind")) if j["metadata"]["name"] == f"{RELEASE}-secret-init"
        ]
        result = run_secret_init(job, api, tmp_path, NAMESPACE)
        assert result.returncode == 0, result.stderr
        values = api.values(NAMESPACE, SOURCE_API_SECRET)
        assert values["SOURCE_API_TOKEN"] == "the-old-token"
        assert len(values["SOURCE_API_KEY"]) == 32 and values["SOURCE_API_KEY"] not in result.stdout + result.stderr
    finally:
        api.close()


def test_the_mock_api_chart_alone_has_its_own_key(render: Renderer) -> None:
    def key_ref(objects: list[dict]) -> dict:
        env = {
            e["name"]: e.get("valueFrom")
            for e in pod_template(objects, f"{RELEASE}-mock-api")["spec"]["containers"][0]["env"]
        }
        return env["MOCK_API_API_KEY"]["secretKeyRef"]

    generated = render("mock-api", "default")
    assert key_ref(generated) == {"name": f"{RELEASE}-mock-api-api-key", "key": "SOURCE_API_KEY"}
    specs = [s for j in secret_init_jobs(generated) for s in job_spec(j)]
    assert {s["name"]: set(s["keys"]) for s in specs} == {
        f"{RELEASE}-mock-api-token": {"SOURCE_API_TOKEN"},
        f"{RELEASE}-mock-api-api-key": {"SOURCE_API_KEY"},
    }
    given = render("mock-api", "default", "--set", "apiKey.value=k3y")
    secret = one(given, "Secret", f"{RELEASE}-mock-api-api-key")
    assert secret["data"] == {"SOURCE_API_KEY": "azN5"}
    assert [s["name"] for j in secret_init_jobs(given) for s in job_spec(j)] == [f"{RELEASE}-mock-api-token"]
    existing = render("mock-api", "production")
    assert key_ref(existing) == {"name": "source-api-token", "key": "SOURCE_API_KEY"}
    assert not secret_init_jobs(existing)


# ------------------------------------------------------------------------------------------ Apicurio Registry


def env_configmap(objects: list[dict]) -> dict:
    return one(objects, "ConfigMap", f"{CODE_SERVER}-env")["data"]


def test_the_registry_is_off_by_default(render: Renderer) -> None:
    objects = render("platform", "default")
    assert not [o for o in objects if o["metadata"]["name"] == REGISTRY]
    assert env_configmap(objects)["SCHEMA_REGISTRY_URL"] == "", "unset: an Avro topic names what is missing"


@pytest.mark.parametrize("profile", ["default", "production"])
def test_the_registry_renders_and_the_user_code_gets_its_url(render: Renderer, profile: str, tmp_path: Path) -> None:
    objects = render("platform", profile, "--set", "global.schemaRegistry.enabled=true")
    deployment = one(objects, "Deployment", REGISTRY)
    service = one(objects, "Service", REGISTRY)
    policy = one(objects, "NetworkPolicy", REGISTRY)
    for obj in (deployment, service, policy):
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "apicurio/apicurio-registry:3.0.9"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    # The URL the app reads (KafkaTopicSpec.registry_url_env's default) points at that Service's ccompat API.
    variable = KafkaTopicSpec.model_fields["registry_url_env"].default
    assert env_configmap(objects)[variable] == REGISTRY_URL
    assert REGISTRY_URL.startswith(f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/")
    # The run pods load the same env ConfigMap.
    (run_container,) = construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": f"{CODE_SERVER}-env"}} in run_container["envFrom"]
    # Only this release's pods may call it.
    assert policy["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE}}}
    ]


def test_the_registry_image_and_storage_come_from_values(render: Renderer) -> None:
    objects = render(
        "kafka",
        "default",
        "--set",
        "global.schemaRegistry.enabled=true",
        "--set",
        "registry.image.tag=3.1.0",
        "--set-json",
        'registry.env=[{"name": "APICURIO_STORAGE_KIND", "value": "kafkasql"}, '
        '{"name": "APICURIO_KAFKASQL_BOOTSTRAP_SERVERS", "value": "{{ .Release.Name }}-kafka-kafka-bootstrap:9092"}]',
    )
    (container,) = one(objects, "Deployment", REGISTRY)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "apicurio/apicurio-registry:3.1.0"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == f"{RELEASE}-kafka-kafka-bootstrap:9092"


REGISTRY_DATA = "/var/lib/apicurio"
DATASOURCE = "APICURIO_DATASOURCE_URL"
REGISTRY_H2_FILE = f"jdbc:h2:file:{REGISTRY_DATA}/registry"


def render_registry(render: Renderer, *extra: str) -> list[dict]:
    """The kafka chart's objects with the registry on, over its default values."""
    return render("kafka", "default", "--set", "global.schemaRegistry.enabled=true", *extra)


def registry_storage(objects: list[dict]) -> tuple[dict | None, dict, dict[str, str | None]]:
    """The registry's PVC (None without one), its Deployment, and its container's env (name -> value)."""
    claims = [o for o in objects if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == REGISTRY]
    deployment = one(objects, "Deployment", REGISTRY)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"one entry per variable: {names}"
    return (claims[0] if claims else None), deployment, {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize(("chart", "profile"), [("kafka", "default"), ("platform", "production")])
def test_the_registry_keeps_its_schemas_on_a_volume_by_default(render: Renderer, chart: str, profile: str) -> None:
    """H2 in a file on a PVC: schema ids, which every Avro message in Kafka carries, survive a pod restart."""
    objects = render(chart, profile, "--set", "global.schemaRegistry.enabled=true")
    claim, deployment, env = registry_storage(objects)
    assert claim is not None
    kubernetes_validate.validate(claim, KUBE_VERSION, strict=True)
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"], "empty: the cluster's default StorageClass"
    assert env[DATASOURCE] == REGISTRY_H2_FILE
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "H2 has one writer: never two pods on the volume"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == REGISTRY_DATA]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": REGISTRY}
    # The non-root user on a read-only root filesystem writes the volume through its group.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_the_registry_volume_takes_its_size_and_class_from_values(render: Renderer) -> None:
    objects = render_registry(
        render, "--set", "registry.persistence.size=5Gi", "--set", "registry.persistence.storageClass=fast"
    )
    claim, _, _ = registry_storage(objects)
    assert claim is not None
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_the_registry_without_persistence_keeps_its_schemas_in_memory(render: Renderer) -> None:
    objects = render_registry(render, "--set", "registry.persistence.enabled=false")
    claim, deployment, env = registry_storage(objects)
    assert claim is None
    assert DATASOURCE not in env
    assert "strategy" not in deployment["spec"]
    pod = deployment["spec"]["template"]["spec"]
    assert [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]] == ["/tmp"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]


@pytest.mark.parametrize(
    "storage",
    [
        [{"name": "APICURIO_STORAGE_KIND", "value": "kafkasql"}],
        [
            {"name": "APICURIO_STORAGE_KIND", "value": "sql"},
            {"name": DATASOURCE, "value": "jdbc:postgresql://pg:5432/registry"},
        ],
        [{"name": DATASOURCE, "value": "jdbc:postgresql://pg:5432/registry"}],
    ],
    ids=["kafkasql", "sql", "datasource"],
)
def test_a_storage_in_the_registry_env_replaces_the_volume(render: Renderer, storage: list[dict]) -> None:
    objects = render_registry(render, "--set-json", f"registry.env={json.dumps(storage)}")
    claim, deployment, env = registry_storage(objects)
    assert claim is None, "the user's storage: no volume the registry would not use"
    assert {e["name"]: e["value"] for e in storage}.items() <= env.items()
    assert env.get(DATASOURCE) != REGISTRY_H2_FILE
    assert "strategy" not in deployment["spec"]
    assert REGISTRY_DATA not in [
        m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    ]


def test_an_unrelated_registry_env_keeps_the_volume(render: Renderer) -> None:
    objects = render_registry(render, "--set-json", 'registry.env=[{"name": "JAVA_OPTS_APPEND", "value": "-Xss1m"}]')
    claim, _, env = registry_storage(objects)
    assert claim is not None
    assert env[DATASOURCE] == REGISTRY_H2_FILE and env["JAVA_OPTS_APPEND"] == "-Xss1m"
