"""Generated credentials without `lookup`: the charts render no secret value at all (two renders are identical,
as Argo CD and `helm template` need); a pre-install/pre-upgrade hook Job creates each Secret once and keeps it.
The Job's own script runs here against a stand-in for the Kubernetes API. And the inbox's PostgreSQL role: the
SQL the PostgreSQL pod's inbox-role sidecar runs, on a real PostgreSQL, then the inbox's own DDL as that role."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from chart_helpers import CHARTS, CHARTS_DIR, KUBE_VERSION, NAMESPACE, RELEASE, Renderer, one, run, values_args
from fake_kube_api import FakeKubeApi, job_spec, run_secret_init, secret_init_jobs

pytestmark = pytest.mark.charts

OUR_CHARTS = ["platform", "user-code", "webhook-receiver", "mock-api", "ingestion-common"]


@pytest.fixture
def api():
    server = FakeKubeApi()
    yield server
    server.close()


def job(objects: list[dict], name: str) -> dict:
    return one(objects, "Job", name)


@pytest.mark.parametrize("chart", [c for c in CHARTS if c != "kafka"])
def test_rendering_is_deterministic(helm: str, charts_dir: Path, chart: str) -> None:
    """No random value and no cluster lookup in the templates: every render is the same."""
    outputs = {
        run(
            helm, "template", RELEASE, str(charts_dir / chart), "--namespace", NAMESPACE, *values_args(chart, "default")
        ).stdout
        for _ in range(2)
    }
    assert len(outputs) == 1


@pytest.mark.parametrize("chart", OUR_CHARTS)
def test_no_template_generates_or_looks_up_values(chart: str) -> None:
    for path in (CHARTS_DIR / chart / "templates").rglob("*"):
        if path.is_file():
            text = path.read_text()
            for function in ("lookup", "randAlphaNum", "randAscii", "randBytes", "uuidv4"):
                assert not re.search(rf"\b{function}\b\s+\"", text) and f"({function} " not in text, (
                    f"{path.relative_to(CHARTS_DIR)} uses {function}"
                )


def test_the_hook_runs_before_everything_and_is_kept_for_its_logs(render: Renderer) -> None:
    objects = render("platform", "kind")
    for obj in objects:
        if obj["metadata"]["name"] == f"{RELEASE}-secret-init":
            annotations = obj["metadata"]["annotations"]
            assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
            assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    role = one(objects, "Role", f"{RELEASE}-secret-init")
    names = {spec["name"] for spec in job_spec(job(objects, f"{RELEASE}-secret-init"))}
    assert names == {f"{RELEASE}-postgresql", f"{RELEASE}-inbox", f"{RELEASE}-source-api"}
    # get and patch only the Secrets in the spec; create cannot be narrowed by name in Kubernetes RBAC.
    assert {"resources": ["secrets"], "apiGroups": [""], "verbs": ["get", "patch"], "resourceNames": sorted(names)} in [
        {**r, "resourceNames": sorted(r.get("resourceNames", []))} for r in role["rules"]
    ]
    assert all(set(r["verbs"]) <= {"create", "get", "patch"} and r["resources"] == ["secrets"] for r in role["rules"])
    pod = job(objects, f"{RELEASE}-secret-init")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{RELEASE}-secret-init"


def test_existing_secrets_everywhere_render_no_job(render: Renderer) -> None:
    objects = render("platform", "production")
    jobs = {j["metadata"]["name"] for j in secret_init_jobs(objects)}
    assert jobs == set(), jobs  # production brings every Secret (postgresql, inbox, source API, signing, admin)


def test_creates_once_and_keeps(render: Renderer, api: FakeKubeApi, tmp_path: Path) -> None:
    objects = render("platform", "kind")
    jobs = secret_init_jobs(objects)
    # The mock API gets the platform's source-api Secret, so it generates nothing of its own.
    assert {j["metadata"]["name"] for j in jobs} == {
        f"{RELEASE}-secret-init",
        f"{RELEASE}-webhook-receiver-secret-init",
    }
    logs = ""
    for item in jobs:
        result = run_secret_init(item, api, tmp_path, NAMESPACE)
        assert result.returncode == 0, result.stderr
        assert "created Secret" in result.stdout
        logs += result.stdout + result.stderr
    first = {name: api.values(ns, name) for ns, name in api.secrets}
    assert set(first) == {
        f"{RELEASE}-postgresql",
        f"{RELEASE}-inbox",
        f"{RELEASE}-source-api",
        f"{RELEASE}-webhook-receiver-signing",
        f"{RELEASE}-webhook-receiver-admin",
    }
    assert len(first[f"{RELEASE}-webhook-receiver-admin"]["WEBHOOK_ADMIN_TOKEN"]) >= 32
    for secret in api.secrets.values():
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert secret["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    # An upgrade (the hooks run again): nothing changes, nothing is written.
    api.requests.clear()
    for item in jobs:
        result = run_secret_init(item, api, tmp_path, NAMESPACE)
        assert result.returncode == 0 and "kept Secret" in result.stdout
        logs += result.stdout + result.stderr
    assert {name: api.values(ns, name) for ns, name in api.secrets} == first
    assert {method for method, _ in api.requests} == {"GET"}
    # The values never reach the log.
    for values in first.values():
        for value in values.values():
            assert value not in logs


def test_a_new_source_gets_a_secret_and_the_others_keep_theirs(
    render: Renderer, api: FakeKubeApi, tmp_path: Path
) -> None:
    before = job(render("webhook-receiver", "default"), f"{RELEASE}-webhook-receiver-secret-init")
    assert run_secret_init(before, api, tmp_path, NAMESPACE).returncode == 0
    demo = api.values(NAMESPACE, f"{RELEASE}-webhook-receiver-signing")["WEBHOOK_SECRET_DEMO"]
    after = job(
        render("webhook-receiver", "default", "--set", "signing.sources={demo,shop}"),
        f"{RELEASE}-webhook-receiver-secret-init",
    )
    result = run_secret_init(after, api, tmp_path, NAMESPACE)
    assert result.returncode == 0 and "set WEBHOOK_SECRET_SHOP" in result.stdout
    values = api.values(NAMESPACE, f"{RELEASE}-webhook-receiver-signing")
    assert values["WEBHOOK_SECRET_DEMO"] == demo
    assert values["WEBHOOK_SECRET_SHOP"].startswith("whsec_") and values["WEBHOOK_SECRET_SHOP"] != demo


def test_the_inbox_url_follows_the_values_and_keeps_its_password(
    render: Renderer, api: FakeKubeApi, tmp_path: Path
) -> None:
    assert run_secret_init(job(render("platform"), f"{RELEASE}-secret-init"), api, tmp_path, NAMESPACE).returncode == 0
    password = api.values(NAMESPACE, f"{RELEASE}-inbox")["WEBHOOK_INBOX_PASSWORD"]
    moved = job(
        render("platform", "default", "--set", "postgresql.auth.inboxDatabase=inbox2"), f"{RELEASE}-secret-init"
    )
    assert run_secret_init(moved, api, tmp_path, NAMESPACE).returncode == 0
    values = api.values(NAMESPACE, f"{RELEASE}-inbox")
    assert values["WEBHOOK_INBOX_PASSWORD"] == password
    assert values["WEBHOOK_INBOX_URL"] == f"postgresql://webhook_inbox:{password}@{RELEASE}-postgresql:5432/inbox2"


def test_a_secret_an_older_chart_rendered_is_kept_by_the_upgrade(
    render: Renderer, api: FakeKubeApi, tmp_path: Path
) -> None:
    """Releases before the hook rendered their Secrets (with lookup). The upgrade that stops rendering them would
    delete them; the hook marks them helm.sh/resource-policy: keep first and keeps their values."""
    old = {"WEBHOOK_INBOX_URL": f"postgresql://dagster:old@{RELEASE}-postgresql:5432/webhook_inbox"}
    api.put(
        NAMESPACE,
        f"{RELEASE}-postgresql",
        {"postgresql-password": "old-superuser-password"},
        labels={"app.kubernetes.io/managed-by": "Helm"},
        annotations={"meta.helm.sh/release-name": RELEASE},
    )
    api.put(NAMESPACE, f"{RELEASE}-inbox", old, labels={"app.kubernetes.io/managed-by": "Helm"})
    result = run_secret_init(job(render("platform"), f"{RELEASE}-secret-init"), api, tmp_path, NAMESPACE)
    assert result.returncode == 0, result.stderr
    postgres = api.secrets[(NAMESPACE, f"{RELEASE}-postgresql")]
    assert postgres["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert api.values(NAMESPACE, f"{RELEASE}-postgresql") == {"postgresql-password": "old-superuser-password"}
    # The inbox moves to its own role: a new password, and the URL that carries it.
    inbox = api.values(NAMESPACE, f"{RELEASE}-inbox")
    assert inbox["WEBHOOK_INBOX_URL"].startswith("postgresql://webhook_inbox:")
    assert inbox["WEBHOOK_INBOX_PASSWORD"] in inbox["WEBHOOK_INBOX_URL"]


def test_a_job_without_its_rights_fails_loudly(render: Renderer, api: FakeKubeApi, tmp_path: Path) -> None:
    """A refusal (here a 401 to a wrong token; a 403 without the Role) is neither retried forever nor success."""
    item = job(render("mock-api"), f"{RELEASE}-mock-api-secret-init")
    result = run_secret_init(item, api, tmp_path, NAMESPACE, token="wrong")
    assert result.returncode != 0 and "unexpected HTTP 401" in result.stderr
    assert not api.secrets


# ---- the inbox role, on a real PostgreSQL ----


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own (the role's SQL revokes CONNECT from PUBLIC on every database)."""
    from postgres_server import PostgresServer

    root = Path(tempfile.mkdtemp(prefix="chart-inbox-role-"))
    server = PostgresServer(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def psql(
    server, database: str, *args: str, env: dict | None = None, user: str = "ingest"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            user,
            "-d",
            database,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def sidecar(objects: list[dict]) -> dict:
    spec = one(objects, "StatefulSet", f"{RELEASE}-postgresql")["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["initContainers"]}["inbox-role"]


def run_sidecar(objects: list[dict], server, tmp_path: Path, password: str) -> str:
    """The sidecar's own script, pointed at the test server, until it says the role is ready."""
    container = sidecar(objects)
    assert container["restartPolicy"] == "Always"
    sql = tmp_path / "inbox-role.sql"
    sql.write_text(one(objects, "ConfigMap", f"{RELEASE}-postgresql-init")["data"]["inbox-role.sql"])
    script = container["command"][2].replace("/etc/inbox-role/inbox-role.sql", str(sql))
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    env.update(PGUSER="ingest", PGPASSWORD="unused", PGPORT=str(server.port), INBOX_PASSWORD=password)
    process = subprocess.Popen(
        ["sh", "-c", script], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None  # both PIPEs
    try:
        line = process.stdout.readline()
        assert "ready" in line, line + process.stderr.read()
        return line
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0  # TERM ends its wait cleanly


# An inbox made before claims took leases, by the superuser in public (as releases before the inbox role did).
LEGACY_INBOX = """
CREATE TABLE webhook_inbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, source_id text NOT NULL, event_id text NOT NULL,
    body bytea NOT NULL, headers jsonb NOT NULL, received_at timestamptz NOT NULL, done_at timestamptz,
    UNIQUE (source_id, event_id));
INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at) VALUES ('demo', 'evt-1', 'x', '{}', now());
"""


def test_inbox_role_owns_its_table_and_nothing_else(render: Renderer, postgres, tmp_path: Path) -> None:
    objects = render(
        "platform",
        "default",
        "--set",
        "postgresql.auth.database=dagster_t1",
        "--set",
        "postgresql.auth.inboxDatabase=inbox_t1",
        "--set",
        "postgresql.auth.inboxUsername=inbox_t1",
    )
    for database in ("dagster_t1", "inbox_t1"):
        assert psql(postgres, "postgres", "-c", f"CREATE DATABASE {database}").returncode == 0
    made = psql(postgres, "inbox_t1", "-c", LEGACY_INBOX)
    assert made.returncode == 0, made.stderr
    run_sidecar(objects, postgres, tmp_path, "first-password")
    run_sidecar(objects, postgres, tmp_path, "second-password")  # idempotent; a changed password applies

    facts = psql(
        postgres,
        "inbox_t1",
        "-At",
        "-c",
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'inbox_t1';"
        "SELECT schemaname, tableowner FROM pg_tables WHERE tablename = 'webhook_inbox';"
        "SELECT count(*) FROM inbox_t1.webhook_inbox",
    ).stdout.split()
    assert facts == ["f|f|f", "inbox_t1|inbox_t1", "1"]  # moved into the role's schema, its row with it
    asyncio.run(_as_the_role(postgres.port))


async def _as_the_role(port: int) -> None:
    import asyncpg

    from ingestion_patterns.push.inbox.postgres import PostgresInbox

    url = f"postgresql://inbox_t1:second-password@127.0.0.1:{port}/inbox_t1"
    # The inbox's own start-up as the role: CREATE TABLE/INDEX IF NOT EXISTS, and ALTER TABLE ADD COLUMN for the
    # lease columns this legacy table lacks (only its owner may).
    inbox = PostgresInbox(url)
    await inbox.open()
    await inbox.close()
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_schema()") == "inbox_t1"
        columns = {
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'webhook_inbox'"
            )
        }
        assert {"claimed_by", "claimed_until"} <= columns
        # What claims and marks do.
        await conn.execute("UPDATE webhook_inbox SET claimed_by = 'x', claimed_until = now() WHERE source_id = 'demo'")
        await conn.execute("UPDATE webhook_inbox SET done_at = now() WHERE source_id = 'demo'")
        assert await conn.fetchval("SELECT count(*) FROM webhook_inbox WHERE done_at IS NOT NULL") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.elsewhere (x int)")
    finally:
        await conn.close()
    for database in ("dagster_t1", "postgres"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(f"postgresql://inbox_t1:second-password@127.0.0.1:{port}/{database}")


def test_the_inbox_role_is_never_the_superuser(helm: str, charts_dir: Path) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "platform"),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "postgresql.auth.inboxUsername=dagster",
        check=False,
    )
    assert result.returncode != 0 and "never the superuser" in result.stderr


def test_external_postgresql_needs_its_secrets(helm: str, charts_dir: Path) -> None:
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / "platform"),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "postgresql.enabled=false",
        "--set",
        "postgresql.external.host=db.example.com",
        check=False,
    )
    assert result.returncode != 0 and "set postgresql.auth.existingSecret and inbox.existingSecret" in result.stderr
