"""The public edge: the Ingress and the HTTPRoute route POST /webhook/<source> and nothing else (/pending and
its ?peek, /ready, /metrics and /openapi.json stay in the cluster), with a body-size limit on both, optional
cert-manager TLS; the receiver's NetworkPolicy admits the ingress controller by configurable selectors; the
receiver gets its admin token from a Secret and a per-client rate limit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chart_helpers import KUBE_VERSION, PROFILES, RELEASE, Renderer, by_kind, one, run

pytestmark = pytest.mark.charts

RECEIVER = f"{RELEASE}-webhook-receiver"
INTERNAL = [
    "/webhook/demo/pending",
    "/webhook/demo/pending?peek=5",
    "/ready",
    "/health",
    "/metrics",
    "/openapi.json",
    "/webhook",
    "/webhook/",
    "/webhook/demo/x",
]


def routed(path: str, path_type: str, request: str) -> bool:
    """Whether an Ingress path matches a request path: Exact and Prefix as the Ingress API defines them, a regex
    as ingress-nginx applies it (anchored at the start)."""
    request = request.split("?")[0]
    if path_type == "Exact":
        return request == path
    if path_type == "Prefix":
        return request == path or request.startswith(path.rstrip("/") + "/")
    return re.match("^" + path, request) is not None


def ingress_paths(objects: list[dict]) -> list[dict]:
    ingress = one(objects, "Ingress", RECEIVER)
    return [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]


def container_env(objects: list[dict]) -> dict[str, dict]:
    spec = one(objects, "Deployment", RECEIVER)["spec"]["template"]["spec"]
    return {e["name"]: e for e in spec["containers"][0]["env"]}


@pytest.mark.parametrize("profile", PROFILES)
def test_only_post_webhook_source_leaves_the_cluster(render: Renderer, profile: str) -> None:
    paths = ingress_paths(render("platform", profile))
    assert all(p["pathType"] == "Exact" for p in paths)
    assert any(routed(p["path"], p["pathType"], "/webhook/demo") for p in paths)
    for request in INTERNAL:
        assert not any(routed(p["path"], p["pathType"], request) for p in paths), request


def test_every_listed_source_and_no_other(render: Renderer) -> None:
    # The signing Secret's sources, then the declared ones (global.sources.webhooks: demo by default), each once.
    objects = render("webhook-receiver", "default", "--set", "signing.sources={shop,crm-eu,demo}")
    assert [(p["path"], p["pathType"]) for p in ingress_paths(objects)] == [
        ("/webhook/shop", "Exact"),
        ("/webhook/crm-eu", "Exact"),
        ("/webhook/demo", "Exact"),
    ]
    objects = render(
        "webhook-receiver", "default", "--set", "signing.existingSecret=s", "--set", "publicPaths.sources={partner}"
    )
    assert [p["path"] for p in ingress_paths(objects)] == ["/webhook/partner"]


def test_regex_paths_for_ingress_nginx(render: Renderer) -> None:
    objects = render(
        "webhook-receiver", "default", "--set", "ingress.className=nginx", "--set", "publicPaths.match=regex"
    )
    ingress = one(objects, "Ingress", RECEIVER)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/use-regex"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1048576"
    assert not by_kind(objects, "Middleware")
    (path,) = ingress_paths(objects)
    assert path["pathType"] == "ImplementationSpecific"
    assert routed(path["path"], "regex", "/webhook/any-source_1")
    for request in INTERNAL:
        assert not routed(path["path"], "regex", request), request


def test_regex_paths_are_refused_with_traefik(helm: str, charts_dir: Path) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "webhook-receiver"),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "publicPaths.match=regex",
        check=False,
    )
    assert result.returncode != 0 and "Traefik's Ingress provider has no regular-expression paths" in result.stderr


def test_nginx_body_size_annotation_is_optional(render: Renderer) -> None:
    objects = render(
        "webhook-receiver",
        "default",
        "--set",
        "ingress.className=nginx",
        "--set",
        "ingress.nginx.bodySizeAnnotation=false",
    )
    assert "annotations" not in one(objects, "Ingress", RECEIVER)["metadata"]


def test_cert_manager_tls(render: Renderer, helm: str, charts_dir: Path) -> None:
    ingress = one(render("platform", "production"), "Ingress", RECEIVER)
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ingress["spec"]["tls"] == [{"secretName": "hooks-example-com-tls", "hosts": ["hooks.example.com"]}]
    ingress = one(
        render(
            "webhook-receiver",
            "default",
            "--set",
            "ingress.certManager.issuer=ca",
            "--set-json",
            'ingress.tls=[{"secretName":"t","hosts":["h"]}]',
        ),
        "Ingress",
        RECEIVER,
    )
    assert ingress["metadata"]["annotations"]["cert-manager.io/issuer"] == "ca"
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "webhook-receiver"),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "ingress.certManager.clusterIssuer=x",
        check=False,
    )
    assert result.returncode != 0 and "certManager: set tls" in result.stderr


def test_httproute_matches_post_on_the_public_paths_only(render: Renderer) -> None:
    base = ["--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=gw"]
    no_declared = ["--set", "global.sources.webhooks=null"]
    route = one(
        render("webhook-receiver", "default", *base, *no_declared, "--set", "signing.sources={a,b}"),
        "HTTPRoute",
        RECEIVER,
    )
    assert route["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "Exact", "value": "/webhook/a"}, "method": "POST"},
        {"path": {"type": "Exact", "value": "/webhook/b"}, "method": "POST"},
    ]
    route = one(
        render(
            "webhook-receiver", "default", *base, "--set", "publicPaths.match=regex", "--set", "ingress.enabled=false"
        ),
        "HTTPRoute",
        RECEIVER,
    )
    (match,) = route["spec"]["rules"][0]["matches"]
    assert match["method"] == "POST" and match["path"]["type"] == "RegularExpression"
    pattern = match["path"]["value"]
    assert re.fullmatch(pattern, "/webhook/demo")
    assert not any(re.fullmatch(pattern, request.split("?")[0]) for request in INTERNAL)


def test_httproute_body_size_through_traefiks_middleware(render: Renderer) -> None:
    objects = render(
        "webhook-receiver",
        "default",
        "--set",
        "ingress.enabled=false",
        "--set",
        "httpRoute.enabled=true",
        "--set",
        "httpRoute.parentRefs[0].name=traefik-gateway",
        "--set",
        "httpRoute.traefikBodySizeMiddleware=true",
        "--set-json",
        'httpRoute.filters=[{"type":"RequestHeaderModifier","requestHeaderModifier":{"remove":["x-debug"]}}]',
    )
    middleware = one(objects, "Middleware", f"{RECEIVER}-body-size")
    assert middleware["spec"]["buffering"]["maxRequestBodyBytes"] == 1048576
    filters = one(objects, "HTTPRoute", RECEIVER)["spec"]["rules"][0]["filters"]
    assert filters == [
        {
            "type": "ExtensionRef",
            "extensionRef": {"group": "traefik.io", "kind": "Middleware", "name": f"{RECEIVER}-body-size"},
        },
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"remove": ["x-debug"]}},
    ]


def test_network_policy_admits_the_ingress_controller_by_selectors(render: Renderer) -> None:
    default = one(render("webhook-receiver"), "NetworkPolicy", RECEIVER)["spec"]["ingress"][0]["from"]
    assert default[0] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
    }
    peers = one(
        render(
            "webhook-receiver",
            "default",
            # helm merges maps with the defaults: a default label goes by setting it to null.
            "--set-json",
            'networkPolicy.ingressController={"namespaceSelector":{"matchLabels":{"team":"edge",'
            '"kubernetes.io/metadata.name":null}},"podSelector":{"matchLabels":{"app":"envoy",'
            '"app.kubernetes.io/name":null}}}',
            "--set-json",
            'networkPolicy.extraIngressFrom=[{"namespaceSelector":{"matchLabels":'
            '{"kubernetes.io/metadata.name":"monitoring"}}}]',
        ),
        "NetworkPolicy",
        RECEIVER,
    )["spec"]["ingress"][0]["from"]
    assert peers[0] == {
        "namespaceSelector": {"matchLabels": {"team": "edge"}},
        "podSelector": {"matchLabels": {"app": "envoy"}},
    }
    assert peers[-1] == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE}}} in peers  # helm tests
    any_pod = one(
        render("webhook-receiver", "default", "--set", "networkPolicy.ingressController.podSelector=null"),
        "NetworkPolicy",
        RECEIVER,
    )["spec"]["ingress"][0]["from"][0]
    assert any_pod == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}


def test_the_receiver_reads_every_name_the_chart_renders() -> None:
    from ingestion_patterns.settings import Settings

    names = {"WEBHOOK_ADMIN_TOKEN", "WEBHOOK_RATE_LIMIT_PER_SECOND", "WEBHOOK_RATE_LIMIT_BURST", "WEBHOOK_INBOX_URL"}
    assert {name.lower() for name in names} <= set(Settings.model_fields)
    assert "webhook_trusted_proxies" in Settings.model_fields


def test_behind_the_ingress_the_rate_limit_counts_the_forwarded_client(render: Renderer) -> None:
    assert container_env(render("webhook-receiver"))["WEBHOOK_TRUSTED_PROXIES"]["value"] == ""
    trusted = container_env(render("platform", "production"))["WEBHOOK_TRUSTED_PROXIES"]["value"].split(",")
    assert "10.0.0.0/8" in trusted, "without the controller's range every client would share one bucket"


def test_admin_token_and_rate_limit_reach_the_receiver(render: Renderer) -> None:
    env = container_env(render("webhook-receiver"))
    assert env["WEBHOOK_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RECEIVER}-admin",
        "key": "WEBHOOK_ADMIN_TOKEN",
    }
    assert (env["WEBHOOK_RATE_LIMIT_PER_SECOND"]["value"], env["WEBHOOK_RATE_LIMIT_BURST"]["value"]) == ("0", "0")
    env = container_env(render("platform", "production"))
    assert env["WEBHOOK_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "webhook-admin-token",
        "key": "WEBHOOK_ADMIN_TOKEN",
    }
    assert (env["WEBHOOK_RATE_LIMIT_PER_SECOND"]["value"], env["WEBHOOK_RATE_LIMIT_BURST"]["value"]) == ("50", "100")
    env = container_env(
        render(
            "webhook-receiver",
            "default",
            "--set-json",
            "rateLimit.perSecond=2.5",
            "--set",
            "rateLimit.burst=5",
            "--set",
            "admin.existingSecret=ops-token",
            "--set",
            "admin.existingSecretKey=token",
        )
    )
    assert env["WEBHOOK_RATE_LIMIT_PER_SECOND"]["value"] == "2.5"
    assert env["WEBHOOK_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ops-token", "key": "token"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "rateLimit.perSecond=-1"], "at '/rateLimit/perSecond'"),
        (["--set", "rateLimit.burst=1.5"], "at '/rateLimit/burst'"),
        (["--set", "publicPaths.match=prefix"], "value must be one of 'exact', 'regex'"),
        (["--set", "publicPaths.sources[0]=a/b"], "'a/b' does not match pattern"),
        (["--set", "ingress.hosts[0].paths[0].path=/"], "at '/ingress/hosts/0': additional properties 'paths'"),
        (["--set", "networkPolicy.ingressFrom[0].podSelector.x=y"], "additional properties 'ingressFrom' not allowed"),
        (
            ["--set", "signing.sources=null", "--set", "signing.existingSecret=s", "--set", "global.sources=null"],
            "no source to expose",
        ),
    ],
)
def test_edge_values_are_checked(helm: str, charts_dir: Path, args: list[str], message: str) -> None:
    result = run(
        helm, "template", "x", str(charts_dir / "webhook-receiver"), "--kube-version", KUBE_VERSION, *args, check=False
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr
