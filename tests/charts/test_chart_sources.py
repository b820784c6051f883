"""Declared sources from the values (global.sources): one ConfigMap (key sources.yaml, the declarations as given)
that the code server, every run pod and the webhook receiver mount read-only with INGEST_SOURCES_FILE naming it;
the receiver and the code server roll when it changes; the receiver refuses undeclared sources; and the values
schema, generated from the app's WebhookSourceSpec, refuses a declaration with a secret in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chart_helpers import (
    RELEASE,
    Renderer,
    by_kind,
    construct_run_job,
    one,
    pod_template,
    schema_refusal,
    sources_values,
    sources_yaml,
    template_refusal,
)

from ingestion_patterns.push.source import WebhookSourceSpec, declarations_in_file, parse_declarations

pytestmark = pytest.mark.charts

SOURCES_CM = f"{RELEASE}-sources"
SOURCES_DIR = "/etc/ingestion/sources"
SOURCES_FILE = f"{SOURCES_DIR}/sources.yaml"
RECEIVER = f"{RELEASE}-webhook-receiver"
CODE_SERVER = f"{RELEASE}-user-code"
DEMO = {"source_id": "demo", "signature": "standard-webhooks", "secret_env": "WEBHOOK_SECRET_DEMO"}
PARTNER = {
    "source_id": "partner",
    "signature": "stripe",
    "secret_env": "PARTNER_WEBHOOK_SECRET",
    "event_id": {"header": "X-Request-Id"},
    "required_fields": ["id"],
}


def values_file(tmp_path_factory: pytest.TempPathFactory, webhooks: list[dict]) -> str:
    return sources_values(tmp_path_factory, {"webhooks": webhooks})


@pytest.fixture(scope="module")
def with_partner(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return ["-f", values_file(tmp_path_factory, [DEMO, PARTNER])]


def mounts_sources(pod: dict, configmap: str = SOURCES_CM) -> None:
    """The pod mounts the sources ConfigMap read-only where INGEST_SOURCES_FILE points."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["sources"]["configMap"]["name"] == configmap
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "sources")
    assert mount["mountPath"] == SOURCES_DIR and mount["readOnly"] is True


def test_the_configmap_holds_the_declared_sources_as_the_app_reads_them(
    render: Renderer, with_partner: list[str], tmp_path: Path
) -> None:
    objects = render("platform", "default", *with_partner)
    sources = [cm for cm in by_kind(objects, "ConfigMap") if "sources.yaml" in cm.get("data", {})]
    assert [cm["metadata"]["name"] for cm in sources] == [SOURCES_CM], "one ConfigMap for every pod"
    document = sources_yaml(objects)
    assert document == {"webhooks": [DEMO, PARTNER], "rest_apis": [], "kafka_topics": []}
    # The app's own loader (the receiver's and the code location's) takes the rendered file as it is.
    path = tmp_path / "sources.yaml"
    path.write_text(one(objects, "ConfigMap", SOURCES_CM)["data"]["sources.yaml"])
    declared = parse_declarations(declarations_in_file(path))
    assert declared["partner"].signature == "stripe" and declared["partner"].event_id is not None
    # The shipped default declares the demo's source only (test-source comes with the image's defs.yaml).
    assert sources_yaml(render("platform", "default"))["webhooks"] == [DEMO]


@pytest.mark.parametrize("profile", ["default", "kind", "production"])
def test_receiver_and_code_server_mount_it_and_name_it(render: Renderer, profile: str) -> None:
    objects = render("platform", profile)
    receiver = pod_template(objects, RECEIVER)["spec"]
    mounts_sources(receiver)
    env = {e["name"]: e.get("value") for e in receiver["containers"][0]["env"]}
    assert env["INGEST_SOURCES_FILE"] == SOURCES_FILE
    assert env["WEBHOOK_ACCEPT_UNDECLARED_SOURCES"] == "false"
    code_server = pod_template(objects, CODE_SERVER)["spec"]
    mounts_sources(code_server)
    env_cm = one(objects, "ConfigMap", f"{CODE_SERVER}-env")
    assert env_cm["data"]["INGEST_SOURCES_FILE"] == SOURCES_FILE
    assert {"configMapRef": {"name": env_cm["metadata"]["name"]}} in code_server["containers"][0]["envFrom"]


def test_run_pods_mount_it_with_the_code_locations_env(render: Renderer, tmp_path: Path) -> None:
    """The run Job dagster-k8s builds from the rendered launcher config loads the same definitions."""
    objects = render("platform", "default")
    pod = construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["sources"]["configMap"]["name"] == SOURCES_CM
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "sources")
    assert mount["mountPath"] == SOURCES_DIR and mount["readOnly"] is True
    assert {"configMapRef": {"name": f"{CODE_SERVER}-env"}} in container["envFrom"]


def test_a_new_source_rolls_the_receiver_and_the_code_server(render: Renderer, with_partner: list[str]) -> None:
    def checksums(objects: list[dict]) -> dict[str, str]:
        return {
            name: pod_template(objects, name)["metadata"]["annotations"]["checksum/sources"]
            for name in (RECEIVER, CODE_SERVER)
        }

    before, after = checksums(render("platform", "default")), checksums(render("platform", "default", *with_partner))
    assert before[RECEIVER] == before[CODE_SERVER] and after[RECEIVER] == after[CODE_SERVER]
    assert before[RECEIVER] != after[RECEIVER]
    # Unrelated values leave it alone.
    assert checksums(render("platform", "default", "--set", "webhook-receiver.workers=3")) == before


def test_a_declared_source_is_exposed_and_its_secret_mapped(render: Renderer, with_partner: list[str]) -> None:
    objects = render(
        "platform",
        "default",
        *with_partner,
        "--set-json",
        'webhook-receiver.envSecrets=["{{ .Release.Name }}-partner"]',
    )
    ingress = one(objects, "Ingress", RECEIVER)
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/webhook/demo", "/webhook/partner"]
    container = pod_template(objects, RECEIVER)["spec"]["containers"][0]
    assert container["envFrom"] == [
        {"secretRef": {"name": f"{RECEIVER}-signing"}},
        {"secretRef": {"name": f"{RELEASE}-partner"}},
    ]
    # Referenced by name only: no value of a secret anywhere in the pod spec or the ConfigMap.
    assert "secretKeyRef" not in str(sources_yaml(objects))


@pytest.mark.parametrize("chart", ["user-code", "webhook-receiver"])
def test_a_subchart_alone_renders_its_own(render: Renderer, chart: str) -> None:
    objects = render(chart, "default")
    name = f"{RELEASE}-{chart}-sources"
    assert sources_yaml(objects, name)["webhooks"] == [DEMO]
    mounts_sources(pod_template(objects, f"{RELEASE}-{chart}")["spec"], configmap=name)


def test_the_item_schema_is_webhooksourcespecs(charts_dir: Path) -> None:
    """Generated from the app's model: the same fields, closed, with its validator's rules as keywords."""
    for chart in ("platform", "user-code", "webhook-receiver"):
        schema = json.loads((charts_dir / chart / "values.schema.json").read_text())
        item = schema["properties"]["global"]["properties"]["sources"]["properties"]["webhooks"]["items"]
        assert list(item["properties"]) == list(WebhookSourceSpec.model_fields)
        assert item["additionalProperties"] is False and item["required"] == ["source_id"]


REFUSED = [
    ("a secret's value inline", {**DEMO, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "'secret' not allowed"),
    ("a secret's value as its name", {**DEMO, "secret_env": "whsec_MfKQ9r8GKYqr+TwjUPD8="}, "does not match pattern"),
    ("an unknown field", {**DEMO, "verify": True}, "additional properties 'verify' not allowed"),
    ("a scheme without its secret", {"source_id": "x", "signature": "github"}, "missing property 'secret_env'"),
    ("a bad source id", {"source_id": "a/b"}, "does not match pattern"),
    ("an unknown scheme", {"source_id": "x", "signature": "hmac", "secret_env": "X"}, "value must be one of"),
]


@pytest.mark.parametrize(("declaration", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize("chart", ["platform", "webhook-receiver"])
def test_lint_refuses_a_bad_declaration(
    helm: str, charts_dir: Path, tmp_path_factory: pytest.TempPathFactory, chart: str, declaration: dict, message: str
) -> None:
    output = schema_refusal(helm, charts_dir / chart, "-f", values_file(tmp_path_factory, [declaration]))
    assert message in output, output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set-json", f"global.sources.webhooks={json.dumps([DEMO, DEMO])}"], 'source_id "demo" is declared twice'),
        (["--set", "user-code.env.INGEST_SOURCES_FILE=/x"], "declare sources in global.sources instead"),
    ],
)
def test_template_refuses(helm: str, charts_dir: Path, args: list[str], message: str) -> None:
    stderr = template_refusal(helm, charts_dir / "platform", *args)
    assert message in stderr, stderr
