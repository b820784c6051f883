"""The charts' NetworkPolicies hold on a cluster that enforces them (the local cluster runs kube-network-policies,
as kind does), and Kafka answers only authenticated TLS clients: each refusal is checked beside a connection
that must work, so a closed port or a missing Service cannot pass for a policy."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

import pytest
from e2e_helpers import Cluster, kafka_mode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Prints open (connected), refused (reached, nothing listening) or timeout (dropped: a policy) for host:port.
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("open")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as error:
    print(f"error {error}")
"""


def probe_from(cluster: Cluster, deployment: str, host: str, port: int, timeout: float = 5) -> str:
    out = cluster.kubectl(
        "exec", f"deploy/{deployment}", "--", "python", "-c", PROBE, host, str(port), str(timeout), timeout=120
    )
    return out.strip().splitlines()[-1]


def test_the_receiver_cannot_reach_the_code_servers_grpc_port(cluster: Cluster) -> None:
    code_server = cluster.name("user-code")
    # The webserver and the daemon load the code location over gRPC: their way in is open...
    assert probe_from(cluster, cluster.name("dagster-webserver"), code_server, 4000) == "open"
    # ...the public-facing receiver's is not.
    assert probe_from(cluster, cluster.name("webhook-receiver"), code_server, 4000) == "timeout"


def test_a_pod_outside_the_release_cannot_reach_postgresql(cluster: Cluster) -> None:
    postgres = cluster.name("postgresql")
    assert probe_from(cluster, cluster.name("user-code"), postgres, 5432) == "open"
    # A pod in the same namespace that belongs to no release: the project's own image, restricted.
    image = json.loads(cluster.kubectl("get", "deploy", cluster.name("user-code"), "-o", "json"))["spec"]["template"][
        "spec"
    ]["containers"][0]["image"]
    name = f"e2e-outsider-{secrets.token_hex(3)}"
    spec = {
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", PROBE, f"{postgres}.{cluster.target.namespace}.svc", "5432", "5"],
                    "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        }
    }
    cluster.kubectl(
        "run",
        name,
        f"--image={image}",
        "--restart=Never",
        f"--overrides={json.dumps(spec)}",
        "--labels=app.kubernetes.io/name=e2e-outsider",
    )
    try:
        cluster.kubectl(
            "wait", f"pod/{name}", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=180s", timeout=200
        )
        assert cluster.kubectl("logs", name).strip().splitlines()[-1] == "timeout"
    finally:
        cluster.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_pending_is_not_reachable_through_the_ingress(cluster: Cluster) -> None:
    def status(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    # Inside the cluster the receiver serves it (and wants its admin token)...
    inside = (
        cluster.python_in(
            cluster.name("webhook-receiver"),
            (
                "import urllib.request, urllib.error\n"
                "try:\n    print(urllib.request.urlopen('http://127.0.0.1:8080/webhook/demo/pending', timeout=10).status)\n"
                "except urllib.error.HTTPError as e:\n    print(e.code)\n"
            ),
        )
        .strip()
        .splitlines()[-1]
    )
    assert inside.isdigit() and inside != "404", inside
    # ...through the ingress it does not exist: only POST /webhook/<source> is routed.
    base = cluster.target.ingress_url
    for path in ("/webhook/demo/pending", "/webhook/demo/pending?peek=5", "/metrics", "/ready"):
        assert status(base + path) == 404, path


KAFKA_LOGIN = """
import asyncio, json
from ingestion_patterns.settings import load_settings
from ingestion_patterns.poll.client import kafka_resource
settings = load_settings()
kafka = kafka_resource(settings)
wrong = kafka.model_copy(update={"sasl_password": "not-the-password"})
plain = kafka.model_copy(update={"security_protocol": "PLAINTEXT",
                                 "bootstrap_servers": kafka.bootstrap_servers.rsplit(":", 1)[0] + ":9092"})
print(json.dumps({"protocol": kafka.security_protocol, "mechanism": kafka.sasl_mechanism,
                  "ok": asyncio.run(kafka.diagnose()), "wrong": asyncio.run(wrong.diagnose(timeout=10)),
                  "plain": asyncio.run(plain.diagnose(timeout=5))}))
"""


def test_kafka_answers_only_the_applications_tls_login(cluster: Cluster) -> None:
    if kafka_mode() == "off":
        pytest.skip("E2E_KAFKA=off: the platform was installed without Kafka")
    result = json.loads(cluster.python_in(cluster.name("user-code"), KAFKA_LOGIN, timeout=180).strip().splitlines()[-1])
    assert (result["protocol"], result["mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512"), result
    assert result["ok"] is None, result
    assert "authentication of user" in result["wrong"] and "failed" in result["wrong"], result
    assert result["plain"], "no plaintext listener answers"
