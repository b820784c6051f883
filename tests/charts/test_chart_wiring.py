"""How the pieces fit: skaffold.yaml against skaffold's own v4beta14 schema, the kind config against the
charts and Traefik's values, the ingress of the webhook receiver, and an umbrella that needs no download."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml
from chart_helpers import (
    CASES,
    CHARTS,
    LIBRARY_CHART,
    PROFILES,
    RELEASE,
    REPO,
    TOOLS_DIR,
    Renderer,
    by_kind,
    one,
    pod_spec,
)

pytestmark = pytest.mark.charts

SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
SKAFFOLD_SCHEMA = TOOLS_DIR / "schemas" / "skaffold-v4beta14.json"
KIND = yaml.safe_load((REPO / "k8s" / "kind-config.yaml").read_text())
TRAEFIK = yaml.safe_load((REPO / "k8s" / "traefik-values.yaml").read_text())


def test_skaffold_yaml_matches_the_v4beta14_schema() -> None:
    if not SKAFFOLD_SCHEMA.is_file():
        pytest.skip(f"{SKAFFOLD_SCHEMA} missing (skaffold Go module not downloadable): structural checks only")
    schema = json.loads(SKAFFOLD_SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(SKAFFOLD), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    # The schema has teeth: a misspelt field is refused.
    broken = json.loads(json.dumps(SKAFFOLD))
    broken["deploy"]["helm"]["releases"][0]["chartPth"] = "x"
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_skaffold_builds_three_images_and_sets_them_on_the_release(render: Renderer) -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta14"
    artifacts = {a["image"]: a for a in SKAFFOLD["build"]["artifacts"]}
    assert set(artifacts) == {f"ingestion-patterns/{n}" for n in ("user-code", "webhook-receiver", "mock-api")}
    for image, artifact in artifacts.items():
        dockerfile = REPO / artifact["context"] / artifact["docker"]["dockerfile"]
        # One Dockerfile, one target per image, named as the image.
        assert artifact["docker"]["target"] == image.split("/")[1]
        assert re.search(rf"^FROM \S+ AS {artifact['docker']['target']}$", dockerfile.read_text(), re.M)
    assert SKAFFOLD["build"]["local"]["push"] is False  # loaded into kind, never pushed
    release = SKAFFOLD["deploy"]["helm"]["releases"][0]
    assert (REPO / release["chartPath"] / "Chart.yaml").is_file()
    for values_file in release["valuesFiles"]:
        assert (REPO / values_file).is_file()
    templates = release["setValueTemplates"]
    for image in artifacts:
        key = re.sub(r"[^A-Za-z0-9]", "_", image)
        chart = image.split("/")[1]
        assert templates[f"{chart}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert templates[f"{chart}.image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}"
    # The templated keys exist in the chart: the release renders with them.
    objects = render("platform", "kind", *[arg for k in templates for arg in ("--set", f"{k}=x")])
    images = {c["image"] for o in objects if (s := pod_spec(o)) for c in s["containers"]}
    assert "x:x" in images
    # The Dagster UI is port-forwarded from the webserver Service the chart renders for this release name.
    forward = SKAFFOLD["portForward"][0]
    webserver = f"{release['name']}-dagster-webserver"
    assert forward["resourceName"] == webserver and forward["localPort"] == 3000
    service = one(render("platform", "kind"), "Service", f"{RELEASE}-dagster-webserver")
    assert forward["port"] == service["spec"]["ports"][0]["port"]
    assert SKAFFOLD["deploy"]["kubeContext"] == f"kind-{KIND['name']}"


def test_skaffold_profiles_patch_existing_paths() -> None:
    names = {p["name"] for p in SKAFFOLD["profiles"]}
    assert {"no-kafka", "kafka-ui", "production"} <= names
    for profile in SKAFFOLD["profiles"]:
        for patch in profile["patches"]:
            assert patch["path"].startswith(("/deploy/helm/releases/0/", "/portForward/"))


def test_kind_maps_the_ingress_to_traefiks_node_port() -> None:
    mappings = {m["containerPort"]: m for node in KIND["nodes"] for m in node.get("extraPortMappings", [])}
    web = TRAEFIK["ports"]["web"]["nodePort"]
    assert TRAEFIK["service"]["type"] == "NodePort"
    assert mappings[web]["hostPort"] == 8080
    assert all(m.get("listenAddress") == "127.0.0.1" for m in mappings.values())
    assert TRAEFIK["ingressClass"]["name"] == "traefik"
    # Traefik runs where the ports are mapped.
    labelled = [n for n in KIND["nodes"] if n.get("labels", {}).get("ingress-ready") == "true"]
    assert labelled and TRAEFIK["nodeSelector"] == {"ingress-ready": "true"}


def test_receiver_keep_alive_outlasts_the_proxy(render: Renderer) -> None:
    """The proxy must close idle upstream connections first (else a request races a server-side close)."""
    idle = next(a for a in TRAEFIK["additionalArguments"] if "idleConnTimeout" in a)
    match = re.search(r"=(\d+)s$", idle)
    assert match, idle
    proxy_seconds = int(match.group(1))
    container = one(render("platform", "kind"), "Deployment", f"{RELEASE}-webhook-receiver")["spec"]["template"][
        "spec"
    ]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["WEBHOOK_KEEPALIVE_SECONDS"]) > proxy_seconds


@pytest.mark.parametrize("profile", PROFILES)
def test_ingress_routes_webhooks_with_a_body_limit(render: Renderer, profile: str) -> None:
    objects = render("platform", profile)
    ingress = one(objects, "Ingress", f"{RELEASE}-webhook-receiver")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    # Only POST /webhook/<source> is public: one Exact path per source (publicPaths), no /webhook prefix.
    assert [(p["path"], p["pathType"]) for p in paths] == [("/webhook/demo", "Exact")]
    assert paths[0]["backend"]["service"]["name"] == f"{RELEASE}-webhook-receiver"
    middleware = one(objects, "Middleware", f"{RELEASE}-webhook-receiver-body-size")
    assert middleware["apiVersion"] == "traefik.io/v1alpha1"
    attached = ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"]
    assert attached == f"ingestion-{RELEASE}-webhook-receiver-body-size@kubernetescrd"
    container = one(objects, "Deployment", f"{RELEASE}-webhook-receiver")["spec"]["template"]["spec"]["containers"][0]
    app_limit = int({e["name"]: e.get("value") for e in container["env"]}["WEBHOOK_MAX_BODY_BYTES"])
    assert middleware["spec"]["buffering"]["maxRequestBodyBytes"] == app_limit


def test_other_ingress_classes_get_no_traefik_middleware(render: Renderer) -> None:
    objects = render(
        "webhook-receiver",
        "default",
        "--set",
        "ingress.className=haproxy",
        "--set",
        "ingress.annotations.haproxy\\.org/request-body-size=1m",
    )
    assert not by_kind(objects, "Middleware")
    ingress = one(objects, "Ingress", f"{RELEASE}-webhook-receiver")
    assert ingress["spec"]["ingressClassName"] == "haproxy"
    assert ingress["metadata"]["annotations"] == {"haproxy.org/request-body-size": "1m"}


def test_optional_httproute(render: Renderer) -> None:
    objects = render(
        "webhook-receiver",
        "default",
        "--set",
        "httpRoute.enabled=true",
        "--set",
        "httpRoute.parentRefs[0].name=eg",
        "--set",
        "httpRoute.hostnames[0]=hooks.local",
    )
    route = one(objects, "HTTPRoute", f"{RELEASE}-webhook-receiver")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"name": "eg"}]
    rule = route["spec"]["rules"][0]
    assert rule["matches"] == [{"path": {"type": "Exact", "value": "/webhook/demo"}, "method": "POST"}]
    assert rule["backendRefs"] == [{"name": f"{RELEASE}-webhook-receiver", "port": 80}]


def test_receiver_scales_and_is_protected(render: Renderer) -> None:
    objects = render("webhook-receiver")
    hpa = one(objects, "HorizontalPodAutoscaler", f"{RELEASE}-webhook-receiver")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-webhook-receiver"
    assert "replicas" not in one(objects, "Deployment", f"{RELEASE}-webhook-receiver")["spec"]
    assert one(objects, "PodDisruptionBudget", f"{RELEASE}-webhook-receiver")["spec"]["minAvailable"] == 1
    policy = one(objects, "NetworkPolicy", f"{RELEASE}-webhook-receiver")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_no_bare_pod_is_adopted_by_a_controller(render: Renderer, chart: str, profile: str) -> None:
    """helm test pods must not match a Deployment/StatefulSet selector (its ReplicaSet would adopt them)."""
    objects = render(chart, profile, *(["--set", "kafkaUi.enabled=true"] if chart == "kafka" else []))
    selectors = [
        (o, o["spec"]["selector"]["matchLabels"]) for o in objects if o["kind"] in {"Deployment", "StatefulSet"}
    ]
    for pod in by_kind(objects, "Pod"):
        labels = pod["metadata"]["labels"]
        for owner, selector in selectors:
            assert not selector.items() <= labels.items(), (
                f"Pod {pod['metadata']['name']} matches {owner['kind']} {owner['metadata']['name']}"
            )


def test_umbrella_needs_no_download() -> None:
    chart = yaml.safe_load((REPO / "charts" / "platform" / "Chart.yaml").read_text())
    assert {d["name"] for d in chart["dependencies"]} == {
        "user-code",
        "webhook-receiver",
        "mock-api",
        "kafka",
        LIBRARY_CHART,
    }
    for dependency in chart["dependencies"]:
        assert dependency["repository"] == f"file://../{dependency['name']}"
        sub = yaml.safe_load((REPO / "charts" / dependency["name"] / "Chart.yaml").read_text())
        assert sub["version"] == dependency["version"]
    lock = yaml.safe_load((REPO / "charts" / "platform" / "Chart.lock").read_text())
    assert [d["repository"] for d in lock["dependencies"]] == [d["repository"] for d in chart["dependencies"]]


@pytest.mark.parametrize("chart", CHARTS)
def test_every_chart_takes_the_shared_helpers_from_the_library_chart(chart: str) -> None:
    """Names, labels and image references come from one library chart (file://, locked), not from copies."""
    library = yaml.safe_load((REPO / "charts" / LIBRARY_CHART / "Chart.yaml").read_text())
    assert library["type"] == "library"
    meta = yaml.safe_load((REPO / "charts" / chart / "Chart.yaml").read_text())
    dependency = next(d for d in meta["dependencies"] if d["name"] == LIBRARY_CHART)
    assert dependency["repository"] == f"file://../{LIBRARY_CHART}"
    assert dependency["version"] == library["version"]
    lock = yaml.safe_load((REPO / "charts" / chart / "Chart.lock").read_text())
    assert [d["name"] for d in lock["dependencies"]] == [d["name"] for d in meta["dependencies"]]
    # The shared helpers are defined once: no chart redefines one under its own prefix (but the umbrella's
    # full name is its own: the release name, to which the subcharts add their suffixes).
    helpers = (REPO / "charts" / chart / "templates" / "_helpers.tpl").read_text()
    shared = {"name", "fullname", "chart", "selectorLabels", "serviceAccountName", "image"}
    for helper in shared - ({"fullname"} if chart == "platform" else set()):
        assert f'define "{chart}.{helper}"' not in helpers, f"{chart}.{helper} duplicates {LIBRARY_CHART}.{helper}"
