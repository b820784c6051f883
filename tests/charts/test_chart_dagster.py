"""The platform's Dagster instance: dagster.yaml is accepted by Dagster itself, and the Job that the
K8sRunLauncher builds from it (with dagster-k8s's own code) carries the DuckDB volume, the code server's
env and Secrets, the restricted security context and a TTL."""

from __future__ import annotations

import importlib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from chart_helpers import KUBE_VERSION, NAMESPACE, PROFILES, RELEASE, Renderer, by_kind, instance_config, one, run
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job
from kubernetes.client import ApiClient

pytestmark = pytest.mark.charts

USER_CODE = f"{RELEASE}-user-code"
IMAGE = "ingestion-patterns/user-code:test"


@pytest.mark.parametrize("profile", PROFILES)
def test_dagster_accepts_the_instance_config(render: Renderer, profile: str, tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance_config(render("platform", profile))))
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    for key in (
        "run_launcher",
        "run_coordinator",
        "run_storage",
        "event_log_storage",
        "schedule_storage",
        "compute_logs",
        "scheduler",
        "local_artifact_storage",
    ):
        section = config[key]
        # Each configurable class validates its own config section, as the instance does on start-up.
        klass = getattr(importlib.import_module(section["module"]), section["class"])
        result = validate_config(klass.config_type(), section.get("config", {}))
        assert result.success, (key, [e.message for e in result.errors or []])


@pytest.mark.parametrize("profile", PROFILES)
def test_control_plane_shape(render: Renderer, profile: str) -> None:
    config = instance_config(render("platform", profile))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["run_launcher"]["module"] == "dagster_k8s"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    for storage in ("run_storage", "event_log_storage", "schedule_storage"):
        assert config[storage]["module"].startswith("dagster_postgres.")
        db = config[storage]["config"]["postgres_db"]
        # The password comes from the environment (a Secret), never from the ConfigMap.
        assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["telemetry"]["enabled"] is False


@pytest.mark.parametrize("profile", PROFILES)
def test_duckdb_pool_limit_is_one(render: Renderer, profile: str) -> None:
    """The daemon sets pool `duckdb` to 1 before it dequeues; unlisted pools default to 1 as well."""
    objects = render("platform", profile)
    daemon = one(objects, "Deployment", f"{RELEASE}-dagster-daemon")
    init = {c["name"]: c for c in daemon["spec"]["template"]["spec"]["initContainers"]}["pool-limits"]
    script = init["command"][-1]
    assert "dagster instance concurrency set duckdb 1" in script.splitlines()
    assert instance_config(objects)["concurrency"]["pools"]["default_limit"] == 1


def test_pool_limit_other_than_one_is_refused(helm: str, charts_dir: Path) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "platform"),
        "--set",
        "dagster.concurrency.pools.duckdb=2",
        "--kube-version",
        KUBE_VERSION,
        check=False,
    )
    assert result.returncode != 0 and "duckdb" in result.stderr


@pytest.fixture
def run_job(render: Renderer, tmp_path: Path):
    """build(profile) -> the run Job that dagster-k8s constructs from the rendered run_launcher config."""

    def build(profile: str) -> dict:
        launcher_config = dict(instance_config(render("platform", profile))["run_launcher"]["config"])
        # Outside a cluster: load a throw-away kubeconfig instead of the in-cluster one (nothing is called).
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "c",
                    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                }
            )
        )
        launcher_config.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
        launcher = K8sRunLauncher(**launcher_config)
        run = DagsterRun(job_name="process_webhook_data", run_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
        job = construct_dagster_k8s_job(
            job_config=context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
            args=["dagster", "api", "execute_run", "{}"],
            job_name="dagster-run-0f1e2d3c",
            pod_name="dagster-run-0f1e2d3c",
            component="run_worker",
            user_defined_k8s_config=context.run_k8s_config,
            labels={"dagster/job": run.job_name, "dagster/run-id": run.run_id},
        )
        return ApiClient().sanitize_for_serialization(job)

    return build


@pytest.mark.parametrize("profile", PROFILES)
def test_run_job_is_valid_kubernetes(run_job, profile: str) -> None:
    job = run_job(profile)
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_run_pods_mount_the_duckdb_claim_and_share_the_code_servers_env(
    render: Renderer, run_job, profile: str
) -> None:
    objects = render("platform", profile)
    job = run_job(profile)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]

    claim = one(by_kind(objects, "Deployment"), "Deployment", USER_CODE)["spec"]["template"]["spec"]
    code_volume = {v["name"]: v for v in claim["volumes"]}["duckdb"]
    run_volumes = {v["name"]: v for v in pod["volumes"]}
    assert run_volumes["duckdb"]["persistentVolumeClaim"] == code_volume["persistentVolumeClaim"]
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["duckdb"] == "/data"
    assert any(
        p["metadata"]["name"] == code_volume["persistentVolumeClaim"]["claimName"]
        for p in by_kind(objects, "PersistentVolumeClaim")
    )

    # Same ConfigMap and Secrets as the code server, by reference.
    code_container = claim["containers"][0]
    code_env_from = [(k, v["name"]) for e in code_container["envFrom"] for k, v in e.items()]
    run_env_from = [(k, v["name"]) for e in container["envFrom"] for k, v in e.items()]
    assert set(code_env_from) <= set(run_env_from), (code_env_from, run_env_from)
    # The instance (PostgreSQL) password, from its Secret.
    pg = {e["name"]: e for e in container["env"]}["DAGSTER_PG_PASSWORD"]
    assert "secretKeyRef" in pg["valueFrom"]


@pytest.mark.parametrize("profile", PROFILES)
def test_run_jobs_are_garbage_collected_and_restricted(render: Renderer, run_job, profile: str) -> None:
    expected_ttl = instance_config(render("platform", profile))["run_launcher"]["config"]["run_k8s_config"][
        "job_spec_config"
    ]["ttl_seconds_after_finished"]
    job = run_job(profile)
    assert job["spec"]["ttlSecondsAfterFinished"] == expected_ttl > 0
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == f"{RELEASE}-dagster-run"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # With a read-only root filesystem the run needs a writable /tmp.
    assert "/tmp" in {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert pod["containers"][0]["image"] == IMAGE
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "dagster-run"


def test_user_code_sets_dagster_current_image(render: Renderer) -> None:
    """Runs use the very image the code server runs (K8sRunLauncher reads DAGSTER_CURRENT_IMAGE)."""
    deployment = one(render("platform", "kind", "--set", "user-code.image.tag=abc123"), "Deployment", USER_CODE)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["DAGSTER_CURRENT_IMAGE"] == container["image"] == "ingestion-patterns/user-code:abc123"


def test_workspace_points_at_the_code_server(render: Renderer) -> None:
    objects = render("platform")
    workspace = yaml.safe_load(one(objects, "ConfigMap", f"{RELEASE}-dagster-workspace")["data"]["workspace.yaml"])
    server = workspace["load_from"][0]["grpc_server"]
    service = one(objects, "Service", USER_CODE)
    assert server["host"] == service["metadata"]["name"]
    assert server["port"] == service["spec"]["ports"][0]["port"] == 4000
    assert server["location_name"] == "ingestion_patterns"


def test_launcher_rbac_allows_jobs_and_pods_only_in_the_run_namespace(render: Renderer) -> None:
    objects = render("platform")
    role = one(objects, "Role", f"{RELEASE}-dagster")
    assert role["metadata"]["namespace"] == NAMESPACE
    rules = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert {"create", "delete", "get", "watch"} <= rules[("batch", "jobs")]
    assert "*" not in set().union(*rules.values())
    assert {"list", "get"} <= rules[("", "pods")]
    binding = one(objects, "RoleBinding", f"{RELEASE}-dagster")
    assert binding["subjects"][0]["name"] == f"{RELEASE}-dagster"
    for name in ("webserver", "daemon"):
        spec = one(objects, "Deployment", f"{RELEASE}-dagster-{name}")["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == f"{RELEASE}-dagster"


@pytest.mark.parametrize("profile", PROFILES)
def test_instance_storage_path_is_writable_in_every_dagster_pod(render: Renderer, run_job, profile: str) -> None:
    """Root filesystems are read-only: local_artifact_storage must sit on a mounted volume everywhere."""
    objects = render("platform", profile)
    base_dir = instance_config(objects)["local_artifact_storage"]["config"]["base_dir"]

    def mounted(container: dict) -> bool:
        return any(
            base_dir == m["mountPath"] or base_dir.startswith(m["mountPath"].rstrip("/") + "/")
            for m in container.get("volumeMounts", [])
        )

    for name in ("webserver", "daemon"):
        spec = one(objects, "Deployment", f"{RELEASE}-dagster-{name}")["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert mounted(container), f"{name}/{container['name']}: {base_dir} is not on a volume"
    run_container = run_job(profile)["spec"]["template"]["spec"]["containers"][0]
    assert mounted(run_container)
    # In run pods it is the DuckDB claim, shared by every run.
    mount = next(m for m in run_container["volumeMounts"] if base_dir.startswith(m["mountPath"].rstrip("/") + "/"))
    assert mount["name"] == "duckdb"
