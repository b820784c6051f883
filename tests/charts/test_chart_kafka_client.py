"""The code location's Kafka client security (user-code kafka.security): PLAINTEXT by default; with SASL_SSL the
code server AND every run pod get KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME (the env
ConfigMap), KAFKA_SASL_PASSWORD (a secretKeyRef to the KafkaUser's Secret) and KAFKA_SSL_CAFILE (the cluster CA
mounted from its Secret) - the names the application's settings read."""

from __future__ import annotations

from pathlib import Path

import pytest
from chart_helpers import KUBE_VERSION, RELEASE, Renderer, construct_run_job, one, run

from ingestion_patterns.settings import Settings

pytestmark = pytest.mark.charts

USER_CODE = f"{RELEASE}-user-code"
# Templated names, as values-production.yaml gives them.
SASL_SSL = [
    "--set-json",
    'user-code.kafka.security={"protocol": "SASL_SSL", '
    '"username": "{{ .Release.Name }}-kafka-app", '
    '"passwordSecret": {"name": "{{ .Release.Name }}-kafka-app"}, '
    '"caSecret": {"name": "{{ .Release.Name }}-kafka-cluster-ca-cert"}}',
]
KAFKA_ENV = {
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
}


def env_config_map(objects: list[dict]) -> dict[str, str]:
    return one(objects, "ConfigMap", f"{USER_CODE}-env")["data"]


def test_the_application_reads_every_name_the_chart_renders() -> None:
    assert {name.lower() for name in KAFKA_ENV} <= set(Settings.model_fields)


# The platform installs charts/kafka with its ACLs on, so it logs in by default (below); user-code alone has no
# Kafka of its own to match.
@pytest.mark.parametrize("chart", ["user-code"])
def test_plaintext_by_default(render: Renderer, chart: str) -> None:
    objects = render(chart)
    data = env_config_map(objects)
    assert data["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert not (KAFKA_ENV - {"KAFKA_SECURITY_PROTOCOL"}) & set(data)
    container = one(objects, "Deployment", USER_CODE)["spec"]["template"]["spec"]["containers"][0]
    assert "KAFKA_SASL_PASSWORD" not in {e["name"] for e in container["env"]}


def test_sasl_ssl_reaches_the_code_server_and_every_run_pod(render: Renderer, tmp_path: Path) -> None:
    objects = render("platform", "default", *SASL_SSL)
    data = env_config_map(objects)
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["KAFKA_SASL_USERNAME"] == f"{RELEASE}-kafka-app"
    assert data["KAFKA_SSL_CAFILE"] == "/etc/kafka-ca/ca.crt"
    password_ref = {"secretKeyRef": {"name": f"{RELEASE}-kafka-app", "key": "password"}}
    ca_volume = {
        "name": "kafka-ca",
        "secret": {"secretName": f"{RELEASE}-kafka-cluster-ca-cert", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
    }

    spec = one(objects, "Deployment", USER_CODE)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert {e["name"]: e for e in container["env"]}["KAFKA_SASL_PASSWORD"]["valueFrom"] == password_ref
    assert ca_volume in spec["volumes"]
    assert {"name": "kafka-ca", "mountPath": "/etc/kafka-ca", "readOnly": True} in container["volumeMounts"]

    pod = construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]
    run_container = pod["containers"][0]
    assert {e["name"]: e for e in run_container["env"]}["KAFKA_SASL_PASSWORD"]["valueFrom"] == password_ref
    assert {"configMapRef": {"name": f"{USER_CODE}-env"}} in run_container["envFrom"]
    assert ca_volume in pod["volumes"]
    mounts = {m["name"]: m for m in run_container["volumeMounts"]}
    assert mounts["kafka-ca"]["mountPath"] == "/etc/kafka-ca" and mounts["kafka-ca"]["readOnly"] is True


def test_production_uses_the_kafka_charts_tls_listener_and_user(render: Renderer) -> None:
    data = env_config_map(render("platform", "production"))
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == f"{RELEASE}-kafka-kafka-bootstrap:9093"
    assert data["KAFKA_SASL_USERNAME"] == f"{RELEASE}-kafka-app"


def test_ssl_without_sasl_mounts_only_the_ca(render: Renderer) -> None:
    objects = render(
        "user-code",
        "default",
        "--set",
        "kafka.security.protocol=SSL",
        "--set",
        "kafka.security.caSecret.name=cluster-ca-cert",
    )
    data = env_config_map(objects)
    assert data["KAFKA_SSL_CAFILE"] == "/etc/kafka-ca/ca.crt" and "KAFKA_SASL_USERNAME" not in data
    container = one(objects, "Deployment", USER_CODE)["spec"]["template"]["spec"]["containers"][0]
    assert "KAFKA_SASL_PASSWORD" not in {e["name"] for e in container["env"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "kafka.security.protocol=SASL_SSL", "--set", "kafka.security.caSecret.name=ca"],
            "at '/kafka/security/username'",
        ),
        (["--set", "kafka.security.protocol=SSL"], "at '/kafka/security/caSecret/name'"),
        (["--set", "kafka.security.protocol=TLS"], "value must be one of 'PLAINTEXT'"),
        (
            [
                "--set",
                "kafka.security.protocol=SASL_PLAINTEXT",
                "--set",
                "kafka.security.username=u",
                "--set",
                "kafka.security.passwordSecret.name=p",
                "--set",
                "kafka.security.saslMechanism=GSSAPI",
            ],
            "at '/kafka/security/saslMechanism'",
        ),
    ],
)
def test_incomplete_security_is_refused(helm: str, charts_dir: Path, args: list[str], message: str) -> None:
    result = run(
        helm, "template", "x", str(charts_dir / "user-code"), "--kube-version", KUBE_VERSION, *args, check=False
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_env_may_not_set_what_kafka_security_renders(helm: str, charts_dir: Path) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "user-code"),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "env.KAFKA_SECURITY_PROTOCOL=SSL",
        check=False,
    )
    assert result.returncode != 0 and "set kafka.security instead" in result.stderr


def test_the_platform_logs_in_to_its_own_kafka_by_default(render: Renderer) -> None:
    objects = render("platform")
    data = env_config_map(objects)
    assert (data["KAFKA_SECURITY_PROTOCOL"], data["KAFKA_SASL_MECHANISM"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert data["KAFKA_BOOTSTRAP_SERVERS"].endswith("-kafka-kafka-bootstrap:9093")
    # The KafkaUser the Kafka chart renders is the one the code location logs in as.
    user = one(objects, "KafkaUser", f"{RELEASE}-kafka-app")
    assert data["KAFKA_SASL_USERNAME"] == user["metadata"]["name"]
