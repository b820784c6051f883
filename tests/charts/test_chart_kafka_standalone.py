"""charts/kafka's standalone mode (`mode: standalone`): one KRaft node as a plain StatefulSet for clusters
without the Strimzi operator. The rendering contract other parts rely on, and one real run: the rendered
start script, server.properties and topic Job run on this machine's Java against Kafka's real jars, through
the local-cluster image's scripts (k8s/local-cluster/images/kafka/bin)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHARTS_DIR, KUBE_VERSION, NAMESPACE, RELEASE, REPO, Renderer, by_kind, one, pod_spec, run

from ingestion_devtools import kafka_broker as local_broker
from ingestion_devtools.processes import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.charts

STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic"}
CLUSTER = f"{RELEASE}-kafka"
VALUES = yaml.safe_load((CHARTS_DIR / "kafka" / "values.yaml").read_text())
IMAGE_SCRIPTS = REPO / "k8s" / "local-cluster" / "images" / "kafka" / "bin"
BOOTSTRAP_DNS = f"{CLUSTER}-kafka-bootstrap:9092"
# The plaintext-only node of before the tls listener (no certificates, no authorizer).
INSECURE = ("--set", "listeners.tls.enabled=false", "--set", "authorization.enabled=false")


def standalone(render: Renderer, *extra: str, chart: str = "kafka") -> list[dict]:
    return render(chart, "default+standalone", *extra)


def container(obj: dict) -> dict:
    return pod_spec(obj)["containers"][0]


def properties(objects: list[dict]) -> dict[str, str]:
    text = one(objects, "ConfigMap", f"{CLUSTER}-kafka-config")["data"]["server.properties"]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def selects(service_or_set: dict, pod_labels: dict) -> bool:
    selector = service_or_set["spec"]["selector"]
    selector = selector.get("matchLabels", selector)
    return selector.items() <= pod_labels.items()


# --- rendering ---------------------------------------------------------------------------------------------


def test_strimzi_is_the_default_and_standalone_objects_stay_out(render: Renderer) -> None:
    default = render("kafka")
    assert {o["kind"] for o in default} >= STRIMZI_KINDS
    assert not by_kind(default, "StatefulSet") and not by_kind(default, "Job")
    assert not [o for o in default if o["kind"] == "Service"], "Strimzi's operator creates the Services"
    assert render("kafka", "default", "--set", "mode=strimzi") == default


def test_standalone_renders_no_strimzi_resources(render: Renderer) -> None:
    for objects in (standalone(render), standalone(render, chart="platform"), render("platform", "kind+standalone")):
        assert not {o["kind"] for o in objects} & STRIMZI_KINDS
        assert not [o for o in objects if o["apiVersion"].startswith("kafka.strimzi.io/")]


def test_one_kraft_node_behind_the_strimzi_service_names(render: Renderer) -> None:
    objects = standalone(render)
    statefulset = one(objects, "StatefulSet", f"{CLUSTER}-kafka")
    assert statefulset["spec"]["replicas"] == 1
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["metadata"]["labels"]["app.kubernetes.io/component"] == "kafka"
    assert pod_labels["app.kubernetes.io/component"] == "kafka"
    assert selects(statefulset, pod_labels)
    bootstrap = one(objects, "Service", f"{CLUSTER}-kafka-bootstrap")
    assert [(p["port"], p["targetPort"]) for p in bootstrap["spec"]["ports"]] == [(9092, "plain"), (9093, "tls")]
    assert selects(bootstrap, pod_labels)
    headless = one(objects, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and selects(headless, pod_labels)
    ports = {p["name"]: p["containerPort"] for p in container(statefulset)["ports"]}
    assert ports["plain"] == VALUES["listeners"]["internal"]["port"]
    # The bootstrap address clients are given is the Service's; the node advertises the same.
    props = properties(objects)
    assert props["advertised.listeners"].split(",") == [
        f"PLAIN://{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9092",
        f"TLS://{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9093",
        f"REPLICATION://{CLUSTER}-kafka-0.{CLUSTER}-kafka-brokers.{NAMESPACE}.svc:9091",
    ]
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "0@localhost:9090"


def test_the_node_pool_values_size_the_node(render: Renderer) -> None:
    objects = standalone(
        render,
        "--set",
        "nodePool.storage.class=fast",
        "--set",
        "nodePool.storage.size=7Gi",
        "--set",
        "nodePool.storage.deleteClaim=true",
    )
    statefulset = one(objects, "StatefulSet", f"{CLUSTER}-kafka")
    claim = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "fast" and claim["resources"]["requests"]["storage"] == "7Gi"
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    main = container(statefulset)
    assert main["resources"] == VALUES["nodePool"]["resources"]
    env = {e["name"]: e["value"] for e in main["env"]}
    jvm = VALUES["nodePool"]["jvmOptions"]
    assert env["KAFKA_HEAP_OPTS"] == f"-Xms{jvm['-Xms']} -Xmx{jvm['-Xmx']}"
    assert env["LOG_DIR"] == "/tmp"
    assert {m["mountPath"] for m in main["volumeMounts"]} >= {"/tmp", "/var/lib/kafka/data"}
    default_claim = one(standalone(render), "StatefulSet", f"{CLUSTER}-kafka")["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in default_claim["spec"], "no class: the cluster's default StorageClass"


def test_broker_config_merges_kafka_config_under_the_kraft_settings(render: Renderer) -> None:
    props = properties(
        standalone(
            render,
            "--set",
            "kafka.config.num\\.io\\.threads=4",
            "--set",
            "kafka.config.node\\.id=7",
            "--set",
            "kafka.config.log\\.retention\\.hours=1",
        )
    )
    assert props["num.io.threads"] == "4" and props["log.retention.hours"] == "1"
    assert props["auto.create.topics.enable"] == "false", "kafka.config from values.yaml"
    assert props["node.id"] == "0", "the KRaft single-node settings are the chart's"
    assert props["offsets.topic.replication.factor"] == "1"


def test_the_image_defaults_to_apache_kafka_at_the_kafka_version(render: Renderer) -> None:
    objects = standalone(render)
    image = f"apache/kafka:{VALUES['kafka']['version']}"
    job = one(objects, "Job", f"{RELEASE}-kafka-topic")
    test_pod = one(objects, "Pod", f"{RELEASE}-kafka-test")
    for workload in (one(objects, "StatefulSet", f"{CLUSTER}-kafka"), job, test_pod):
        assert container(workload)["image"] == image
    local = standalone(
        render,
        "--set",
        "standalone.image.repository=localhost/ingestion-patterns/kafka",
        "--set",
        "standalone.image.tag=4.4.0-bookworm",
        "--set",
        "standalone.image.pullPolicy=Never",
    )
    for workload in (one(local, "StatefulSet", f"{CLUSTER}-kafka"), one(local, "Pod", f"{RELEASE}-kafka-test")):
        assert container(workload)["image"] == "localhost/ingestion-patterns/kafka:4.4.0-bookworm"
        assert container(workload)["imagePullPolicy"] == "Never"
    strimzi_test_pod = one(render("kafka"), "Pod", f"{RELEASE}-kafka-test")
    assert container(strimzi_test_pod)["image"].startswith("quay.io/strimzi/kafka:")


def test_topic_job_is_a_bounded_hook_with_the_topic_values(render: Renderer) -> None:
    job = one(standalone(render, "--set", "topic.partitions=6", *INSECURE), "Job", f"{RELEASE}-kafka-topic")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["backoffLimit"] >= 1
    script = container(job)["command"][-1]
    assert "/opt/kafka/bin/kafka-topics.sh" in script and "--create --if-not-exists" in script
    assert f"--bootstrap-server {CLUSTER}-kafka-bootstrap:9092" in script
    assert "--partitions 6" in script and "--replication-factor 1" in script
    # YAML numbers must reach Kafka as written (not 6.048e+08).
    assert "'retention.ms=604800000'" in script and "'cleanup.policy=delete'" in script


@pytest.mark.parametrize("mode", ["strimzi", "standalone"])
def test_pods_that_only_call_out_admit_no_traffic(render: Renderer, mode: str) -> None:
    objects = render("kafka", "default", "--set", f"mode={mode}")
    policy = one(objects, "NetworkPolicy", f"{RELEASE}-kafka-no-ingress")
    assert policy["spec"]["policyTypes"] == ["Ingress"] and not policy["spec"].get("ingress")
    callers = [o for o in objects if o["kind"] in {"Job", "Pod"}]
    # standalone: the topic Job, the certificates Job and the test pod.
    assert len(callers) == (3 if mode == "standalone" else 1)
    for obj in callers:
        labels = obj["metadata"]["labels"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]["labels"]
        assert selects({"spec": {"selector": policy["spec"]["podSelector"]}}, labels), obj["metadata"]["name"]
    for workload in by_kind(objects, "StatefulSet"):
        assert not selects(
            {"spec": {"selector": policy["spec"]["podSelector"]}}, workload["spec"]["template"]["metadata"]["labels"]
        )


def test_platform_clients_point_at_the_standalone_bootstrap_service(render: Renderer) -> None:
    objects = render("platform", "kind+standalone")
    env = one(objects, "ConfigMap", f"{RELEASE}-user-code-env")["data"]
    statefulset = one(objects, "StatefulSet", f"{CLUSTER}-kafka")
    bootstrap = one(objects, "Service", f"{CLUSTER}-kafka-bootstrap")
    # The platform's clients log in on the tls listener (SASL_SSL as the KafkaUser) by default.
    tls = next(p["port"] for p in bootstrap["spec"]["ports"] if p["targetPort"] == "tls")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"{bootstrap['metadata']['name']}:{tls}"
    assert selects(bootstrap, statefulset["spec"]["template"]["metadata"]["labels"])
    ui = one(
        render("platform", "kind+standalone", "--set", "kafka.kafkaUi.enabled=true"),
        "Deployment",
        f"{RELEASE}-kafka-ui",
    )
    ui_env = {e["name"]: e["value"] for e in container(ui)["env"]}
    # The optional UI reads over the plain listener of the same bootstrap Service.
    plain = next(p["port"] for p in bootstrap["spec"]["ports"] if p["targetPort"] == "plain")
    assert ui_env["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == f"{bootstrap['metadata']['name']}:{plain}"


def test_nodeport_listener_in_standalone_mode(render: Renderer) -> None:
    objects = render("kafka", "kind+standalone")
    node_port = VALUES["listeners"]["nodePort"]
    service = one(objects, "Service", f"{CLUSTER}-kafka-external-bootstrap")
    assert service["spec"]["type"] == "NodePort"
    broker = node_port["brokers"][0]
    assert {p["nodePort"] for p in service["spec"]["ports"]} == {node_port["bootstrapNodePort"], broker["nodePort"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"external"}
    props = properties(objects)
    assert f"EXTERNAL://{broker['advertisedHost']}:{broker['advertisedPort']}" in props["advertised.listeners"]
    assert "EXTERNAL://:9094" in props["listeners"].split(",")
    policy = one(objects, "NetworkPolicy", f"{CLUSTER}-kafka")
    assert {p["port"] for p in policy["spec"]["ingress"][0]["ports"]} == {"plain", "tls", "external"}


def test_schema_and_template_refuse_what_standalone_cannot_do(helm: str, charts_dir: Path) -> None:
    def template(*sets: str) -> subprocess.CompletedProcess[str]:
        args = [a for s in sets for a in ("--set", s)]
        return run(helm, "template", "x", str(charts_dir / "kafka"), "--kube-version", KUBE_VERSION, *args, check=False)

    bad_mode = template("mode=operator")
    assert bad_mode.returncode != 0 and "value must be one of 'strimzi', 'standalone'" in bad_mode.stderr
    three = template("mode=standalone", "nodePool.replicas=3")
    assert three.returncode != 0 and "/nodePool/replicas" in three.stderr and "must be 1" in three.stderr
    assert template("nodePool.replicas=3").returncode == 0, "Strimzi mode scales the node pool"
    no_node_zero = template(
        "mode=standalone",
        "listeners.nodePort.enabled=true",
        "listeners.nodePort.brokers[0].broker=2",
        "listeners.nodePort.brokers[0].nodePort=30095",
    )
    assert no_node_zero.returncode != 0 and "brokers entry for broker 0" in no_node_zero.stderr


# --- the real run ------------------------------------------------------------------------------------------


def rewrite(text: str, replacements: dict[str, str]) -> str:
    """Each rendered path/address replaced by its local stand-in; a missing one means the chart changed."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the rendered text:\n{text}"
        text = text.replace(old, new)
    return text


async def produce_and_consume(bootstrap: str, topic: str, count: int) -> tuple[int, list[str]]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        partitions = len(await producer.partitions_for(topic))
        for i in range(count):
            await producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    return partitions, await consume(bootstrap, topic, count)


async def consume(bootstrap: str, topic: str, count: int) -> list[str]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    seen: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(seen) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                seen += [m.value.decode() for records in batches.values() for m in records]
    finally:
        await consumer.stop()
    return seen


def cluster_id(log_dir: Path) -> str:
    meta = dict(
        line.split("=", 1)
        for line in (log_dir / "meta.properties").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return meta["cluster.id"]


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_rendered_standalone_node_runs_for_real(render: Renderer, tmp_path: Path) -> None:
    """The StatefulSet's script formats once and starts a broker from the ConfigMap's server.properties;
    the hook Job's script creates the topic (auto-creation is off, so producing proves it did); the helm
    test pod's command describes it; a restart on the same volume keeps the cluster id and the data."""
    java = local_broker.java_executable()
    if java is None:
        pytest.skip("Java is not installed: the standalone node runs Kafka's jars on it")
    libs = local_broker.ensure_jars()
    partitions = 4
    objects = standalone(render, "--set", f"topic.partitions={partitions}", *INSECURE)
    statefulset = one(objects, "StatefulSet", f"{CLUSTER}-kafka")
    node = container(statefulset)
    job = container(one(objects, "Job", f"{RELEASE}-kafka-topic"))
    test_pod = container(one(objects, "Pod", f"{RELEASE}-kafka-test"))
    assert node["command"][:2] == job["command"][:2] == ["/bin/sh", "-ec"]

    port, controller_port = free_port(), free_port()
    config_dir, data_dir, scratch = tmp_path / "config", tmp_path / "data", tmp_path / "tmp"
    for folder in (config_dir, data_dir, scratch):
        folder.mkdir()
    bootstrap = f"127.0.0.1:{port}"
    # Where the pod has its mounts, the service DNS name and the fixed ports, this machine has these.
    paths = {
        "/opt/kafka/bin/": f"{IMAGE_SCRIPTS}/",
        "/etc/kafka/server": str(config_dir),
        "/var/lib/kafka/data": str(data_dir),
    }
    (config_dir / "server.properties").write_text(
        rewrite(
            one(objects, "ConfigMap", f"{CLUSTER}-kafka-config")["data"]["server.properties"],
            {
                "PLAIN://:9092": f"PLAIN://127.0.0.1:{port}",
                "CONTROLLER://:9090": f"CONTROLLER://127.0.0.1:{controller_port}",
                "0@localhost:9090": f"0@127.0.0.1:{controller_port}",
                f"{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9092": bootstrap,
                "/var/lib/kafka/data": str(data_dir),
            },
        )
    )
    node_script = rewrite(node["command"][2], paths)
    env = {e["name"]: e["value"].replace("/tmp", str(scratch)) for e in node["env"]}
    env["KAFKA_LIBS"] = str(libs)

    def start_node(log: str) -> ManagedProcess:
        process = ManagedProcess(
            "kafka-standalone", ["/bin/sh", "-ec", node_script], env=env, log_path=tmp_path / log
        ).start()

        def answering() -> bool:
            if not process.running:
                raise AssertionError(f"the node exited ({process.proc.returncode}):\n{process.log_tail()}")
            return local_broker.metadata_ok(bootstrap)

        wait_until(answering, timeout=120, what=f"the standalone node at {bootstrap}", interval=0.5)
        return process

    def run_tool(command: list[str]) -> subprocess.CompletedProcess[str]:
        tool_env = {
            **os.environ,
            **{e["name"]: e["value"].replace("/tmp", str(scratch)) for e in job["env"]},
            "KAFKA_LIBS": str(libs),
        }
        command = rewrite("\0".join(command), {BOOTSTRAP_DNS: bootstrap, "/opt/kafka/bin/": f"{IMAGE_SCRIPTS}/"}).split(
            "\0"
        )
        result = subprocess.run(command, env=tool_env, capture_output=True, text=True, timeout=150)
        assert result.returncode == 0, f"{command[-1]}\nfailed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result

    node_process = start_node("first-start.log")
    try:
        run_tool(job["command"])
        described = run_tool(test_pod["command"]).stdout
        assert re.search(rf"PartitionCount:\s*{partitions}\b", described), described
        assert "retention.ms=604800000" in described and "cleanup.policy=delete" in described, described
        found, seen = asyncio.run(produce_and_consume(bootstrap, "transactions", 40))
        assert found == partitions
        assert sorted(seen) == sorted(f"v{i}" for i in range(40))
        first_id = cluster_id(data_dir / "kafka-log0")
        assert (data_dir / "cluster.id").read_text().strip() == first_id
        # The topic Job runs again on every upgrade: an existing topic is fine.
        run_tool(job["command"])
    finally:
        node_process.stop(timeout=60)
    assert "Formatting metadata directory" in (tmp_path / "first-start.log").read_text()

    node_process = start_node("restart.log")
    try:
        assert cluster_id(data_dir / "kafka-log0") == first_id
        assert "Formatting metadata directory" not in (tmp_path / "restart.log").read_text(), (
            "the restart formatted the volume again"
        )
        assert sorted(asyncio.run(consume(bootstrap, "transactions", 40))) == sorted(f"v{i}" for i in range(40))
    finally:
        node_process.stop(timeout=60)


# --- the real run, secured: TLS + SCRAM-SHA-512 + ACLs --------------------------------------------------------


def run_certificates_job(
    objects: list[dict], root: Path, existing: dict[str, dict[str, bytes]] | None = None
) -> dict[str, dict[str, bytes]]:
    """The certificates hook Job's init container, run here with this machine's keytool; returns the Secrets
    it would write (name -> key -> bytes). ``existing`` are Secrets already there (mounted, optional)."""
    job = one(objects, "Job", f"{RELEASE}-kafka-certificates")
    spec = pod_spec(job)
    make = spec["initContainers"][0]
    mounts = {m["name"]: m["mountPath"] for m in make["volumeMounts"]}
    secret_of = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    for volume, path in mounts.items():
        folder = root / path.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        for key, data in ((existing or {}).get(secret_of.get(volume, ""), {})).items():
            (folder / key).write_bytes(data)
    script = make["command"][2].replace("/existing", str(root / "existing")).replace("/work", str(root / "work"))
    result = subprocess.run(["/bin/sh", "-ec", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"certificates script failed:\n{result.stdout}\n{result.stderr}"
    assert container(job)["args"][:2] == ["apply", "--server-side"]

    written = {}
    for doc in yaml.safe_load_all((root / "work" / "secrets.yaml").read_text()):
        if doc:
            assert doc["kind"] == "Secret" and doc["metadata"]["namespace"] == NAMESPACE
            written[doc["metadata"]["name"]] = {k: base64.b64decode(v) for k, v in doc["data"].items()}
    return written


def test_certificates_job_keeps_what_exists(render: Renderer, tmp_path: Path) -> None:
    """A second run (an upgrade) writes back the CA, the broker's certificate and the user's password unchanged;
    a missing one is made again, signed by the kept CA."""
    objects = standalone(render)
    first = run_certificates_job(objects, tmp_path / "first")
    assert set(first) == {
        f"{CLUSTER}-cluster-ca-cert",
        f"{CLUSTER}-cluster-ca",
        f"{CLUSTER}-kafka-brokers",
        f"{CLUSTER}-app",
    }
    assert first[f"{CLUSTER}-cluster-ca-cert"]["ca.crt"].startswith(b"-----BEGIN CERTIFICATE-----")
    assert len(first[f"{CLUSTER}-app"]["password"]) == 32
    again = run_certificates_job(objects, tmp_path / "again", existing=first)
    assert again == first
    without_user = {k: v for k, v in first.items() if k != f"{CLUSTER}-app"}
    renewed = run_certificates_job(objects, tmp_path / "renewed", existing=without_user)
    assert renewed[f"{CLUSTER}-cluster-ca"] == first[f"{CLUSTER}-cluster-ca"]
    assert renewed[f"{CLUSTER}-app"]["password"] != first[f"{CLUSTER}-app"]["password"]


def test_secured_standalone_renders_the_strimzi_contract(render: Renderer) -> None:
    objects = standalone(render)
    props = properties(objects)
    assert props["listener.security.protocol.map"].split(",") == [
        "PLAIN:PLAINTEXT",
        "TLS:SASL_SSL",
        "REPLICATION:SSL",
        "CONTROLLER:SSL",
    ]
    assert props["listener.name.tls.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["super.users"] == f"User:CN={CLUSTER}-kafka"
    assert "password" not in json.dumps(one(objects, "ConfigMap", f"{CLUSTER}-kafka-config")).replace(
        "ssl.keystore.password", ""
    ).lower().replace("ssl.key.password", "")
    bootstrap = one(objects, "Service", f"{CLUSTER}-kafka-bootstrap")
    assert [(p["name"], p["port"]) for p in bootstrap["spec"]["ports"]] == [("plain", 9092), ("tls", 9093)]
    statefulset = one(objects, "StatefulSet", f"{CLUSTER}-kafka")
    secrets = {v["secret"]["secretName"] for v in pod_spec(statefulset)["volumes"] if "secret" in v}
    assert secrets == {f"{CLUSTER}-kafka-brokers", f"{CLUSTER}-cluster-ca-cert"}
    hooks = [o for o in objects if "certificates" in o["metadata"]["name"]]
    assert sorted(o["kind"] for o in hooks) == ["Job", "Role", "RoleBinding", "ServiceAccount"]
    for hook in hooks:
        assert set(hook["metadata"]["annotations"]["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    role = one(objects, "Role", f"{RELEASE}-kafka-certificates")
    named = next(r for r in role["rules"] if "resourceNames" in r)
    assert set(named["verbs"]) == {"get", "patch"}
    assert set(named["resourceNames"]) == secrets | {f"{CLUSTER}-app", f"{CLUSTER}-cluster-ca"}
    assert all(r["resources"] == ["secrets"] for r in role["rules"])
    policy = one(objects, "NetworkPolicy", f"{CLUSTER}-kafka")
    replication = next(rule for rule in policy["spec"]["ingress"] if rule.get("from"))
    assert replication["ports"] == [{"port": "replication", "protocol": "TCP"}]
    assert replication["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "kafka-topic"
    # Off: no certificates, no authorizer; authorization needs the tls listener in this mode.
    plain = standalone(render, "--set", "listeners.tls.enabled=false", "--set", "authorization.enabled=false")
    assert not [o for o in plain if "certificates" in o["metadata"]["name"]]
    assert "authorizer.class.name" not in properties(plain)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_rendered_secured_standalone_node_runs_for_real(render: Renderer, tmp_path: Path) -> None:
    """The certificates Job's keytool script, the node's start script and server.properties (SASL_SSL with
    SCRAM-SHA-512, mutual TLS for the broker's own traffic, StandardAuthorizer), the topic Job (topic, SCRAM
    credential, ACLs as the broker's certificate principal) and the helm test pod (as the application's user),
    run here; then the application's client (KafkaResource) over SASL_SSL: its ACLs hold, a wrong password and
    an anonymous client are refused."""
    from aiokafka.errors import KafkaError

    from ingestion_patterns.poll.client import KafkaResource

    java = local_broker.java_executable()
    if java is None or not shutil.which("keytool"):
        pytest.skip("Java (with keytool) is not installed: the standalone node runs Kafka's jars on it")
    libs = local_broker.ensure_jars()
    objects = standalone(
        render, "--set", "topic.partitions=2", "--set", "user.topicOperations={Describe,DescribeConfigs,Read,Write}"
    )
    secrets = run_certificates_job(objects, tmp_path / "job")
    folders = {
        "/etc/kafka/certs": f"{CLUSTER}-kafka-brokers",
        "/etc/kafka/ca": f"{CLUSTER}-cluster-ca-cert",
        "/etc/kafka/user": f"{CLUSTER}-app",
    }
    paths = {"/opt/kafka/bin/": f"{IMAGE_SCRIPTS}/"}
    for mount, secret in folders.items():
        folder = tmp_path / mount.strip("/").replace("/", "-")
        folder.mkdir()
        for key, data in secrets[secret].items():
            (folder / key).write_bytes(data)
        paths[mount] = str(folder)
    config_dir, data_dir, scratch = tmp_path / "config", tmp_path / "data", tmp_path / "tmp"
    for folder in (config_dir, data_dir, scratch):
        folder.mkdir()
    plain, tls, replication, controller = (free_port() for _ in range(4))
    (config_dir / "server.properties").write_text(
        rewrite(
            one(objects, "ConfigMap", f"{CLUSTER}-kafka-config")["data"]["server.properties"],
            {
                "PLAIN://:9092": f"PLAIN://127.0.0.1:{plain}",
                "TLS://:9093": f"TLS://127.0.0.1:{tls}",
                "REPLICATION://:9091": f"REPLICATION://127.0.0.1:{replication}",
                "CONTROLLER://:9090": f"CONTROLLER://127.0.0.1:{controller}",
                "0@localhost:9090": f"0@localhost:{controller}",
                f"{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9092": f"127.0.0.1:{plain}",
                # The certificate names localhost (and 127.0.0.1) besides the Services.
                f"{CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9093": f"localhost:{tls}",
                f"{CLUSTER}-kafka-0.{CLUSTER}-kafka-brokers.{NAMESPACE}.svc:9091": f"localhost:{replication}",
                "/var/lib/kafka/data": str(data_dir),
                "/etc/kafka/certs": paths["/etc/kafka/certs"],
                "/etc/kafka/ca": paths["/etc/kafka/ca"],
            },
        )
    )
    node = container(one(objects, "StatefulSet", f"{CLUSTER}-kafka"))
    env = {e["name"]: e["value"].replace("/tmp", str(scratch)) for e in node["env"]}
    env["KAFKA_LIBS"] = str(libs)
    node_script = rewrite(
        node["command"][2],
        {
            "/opt/kafka/bin/": paths["/opt/kafka/bin/"],
            "/etc/kafka/certs": paths["/etc/kafka/certs"],
            "/etc/kafka/server": str(config_dir),
            "/var/lib/kafka/data": str(data_dir),
        },
    )
    process = ManagedProcess(
        "kafka-secured", ["/bin/sh", "-ec", node_script], env=env, log_path=tmp_path / "node.log"
    ).start()

    def tool(command: list[str], replacements: dict[str, str]) -> subprocess.CompletedProcess[str]:
        text = "\0".join(command)
        text = rewrite(
            text,
            {
                **{k: v for k, v in paths.items() if k in text},
                **replacements,
                "/tmp/admin.properties"
                if "admin" in text
                else "/tmp/client.properties": f"{scratch}/client.properties",
            },
        )
        tool_env = {**os.environ, "LOG_DIR": str(scratch), "KAFKA_LIBS": str(libs), "KAFKA_HEAP_OPTS": "-Xmx256m"}
        result = subprocess.run(text.split("\0"), env=tool_env, capture_output=True, text=True, timeout=200)
        assert result.returncode == 0, f"{text}\nfailed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result

    try:
        wait_until(
            lambda: process.running and local_broker.metadata_ok(f"127.0.0.1:{plain}"),
            timeout=120,
            what="the secured standalone node",
            interval=0.5,
        )
        job = container(one(objects, "Job", f"{RELEASE}-kafka-topic"))
        tool(job["command"], {f"{CLUSTER}-kafka-brokers.{NAMESPACE}.svc:9091": f"localhost:{replication}"})
        described = tool(
            container(one(objects, "Pod", f"{RELEASE}-kafka-test"))["command"],
            {f"{CLUSTER}-kafka-bootstrap:9093": f"localhost:{tls}"},
        ).stdout
        assert re.search(r"PartitionCount:\s*2\b", described), described

        password = secrets[f"{CLUSTER}-app"]["password"].decode()
        cafile = str(tmp_path / "etc-kafka-ca" / "ca.crt")

        def app(password: str = password, **fields) -> KafkaResource:
            return KafkaResource(
                bootstrap_servers=f"localhost:{tls}",
                security_protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_username=f"{CLUSTER}-app",
                sasl_password=password,
                ssl_cafile=cafile,
                **fields,
            )

        async def produce_consume(kafka: KafkaResource, topic: str = "transactions") -> list[str]:
            producer = kafka.producer(acks="all")
            await producer.start()
            try:
                for i in range(10):
                    await producer.send(topic, value=f"s{i}".encode())
                await producer.flush()
            finally:
                await producer.stop()
            async with kafka.consumer_session(group_id="ingestion-patterns") as consumer:
                from aiokafka import TopicPartition

                consumer.assign([TopicPartition(topic, p) for p in range(2)])
                seen: list[str] = []
                async with asyncio.timeout(60):
                    while len(seen) < 10:
                        batches = await consumer.getmany(timeout_ms=1000)
                        seen += [m.value.decode() for records in batches.values() for m in records]
                await consumer.commit()
            return seen

        assert sorted(asyncio.run(produce_consume(app()))) == sorted(f"s{i}" for i in range(10))

        async def refused(kafka: KafkaResource, topic: str = "transactions") -> str:
            producer = kafka.producer(request_timeout_ms=10000)
            try:
                await producer.start()
                await asyncio.wait_for(producer.send_and_wait(topic, b"x"), 30)
            except (KafkaError, TimeoutError) as error:
                return f"{type(error).__name__}: {error}"
            finally:
                await producer.stop()
            return "accepted"

        # aiokafka only says it could not bootstrap; the resource names the reason.
        assert asyncio.run(refused(app("not-the-password"))) != "accepted"
        reason = asyncio.run(app("not-the-password").diagnose())
        assert reason and "SCRAM-SHA-512 authentication of user 'ip-kafka-app' failed" in reason, reason
        assert asyncio.run(app().diagnose()) is None
        other_topic = asyncio.run(refused(app(), topic="not-allowed"))
        assert "Authorization" in other_topic or "not-allowed" in other_topic, other_topic
        anonymous = asyncio.run(refused(KafkaResource(bootstrap_servers=f"127.0.0.1:{plain}")))
        assert "Authorization" in anonymous, anonymous
    finally:
        process.stop(timeout=60)
