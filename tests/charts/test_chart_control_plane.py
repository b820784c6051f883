"""Dagster's control plane, at parity with the official Dagster chart: scheduling, annotations, env and Secrets
of the webserver and daemon, a read-only webserver, an Ingress for the UI that refuses to render without
authentication, `dagster instance migrate` before upgrades, compute logs in S3, GCS or Azure and tick retention
(dagster.yaml checked by Dagster's own validation), image digests and imagePullSecrets on every pod, run pods
included."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import (
    CASES,
    KUBE_VERSION,
    RELEASE,
    Renderer,
    by_kind,
    construct_run_job,
    instance_config,
    one,
    pod_spec,
    run,
)

pytestmark = pytest.mark.charts

WEBSERVER = f"{RELEASE}-dagster-webserver"
DAEMON = f"{RELEASE}-dagster-daemon"
DIGEST = "sha256:" + "ab" * 32


def pod(objects: list[dict], name: str) -> dict:
    return one(objects, "Deployment", name)["spec"]["template"]


@pytest.mark.parametrize(("component", "name"), [("webserver", WEBSERVER), ("daemon", DAEMON)])
def test_webserver_and_daemon_take_the_official_charts_settings(render: Renderer, component: str, name: str) -> None:
    prefix = f"dagster.{component}"
    objects = render(
        "platform",
        "default",
        "--set",
        f"{prefix}.nodeSelector.pool=system",
        "--set-json",
        f'{prefix}.tolerations=[{{"key":"system","operator":"Exists","effect":"NoSchedule"}}]',
        "--set-json",
        f'{prefix}.affinity={{"podAntiAffinity":{{"preferredDuringSchedulingIgnoredDuringExecution":[]}}}}',
        "--set",
        f"{prefix}.annotations.example\\.com/owner=data",
        "--set-json",
        f'{prefix}.env=[{{"name":"DAGSTER_CLI_API_GRPC_TIMEOUT","value":"120"}}]',
        "--set-json",
        f'{prefix}.envSecrets=[{{"name":"{{{{ .Release.Name }}}}-extra"}}]',
    )
    template = pod(objects, name)
    spec = template["spec"]
    assert spec["nodeSelector"] == {"pool": "system"}
    assert spec["tolerations"] == [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["affinity"] == {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    assert template["metadata"]["annotations"]["example.com/owner"] == "data"
    assert "checksum/instance" in template["metadata"]["annotations"]
    containers = spec.get("initContainers", []) + spec["containers"]
    for container in containers:
        env = {e["name"]: e for e in container["env"]}
        assert env["DAGSTER_CLI_API_GRPC_TIMEOUT"]["value"] == "120"
        assert "DAGSTER_PG_PASSWORD" in env  # the chart's own env stays
        assert container["envFrom"] == [{"secretRef": {"name": f"{RELEASE}-extra"}}]


def test_read_only_webserver(render: Renderer) -> None:
    assert "--read-only" not in pod(render("platform"), WEBSERVER)["spec"]["containers"][0]["args"]
    args = pod(render("platform", "default", "--set", "dagster.webserver.readOnly=true"), WEBSERVER)["spec"][
        "containers"
    ][0]["args"]
    assert args[:1] == ["dagster-webserver"] and "--read-only" in args


def test_service_account_annotations(render: Renderer) -> None:
    objects = render(
        "platform",
        "default",
        "--set",
        "dagster.serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=a@p.iam",
        "--set",
        "dagster.runLauncher.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:r",
    )
    control = one(objects, "ServiceAccount", f"{RELEASE}-dagster")
    runs = one(objects, "ServiceAccount", f"{RELEASE}-dagster-run")
    assert control["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "a@p.iam"}
    assert runs["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:r"}
    assert runs["automountServiceAccountToken"] is False


def test_run_launcher_env_secrets(render: Renderer, tmp_path: Path) -> None:
    objects = render("platform", "default", "--set", "dagster.runLauncher.envSecrets={logs-credentials}")
    assert instance_config(objects)["run_launcher"]["config"]["env_secrets"] == [
        f"{RELEASE}-inbox",
        f"{RELEASE}-source-api",
        "logs-credentials",
    ]
    container = construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]["containers"][0]
    assert {"secretRef": {"name": "logs-credentials"}} in container["envFrom"]


# ---- the UI's Ingress ----

UI_INGRESS = [
    "--set",
    "dagster.webserver.ingress.enabled=true",
    "--set",
    "dagster.webserver.ingress.host=dagster.example.com",
]


def test_ui_ingress_is_off_by_default_and_refused_without_authentication(
    render: Renderer, helm: str, charts_dir: Path
) -> None:
    assert not [i for i in by_kind(render("platform", "kind"), "Ingress") if i["metadata"]["name"] == WEBSERVER]
    result = run(
        helm, "template", "x", str(charts_dir / "platform"), "--kube-version", KUBE_VERSION, *UI_INGRESS, check=False
    )
    assert result.returncode != 0 and "the Dagster UI has no login of its own" in result.stderr


def test_ui_ingress_with_traefik_basic_auth(render: Renderer) -> None:
    objects = render(
        "platform",
        "default",
        *UI_INGRESS,
        "--set",
        "dagster.webserver.ingress.auth.basicAuthSecret=ui-users",
        "--set",
        "dagster.webserver.ingress.auth.traefikMiddlewares={sso-forward@kubernetescrd}",
    )
    middleware = one(objects, "Middleware", f"{WEBSERVER}-auth")
    assert middleware["spec"]["basicAuth"]["secret"] == "ui-users"
    ingress = one(objects, "Ingress", WEBSERVER)
    assert (
        ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"]
        == f"ingestion-{WEBSERVER}-auth@kubernetescrd,sso-forward@kubernetescrd"
    )
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "dagster.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": WEBSERVER, "port": {"name": "http"}}


def test_ui_ingress_with_nginx_basic_auth_and_cert_manager(render: Renderer) -> None:
    objects = render(
        "platform",
        "default",
        *UI_INGRESS,
        "--set",
        "dagster.webserver.ingress.className=nginx",
        "--set",
        "dagster.webserver.ingress.auth.basicAuthSecret=ui-users",
        "--set",
        "dagster.webserver.ingress.certManager.clusterIssuer=letsencrypt",
        "--set-json",
        'dagster.webserver.ingress.tls=[{"secretName":"ui-tls","hosts":["dagster.example.com"]}]',
    )
    assert not by_kind(objects, "Middleware") or all(
        m["metadata"]["name"] != f"{WEBSERVER}-auth" for m in by_kind(objects, "Middleware")
    )
    ingress = one(objects, "Ingress", WEBSERVER)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert annotations["nginx.ingress.kubernetes.io/auth-secret"] == "ui-users"
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["tls"] == [{"secretName": "ui-tls", "hosts": ["dagster.example.com"]}]


@pytest.mark.parametrize(
    "auth",
    [
        ["--set", "dagster.webserver.ingress.auth.annotations.example\\.com/auth-url=https://sso/auth"],
        ["--set", "dagster.webserver.ingress.auth.unauthenticated=true"],
    ],
)
def test_ui_ingress_with_another_gate(render: Renderer, auth: list[str]) -> None:
    ingress = one(
        render("platform", "default", *UI_INGRESS, "--set", "dagster.webserver.ingress.className=haproxy", *auth),
        "Ingress",
        WEBSERVER,
    )
    assert ingress["spec"]["ingressClassName"] == "haproxy"


def test_production_ui_is_behind_basic_auth_and_tls(render: Renderer) -> None:
    objects = render("platform", "production")
    ingress = one(objects, "Ingress", WEBSERVER)
    assert ingress["spec"]["tls"] and ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    assert one(objects, "Middleware", f"{WEBSERVER}-auth")["spec"]["basicAuth"]["secret"] == "dagster-ui-basic-auth"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "--set",
                "dagster.webserver.ingress.certManager.issuer=x",
                "--set",
                "dagster.webserver.ingress.auth.unauthenticated=true",
            ],
            "certManager: set tls",
        ),
        (
            [
                "--set",
                "dagster.webserver.ingress.className=haproxy",
                "--set",
                "dagster.webserver.ingress.auth.basicAuthSecret=u",
            ],
            "basicAuthSecret is rendered for the traefik and nginx classes",
        ),
        (
            [
                "--set",
                "dagster.webserver.ingress.pathType=Regex",
                "--set",
                "dagster.webserver.ingress.auth.unauthenticated=true",
            ],
            "at '/dagster/webserver/ingress/pathType'",
        ),
    ],
)
def test_ui_ingress_mistakes_are_refused(helm: str, charts_dir: Path, args: list[str], message: str) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "platform"),
        "--kube-version",
        KUBE_VERSION,
        *UI_INGRESS,
        *args,
        check=False,
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr


# ---- dagster instance migrate ----


def test_migration_runs_before_upgrades_with_the_new_instance_config(render: Renderer) -> None:
    objects = render("platform", "kind")
    job = one(objects, "Job", f"{RELEASE}-dagster-migrate")
    config_map = one(objects, "ConfigMap", f"{RELEASE}-dagster-migrate")
    for hook in (job, config_map):
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert int(config_map["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert yaml.safe_load(config_map["data"]["dagster.yaml"]) == instance_config(objects)
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["command"][-1].rstrip().endswith("dagster instance migrate")
    assert container["image"] == pod(objects, DAEMON)["spec"]["containers"][0]["image"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"{RELEASE}-postgresql"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["instance"]["configMap"]["name"] == f"{RELEASE}-dagster-migrate"
    assert not [
        o
        for o in render("platform", "kind", "--set", "dagster.migrate.enabled=false")
        if o["metadata"]["name"] == f"{RELEASE}-dagster-migrate"
    ]


# ---- compute logs and retention ----

COMPUTE_LOGS = {
    "s3": (
        [
            "--set",
            "dagster.computeLogManager.type=s3",
            "--set",
            "dagster.computeLogManager.s3.bucket=logs",
            "--set",
            "dagster.computeLogManager.s3.region=eu-west-1",
            "--set",
            "dagster.computeLogManager.uploadIntervalSeconds=30",
        ],
        "dagster_aws.s3.compute_log_manager",
        "S3ComputeLogManager",
    ),
    "gcs": (
        [
            "--set",
            "dagster.computeLogManager.type=gcs",
            "--set",
            "dagster.computeLogManager.gcs.bucket=logs",
            "--set",
            "dagster.computeLogManager.gcs.jsonCredentialsEnvvar=GCS_KEY",
        ],
        "dagster_gcp.gcs.compute_log_manager",
        "GCSComputeLogManager",
    ),
    "azure": (
        [
            "--set",
            "dagster.computeLogManager.type=azure",
            "--set",
            "dagster.computeLogManager.azure.storageAccount=acct",
            "--set",
            "dagster.computeLogManager.azure.container=logs",
        ],
        "dagster_azure.blob.compute_log_manager",
        "AzureBlobComputeLogManager",
    ),
    "azure-key": (
        [
            "--set",
            "dagster.computeLogManager.type=azure",
            "--set",
            "dagster.computeLogManager.azure.storageAccount=acct",
            "--set",
            "dagster.computeLogManager.azure.container=logs",
            "--set",
            "dagster.computeLogManager.azure.accessKeyOrSasTokenEnv=AZURE_STORAGE_KEY",
        ],
        "dagster_azure.blob.compute_log_manager",
        "AzureBlobComputeLogManager",
    ),
}

# Dagster's instance validation, then the compute log manager's own config schema, in an environment with the
# integration packages of the installed Dagster release (uv fetches them; they are not the project's dependencies).
VALIDATE = """
import importlib, sys, tempfile, pathlib
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
home = tempfile.mkdtemp()
pathlib.Path(home, "dagster.yaml").write_text(sys.stdin.read())
config, _ = dagster_instance_config(home)
section = config["compute_logs"]
klass = getattr(importlib.import_module(section["module"]), section["class"])
result = validate_config(klass.config_type(), section.get("config", {}))
print("OK" if result.success else [e.message for e in result.errors])
"""


@pytest.fixture(scope="module")
def dagster_with_integrations(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    import shutil

    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to fetch dagster-aws, dagster-gcp and dagster-azure", pytrace=False)
    library = importlib.metadata.version("dagster-k8s")  # the integrations share its version
    core = importlib.metadata.version("dagster")
    return [
        uv,
        "run",
        "--no-project",
        "--quiet",
        "--with",
        f"dagster=={core}",
        "--with",
        f"dagster-postgres=={library}",
        "--with",
        f"dagster-k8s=={library}",
        "--with",
        f"dagster-aws=={library}",
        "--with",
        f"dagster-gcp=={library}",
        "--with",
        f"dagster-azure=={library}",
        "python",
        "-c",
        VALIDATE,
    ]


@pytest.mark.parametrize("store", COMPUTE_LOGS)
def test_compute_logs_pass_dagsters_validation(
    render: Renderer, dagster_with_integrations: list[str], store: str
) -> None:
    args, module, klass = COMPUTE_LOGS[store]
    config = instance_config(render("platform", "default", *args))
    section = config["compute_logs"]
    assert (section["module"], section["class"]) == (module, klass)
    assert section["config"]["local_dir"] == "/tmp/dagster-compute-logs"  # a writable emptyDir in every pod
    result = subprocess.run(
        dagster_with_integrations, input=yaml.safe_dump(config), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr[-3000:]


def test_compute_logs_are_off_by_default(render: Renderer) -> None:
    assert instance_config(render("platform"))["compute_logs"]["class"] == "NoOpComputeLogManager"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "dagster.computeLogManager.type=s3"], "at '/dagster/computeLogManager/s3/bucket'"),
        (
            ["--set", "dagster.computeLogManager.type=azure", "--set", "dagster.computeLogManager.azure.container=c"],
            "at '/dagster/computeLogManager/azure/storageAccount'",
        ),
        (["--set", "dagster.computeLogManager.type=minio"], "value must be one of 'none', 's3', 'gcs', 'azure'"),
    ],
)
def test_compute_logs_need_their_store(helm: str, charts_dir: Path, args: list[str], message: str) -> None:
    result = run(
        helm, "template", "x", str(charts_dir / "platform"), "--kube-version", KUBE_VERSION, *args, check=False
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_tick_retention(render: Renderer, tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    config = instance_config(render("platform", "default", "--set", "dagster.retention.schedule.purgeAfterDays=30"))
    assert config["retention"] == {
        "schedule": {"purge_after_days": 30},
        "sensor": {"purge_after_days": {"skipped": 7, "failure": 30, "success": 30, "started": 30}},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, _ = dagster_instance_config(str(tmp_path))
    assert validated["retention"]["sensor"]["purge_after_days"]["skipped"] == 7
    assert "retention" not in instance_config(render("platform", "default", "--set", "dagster.retention.enabled=false"))


def test_retention_days_are_checked(helm: str, charts_dir: Path) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "platform"),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "dagster.retention.sensor.purgeAfterDays.skipped=-2",
        check=False,
    )
    assert result.returncode != 0 and "retention/sensor/purgeAfterDays" in result.stderr


# ---- images: digests and pull secrets ----


def test_image_digests_instead_of_tags(render: Renderer, tmp_path: Path) -> None:
    objects = render(
        "platform",
        "default",
        "--set",
        f"user-code.image.digest={DIGEST}",
        "--set",
        f"postgresql.image.digest={DIGEST}",
        "--set",
        f"webhook-receiver.image.digest={DIGEST}",
        "--set",
        f"mock-api.image.digest={DIGEST}",
    )
    code = pod(objects, f"{RELEASE}-user-code")["spec"]["containers"][0]
    assert code["image"] == f"ingestion-patterns/user-code@{DIGEST}"
    # Runs use the code server's image (DAGSTER_CURRENT_IMAGE); the control plane defaults to it too.
    assert {e["name"]: e.get("value") for e in code["env"]}["DAGSTER_CURRENT_IMAGE"] == code["image"]
    assert pod(objects, WEBSERVER)["spec"]["containers"][0]["image"] == code["image"]
    assert (
        one(objects, "StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"postgres@{DIGEST}"
    )
    assert (
        pod(objects, f"{RELEASE}-webhook-receiver")["spec"]["containers"][0]["image"]
        == f"ingestion-patterns/webhook-receiver@{DIGEST}"
    )
    assert (
        pod(objects, f"{RELEASE}-mock-api")["spec"]["containers"][0]["image"] == f"ingestion-patterns/mock-api@{DIGEST}"
    )
    other = render(
        "platform",
        "default",
        "--set",
        "dagster.image.repository=registry/dagster",
        "--set",
        f"dagster.image.digest={DIGEST}",
    )
    assert pod(other, DAEMON)["spec"]["containers"][0]["image"] == f"registry/dagster@{DIGEST}"


@pytest.mark.parametrize("chart", ["user-code", "webhook-receiver", "mock-api"])
def test_a_digest_must_be_a_digest(helm: str, charts_dir: Path, chart: str) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / chart),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "image.digest=latest",
        check=False,
    )
    assert result.returncode != 0 and "'latest' does not match pattern" in result.stderr


def test_image_pull_secrets_on_every_pod_and_every_run(render: Renderer, tmp_path: Path) -> None:
    """global.imagePullSecrets everywhere; each chart's own list where it applies; run pods get the control plane's
    and the code location's (they run its image)."""
    objects = render(
        "platform",
        "default",
        "--set",
        "global.imagePullSecrets[0].name=global-registry",
        "--set",
        "dagster.imagePullSecrets[0].name=dagster-registry",
        "--set",
        "user-code.imagePullSecrets[0].name=code-registry",
        "--set",
        "kafka.enabled=false",
    )
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            names = [s["name"] for s in spec.get("imagePullSecrets", [])]
            assert "global-registry" in names, f"{obj['kind']}/{obj['metadata']['name']}"
            assert len(names) == len(set(names))
    assert [s["name"] for s in pod(objects, WEBSERVER)["spec"]["imagePullSecrets"]] == [
        "dagster-registry",
        "global-registry",
    ]
    job = construct_run_job(objects, tmp_path)
    assert [s["name"] for s in job["spec"]["template"]["spec"]["imagePullSecrets"]] == [
        "dagster-registry",
        "code-registry",
        "global-registry",
    ]


@pytest.mark.parametrize(("chart", "profile"), [c for c in CASES if c[0] != "kafka"])
def test_no_pull_secrets_unless_asked(render: Renderer, chart: str, profile: str) -> None:
    for obj in render(chart, profile):
        spec = pod_spec(obj)
        if spec is not None and not obj["metadata"]["name"].startswith(f"{RELEASE}-kafka"):
            assert "imagePullSecrets" not in spec, f"{obj['kind']}/{obj['metadata']['name']}"


def test_the_remaining_pass_through_values(render: Renderer, tmp_path: Path) -> None:
    """Values that only pass through: PostgreSQL's pull secrets, the UI Ingress's own annotations and path,
    runK8sConfig.jobConfig, the upload interval, auto-materialize tick retention."""
    objects = render(
        "platform",
        "default",
        *UI_INGRESS,
        "--set",
        "dagster.webserver.ingress.auth.unauthenticated=true",
        "--set",
        "dagster.webserver.ingress.annotations.example\\.com/x=y",
        "--set",
        "dagster.webserver.ingress.path=/ui",
        "--set",
        "postgresql.imagePullSecrets[0].name=pg-registry",
        "--set-json",
        'dagster.runLauncher.runK8sConfig.jobConfig={"metadata":{"annotations":{"a":"b"}}}',
        "--set",
        "dagster.computeLogManager.type=s3",
        "--set",
        "dagster.computeLogManager.s3.bucket=b",
        "--set",
        "dagster.computeLogManager.uploadIntervalSeconds=15",
        "--set",
        "dagster.retention.autoMaterialize.purgeAfterDays=3",
    )
    statefulset = one(objects, "StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]
    assert statefulset["imagePullSecrets"] == [{"name": "pg-registry"}]
    ingress = one(objects, "Ingress", WEBSERVER)
    assert ingress["metadata"]["annotations"] == {"example.com/x": "y"}
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/ui"
    config = instance_config(objects)
    assert config["run_launcher"]["config"]["run_k8s_config"]["job_config"] == {"metadata": {"annotations": {"a": "b"}}}
    assert config["compute_logs"]["config"]["upload_interval"] == 15
    assert config["retention"]["auto_materialize"] == {"purge_after_days": 3}
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    assert dagster_instance_config(str(tmp_path))[0]["retention"]["auto_materialize"]["purge_after_days"] == 3
