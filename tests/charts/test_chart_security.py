"""Security and operability of every rendered workload: the restricted Pod Security profile, probes,
resources, and credentials that are referenced from Secrets and never inlined anywhere else."""

from __future__ import annotations

import base64
import json
import re

import pytest
from chart_helpers import CASES, NAMESPACE, RELEASE, Renderer, by_kind, one, pod_spec
from fake_kube_api import FakeKubeApi, job_spec, run_secret_init, secret_init_jobs

pytestmark = pytest.mark.charts

LONG_RUNNING = {"Deployment", "StatefulSet"}
# Secrets a production install expects to exist already (created by the operator's secret manager), and the
# Kafka user's, which Strimzi's User Operator writes (charts/kafka's KafkaUser <cluster>-app).
PRODUCTION_EXISTING_SECRETS = {
    "webhook-inbox",
    "webhook-signing-secrets",
    "source-api-token",
    "ingestion-postgresql",
    "webhook-admin-token",
    f"{RELEASE}-kafka-app",
}
KAFKA_USER_SECRETS = {f"{RELEASE}-kafka-app"}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECRET_ENV_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|INBOX_URL", re.I)


def workloads(objects: list[dict]) -> list[tuple[dict, dict]]:
    return [(obj, spec) for obj in objects if (spec := pod_spec(obj)) is not None]


def containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def label(obj: dict, container: dict | None = None) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}" + (f" container {container['name']}" if container else "")


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_restricted_security_context(render: Renderer, chart: str, profile: str) -> None:
    found = workloads(render(chart, profile))
    assert found
    for obj, spec in found:
        pod = spec.get("securityContext", {})
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, label(obj)
        for container in containers(spec):
            ctx = container.get("securityContext", {})
            where = label(obj, container)
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not ctx.get("capabilities", {}).get("add"), where
            assert ctx.get("privileged") is not True, where
            assert (ctx.get("runAsNonRoot", pod.get("runAsNonRoot"))) is True, where
            assert ctx.get("runAsUser", pod.get("runAsUser", 1)) != 0, where
            seccomp = ctx.get("seccompProfile", pod.get("seccompProfile"))
            assert seccomp == {"type": "RuntimeDefault"}, where
            assert container["image"].split(":")[-1] not in ("", "latest"), f"{where}: unpinned image"
        # The restricted Pod Security Standard admits only these volume types (no hostPath).
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, f"{label(obj)}: volume {volume['name']} is {kinds}"


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_long_running_containers_have_probes_and_resources(render: Renderer, chart: str, profile: str) -> None:
    for obj, spec in workloads(render(chart, profile)):
        for container in containers(spec):
            where = label(obj, container)
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits", {}).get("memory"), where
            if obj["kind"] in LONG_RUNNING and container in spec["containers"]:
                assert container.get("livenessProbe"), f"{where}: no liveness probe"
                assert container.get("readinessProbe"), f"{where}: no readiness probe"


def test_webhook_receiver_probes_health_and_ready(render: Renderer) -> None:
    deployment = one(render("webhook-receiver"), "Deployment", f"{RELEASE}-webhook-receiver")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["args"][:2] == ["ingest", "webhook-receiver"]
    assert container["args"][container["args"].index("--workers") + 1] == "2"


def test_user_code_probes_the_grpc_server(render: Renderer) -> None:
    container = one(render("user-code"), "Deployment", f"{RELEASE}-user-code")["spec"]["template"]["spec"][
        "containers"
    ][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"][:3] == ["dagster", "api", "grpc-health-check"], probe


def rendered_secret_values(objects: list[dict]) -> dict[str, str]:
    values = {}
    for secret in by_kind(objects, "Secret"):
        for key, encoded in (secret.get("data") or {}).items():
            values[f"{secret['metadata']['name']}/{key}"] = base64.b64decode(encoded).decode()
        for key, plain in (secret.get("stringData") or {}).items():
            values[f"{secret['metadata']['name']}/{key}"] = plain
    return values


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_secret_values_appear_only_in_secrets(render: Renderer, chart: str, profile: str) -> None:
    objects = render(chart, profile)
    others = json.dumps([o for o in objects if o["kind"] != "Secret"])
    for where, value in rendered_secret_values(objects).items():
        if len(value) >= 8:
            # The password alone is also part of the inbox URL: look for each credential on its own.
            for part in re.split(r"[:@/]", value):
                if len(part) >= 16:
                    assert part not in others, f"value of {where} is inlined outside its Secret"


def generated_secret_names(objects: list[dict]) -> set[str]:
    """The Secrets the charts' secret-init hook Jobs create (rendered as a spec, never as values)."""
    return {spec["name"] for job in secret_init_jobs(objects) for spec in job_spec(job)}


@pytest.fixture
def generate(tmp_path):
    """generate(objects) -> {secret name: {key: value}}: every secret-init Job of a rendering run against a fake
    Kubernetes API, as the hooks would run on install."""
    api = FakeKubeApi()

    def run(objects: list[dict]) -> dict[str, dict[str, str]]:
        for job in secret_init_jobs(objects):
            result = run_secret_init(job, api, tmp_path, NAMESPACE)
            assert result.returncode == 0, result.stdout + result.stderr
        return {name: api.values(ns, name) for ns, name in api.secrets}

    yield run
    api.close()


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_credentials_come_from_secrets(render: Renderer, chart: str, profile: str) -> None:
    objects = render(chart, profile)
    rendered = {s["metadata"]["name"] for s in by_kind(objects, "Secret")}
    rendered |= generated_secret_names(objects)
    for obj, spec in workloads(objects):
        for container in containers(spec):
            where = label(obj, container)
            referenced = set()
            for env in container.get("env", []):
                if SECRET_ENV_NAME.search(env["name"]):
                    assert "value" not in env, f"{where}: {env['name']} is inlined"
                    if env["name"] != "DAGSTER_CURRENT_IMAGE":
                        referenced.add(env["valueFrom"]["secretKeyRef"]["name"])
                if "value" in env:
                    assert not re.search(r"://[^/\s]*:[^@/\s]+@", env["value"]), f"{where}: credentials in a URL"
                    assert "whsec_" not in env["value"], where
            referenced |= {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
            missing = referenced - rendered
            if profile.partition("+")[0] == "production":
                missing -= PRODUCTION_EXISTING_SECRETS
            # The platform logs in to its own Kafka by default: the KafkaUser's Secret, which Strimzi's User
            # Operator (or the standalone certificates Job) writes.
            missing -= KAFKA_USER_SECRETS
            assert not missing, f"{where} references Secrets that are neither rendered nor documented: {missing}"


def test_platform_wires_one_set_of_credentials(render: Renderer, generate) -> None:
    """The receiver, the code server and the mock API use the platform's generated Secrets, which agree. The inbox
    has its own role and password (never the superuser's): PostgreSQL's inbox-role sidecar sets the very password
    that the inbox URL carries."""
    objects = render("platform", "kind")
    secrets = generate(objects)
    password = secrets[f"{RELEASE}-postgresql"]["postgresql-password"]
    inbox_password = secrets[f"{RELEASE}-inbox"]["WEBHOOK_INBOX_PASSWORD"]
    inbox_url = secrets[f"{RELEASE}-inbox"]["WEBHOOK_INBOX_URL"]
    assert inbox_url == f"postgresql://webhook_inbox:{inbox_password}@{RELEASE}-postgresql:5432/webhook_inbox"
    assert inbox_password != password and len(inbox_password) >= 32
    assert secrets[f"{RELEASE}-source-api"]["SOURCE_API_TOKEN"]
    postgres = one(objects, "StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]
    sidecar = {c["name"]: c for c in postgres["initContainers"]}["inbox-role"]
    sidecar_env = {e["name"]: e for e in sidecar["env"]}
    assert sidecar_env["INBOX_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-inbox",
        "key": "WEBHOOK_INBOX_PASSWORD",
    }
    assert sidecar_env["INBOX_ROLE"]["value"] == "webhook_inbox"
    receiver = one(objects, "Deployment", f"{RELEASE}-webhook-receiver")["spec"]["template"]["spec"]["containers"][0]
    inbox_ref = {e["name"]: e for e in receiver["env"]}["WEBHOOK_INBOX_URL"]["valueFrom"]["secretKeyRef"]
    assert inbox_ref == {"name": f"{RELEASE}-inbox", "key": "WEBHOOK_INBOX_URL"}
    mock = one(objects, "Deployment", f"{RELEASE}-mock-api")["spec"]["template"]["spec"]["containers"][0]
    token_ref = {e["name"]: e for e in mock["env"]}["MOCK_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token_ref == {"name": f"{RELEASE}-source-api", "key": "SOURCE_API_TOKEN"}
    code = one(objects, "Deployment", f"{RELEASE}-user-code")["spec"]["template"]["spec"]["containers"][0]
    assert {e["secretRef"]["name"] for e in code["envFrom"] if "secretRef" in e} == {
        f"{RELEASE}-inbox",
        f"{RELEASE}-source-api",
    }
    statefulset = one(objects, "StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]["containers"][0]
    pg_ref = {e["name"]: e for e in statefulset["env"]}["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert pg_ref == {"name": f"{RELEASE}-postgresql", "key": "postgresql-password"}


def test_signing_secrets_are_generated_per_source(render: Renderer, generate) -> None:
    objects = render("webhook-receiver", "default", "--set", "signing.sources={shop,crm-eu}")
    secret = generate(objects)[f"{RELEASE}-webhook-receiver-signing"]
    shop = secret["WEBHOOK_SECRET_SHOP"]
    crm = secret["WEBHOOK_SECRET_CRM_EU"]
    assert shop.startswith("whsec_") and crm.startswith("whsec_") and shop != crm
    # Standard Webhooks secrets are base64 after the prefix.
    assert len(base64.b64decode(shop.removeprefix("whsec_"))) >= 24


def test_existing_signing_secret_is_used_and_nothing_generated(render: Renderer) -> None:
    objects = render(
        "webhook-receiver",
        "default",
        "--set",
        "signing.existingSecret=my-signing",
        "--set",
        "inbox.existingSecret=my-inbox",
    )
    assert not by_kind(objects, "Secret")
    container = one(objects, "Deployment", f"{RELEASE}-webhook-receiver")["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "my-signing"}} in container["envFrom"]


def test_postgresql_runs_restricted_on_a_claim(render: Renderer) -> None:
    statefulset = one(render("platform"), "StatefulSet", f"{RELEASE}-postgresql")
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("postgres:")
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/var/lib/postgresql/data", "/var/run/postgresql"}
