"""A stand-in for the Kubernetes API's Secrets endpoints, to run the charts' secret-init hook Job (the rendered
script itself, with the rendered spec) without a cluster: GET, POST and merge-PATCH with resourceVersion checks,
as the API server answers them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "test-token"
PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/secrets(?:/(?P<name>[^/]+))?$")


class FakeKubeApi:
    """Secrets by (namespace, name), as the API holds them (data base64-encoded)."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self._version = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, status: int, body: dict | None = None) -> None:
                payload = json.dumps(body or {"kind": "Status", "code": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self, method: str) -> None:
                api.requests.append((method, self.path))
                match = PATH.match(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401)
                if match is None:
                    return self._answer(404)
                length = int(self.headers.get("Content-Length") or 0)
                body: dict = json.loads(self.rfile.read(length)) if length else {}
                key = (match["ns"], match["name"])
                if method == "GET":
                    found = api.secrets.get(key)
                    return self._answer(200, found) if found else self._answer(404)
                if method == "POST" and match["name"] is None:
                    key = (match["ns"], body["metadata"]["name"])
                    if key in api.secrets:
                        return self._answer(409)
                    return self._answer(201, api.store(key, body))
                if method == "PATCH":
                    if self.headers.get("Content-Type") != "application/merge-patch+json":
                        return self._answer(415)
                    found = api.secrets.get(key)
                    if found is None:
                        return self._answer(404)
                    wanted = body.get("metadata", {}).get("resourceVersion")
                    if wanted and wanted != found["metadata"]["resourceVersion"]:
                        return self._answer(409)
                    merged = json.loads(json.dumps(found))
                    for field in ("annotations", "labels"):
                        if field in body.get("metadata", {}):
                            merged["metadata"].setdefault(field, {}).update(body["metadata"][field])
                    merged.setdefault("data", {}).update(body.get("data", {}))
                    return self._answer(200, api.store(key, merged))
                return self._answer(405)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def store(self, key: tuple[str, str], secret: dict) -> dict:
        self._version += 1
        secret["metadata"]["resourceVersion"] = str(self._version)
        self.secrets[key] = secret
        return secret

    def put(self, namespace: str, name: str, values: dict[str, str], **metadata) -> None:
        """A Secret that exists before the Job runs (e.g. one an older chart version rendered)."""
        data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
        self.store((namespace, name), {"metadata": {"name": name, **metadata}, "data": data})

    def values(self, namespace: str, name: str) -> dict[str, str]:
        secret = self.secrets[(namespace, name)]
        return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def secret_init_jobs(objects: list[dict]) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == "Job" and o["metadata"]["labels"].get("app.kubernetes.io/component") == "secret-init"
    ]


def job_spec(job: dict) -> list[dict]:
    """The Secrets a secret-init Job makes (its SPEC env)."""
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    return json.loads(env["SPEC"]["value"])


def run_secret_init(
    job: dict, api: FakeKubeApi, tmp_path: Path, namespace: str, token: str = TOKEN
) -> subprocess.CompletedProcess[str]:
    """The Job's container command (python -c <script>) with its SPEC, against the fake API (which refuses any
    token but TOKEN with a 401)."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["python", "-c"]
    account = tmp_path / "serviceaccount"
    account.mkdir(exist_ok=True)
    (account / "token").write_text(token)
    env = {
        **os.environ,
        "SPEC": json.dumps(job_spec(job)),
        "NAMESPACE": namespace,
        "KUBERNETES_API_URL": api.url,
        "SERVICEACCOUNT_DIR": str(account),
    }
    return subprocess.run(
        [sys.executable, "-c", container["command"][2]], env=env, capture_output=True, text=True, timeout=120
    )
