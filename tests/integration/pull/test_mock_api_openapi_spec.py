"""The mock API's /openapi.json against what the server answers, walked operation by operation:
every status it answers is documented, and every request built from the values the spec allows is
accepted. Real servers in their own processes: a plain one, a faulty one and a rate-limited one.
Each operation is called with the credential its security scheme names: the bearer token, or the
API key in its header."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator

import pytest
from pull_helpers import MockApi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

API_KEY = "spec-api-key"

# Every RFC 3339 date-time shape (the spec's ``format: date-time``): offsets, fractions, lower case, a leap second.
DATE_TIMES = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.5Z",
    "2026-01-01T00:00:00.123456789+02:00",
    "2026-01-01T00:00:00-00:00",
    "2026-01-01t00:00:00z",
    "2016-12-31T23:59:60Z",
]


def call(api: MockApi, method: str, path: str, *, query: str = "", body: bytes | None = None, auth: dict | None = None):
    headers = {"Content-Type": "application/json", **(auth or {})}
    url = f"{api.url}{path}" + (f"?{query}" if query else "")
    request = urllib.request.Request(url, data=body, method=method.upper(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def spec_of(api: MockApi) -> dict:
    status, body = call(api, "get", "/openapi.json")
    assert status == 200
    return json.loads(body)


def operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def is_secured(spec: dict, operation: dict) -> bool:
    return bool(operation.get("security", spec.get("security", [])))


RIGHT = "the secret the server accepts"


def credential(spec: dict, operation: dict, api: MockApi, secret: str | None = RIGHT) -> dict:
    """The headers that send ``secret`` (None: none; RIGHT: the server's bearer token or API key) the
    way the operation's security scheme says."""
    requirements = operation.get("security", spec.get("security", []))
    if secret is None or not requirements:
        return {}
    [[name]] = [list(requirement) for requirement in requirements]
    scheme = spec["components"]["securitySchemes"][name]
    if scheme["type"] == "apiKey":
        assert scheme["in"] == "header", scheme
        return {scheme["name"]: API_KEY if secret is RIGHT else secret}
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer", scheme
    return {"Authorization": f"Bearer {api.token if secret is RIGHT else secret}"}


def body_schema(operation: dict) -> dict | None:
    content = operation.get("requestBody", {}).get("content", {})
    return content["application/json"]["schema"] if "application/json" in content else None


def bad_values(schema: dict) -> list[str]:
    """Query values outside ``schema``."""
    if schema.get("type") == "integer":
        return [str(schema["minimum"] - 1), str(schema["maximum"] + 1), "abc", "1.5"]
    if schema.get("format") == "date-time":
        return ["yesterday", "2026-13-01T00:00:00Z"]
    return ["zzz"]  # an opaque cursor the API never issued


def bad_bodies(schema: dict) -> list[bytes]:
    """Request bodies outside ``schema``: not JSON, not an object, and each constraint broken."""
    bodies: list[dict | str] = ["not json", "[1, 2]"]
    for name, prop in schema.get("properties", {}).items():
        if "minimum" in prop:
            bodies.append({name: prop["minimum"] - 1})
        if "maximum" in prop:
            bodies.append({name: prop["maximum"] + 1})
        if "enum" in prop:
            bodies.append({name: "none of them"})
        if prop.get("type") == "integer":
            bodies.append({name: "1"})
    if schema.get("additionalProperties") is False:
        bodies.append({"unknown": 1})
    if schema.get("required"):
        bodies.append({})
    return [body.encode() if isinstance(body, str) else json.dumps(body).encode() for body in bodies]


def good_bodies(schema: dict) -> list[dict]:
    """Request bodies inside ``schema``: its minimums, each enum value, and {} when nothing is required.
    (Not the maximums: a million new records is a slow test, and the 400 past them is checked.)"""
    required = {name: schema["properties"][name]["enum"][0] for name in schema.get("required", [])}
    bodies: list[dict] = [] if required else [{}]
    for name, prop in schema.get("properties", {}).items():
        for value in prop.get("enum", [prop.get("minimum")] if "minimum" in prop else []):
            bodies.append({**required, name: value})
    return bodies


def allowed_values(name: str, schema: dict, issued_cursor: str) -> list[str]:
    """Query values inside ``schema``: its bounds and default, every date-time shape, and for a string
    with no minimum length the empty one (plus, for the opaque cursor, one the API issued)."""
    if schema.get("type") == "integer":
        return [str(schema["minimum"]), str(schema["maximum"]), str(schema["default"])]
    if schema.get("format") == "date-time":
        return DATE_TIMES
    values = [] if schema.get("minLength", 0) > 0 else [""]
    return values + ([issued_cursor] if name == "cursor" else [])


def test_every_status_the_server_answers_is_documented(start_mock_api):
    api = start_mock_api(records=50, api_key=API_KEY)
    faulty = start_mock_api(
        records=50,
        api_key=API_KEY,
        fault_5xx_ratio=0.5,
        fault_timeout_ratio=0.5,
        fault_timeout_seconds=0,
        fault_seed=7,
    )
    limited = start_mock_api(records=50, api_key=API_KEY, rate_limit=0.001, rate_burst=1)
    spec = spec_of(api)
    answered: dict[tuple[str, str], set[int]] = defaultdict(set)
    for path, method, operation in operations(spec):
        seen = answered[path, method]
        schema = body_schema(operation)
        good_body = json.dumps(good_bodies(schema)[0]).encode() if schema else None
        right = credential(spec, operation, api)
        # Without a credential, with a wrong one, with the right one.
        for secret in (None, "wrong", RIGHT):
            seen.add(call(api, method, path, body=good_body, auth=credential(spec, operation, api, secret))[0])
        for parameter in operation.get("parameters", []):
            for value in bad_values(parameter["schema"]):
                seen.add(call(api, method, path, query=f"{parameter['name']}={value}", auth=right)[0])
        for body in bad_bodies(schema) if schema else []:
            seen.add(call(api, method, path, body=body, auth=right)[0])
        if method == "get":  # the faults and the rate limit (POSTs would change the shared source)
            seen.update(call(faulty, method, path, auth=right)[0] for _ in range(12))
            seen.update(call(limited, method, path, auth=right)[0] for _ in range(2))

    undocumented = {
        f"{method.upper()} {path}": sorted(status for status in statuses if str(status) not in operation["responses"])
        for (path, method), statuses in answered.items()
        for operation in [spec["paths"][path][method]]
    }
    assert {where: statuses for where, statuses in undocumented.items() if statuses} == {}
    # The probes reached what they meant to: 401s where a token is needed, and every failure of /v1/records.
    for path, method, operation in operations(spec):
        assert (401 in answered[path, method]) == is_secured(spec, operation), (method, path)
    assert {200, 400, 401, 429, 503, 504} <= answered["/v1/records", "get"]
    assert {200, 400, 401, 429, 503, 504} <= answered["/v1/items", "get"]
    assert {200, 400, 401} <= answered["/admin/mutate", "post"]


def test_requests_the_spec_allows_are_accepted(start_mock_api):
    api = start_mock_api(records=50, api_key=API_KEY)
    spec = spec_of(api)
    status, first_page = call(
        api, "get", "/v1/records", query="limit=10", auth={"Authorization": f"Bearer {api.token}"}
    )
    assert status == 200
    issued_cursor = json.loads(first_page)["next_cursor"]
    refused = []
    for path, method, operation in operations(spec):
        requests: list[tuple[str, bytes | None]] = [("", None)] if method == "get" else []
        for parameter in operation.get("parameters", []):
            for value in allowed_values(parameter["name"], parameter["schema"], issued_cursor):
                requests.append((urllib.parse.urlencode({parameter["name"]: value}), None))
        if schema := body_schema(operation):
            requests += [("", json.dumps(body).encode()) for body in good_bodies(schema)]
        right = credential(spec, operation, api)
        for query, body in requests:
            status, answer = call(api, method, path, query=query, body=body, auth=right)
            if status != 200:
                refused.append(f"{method.upper()} {path}?{query} {body!r}: {status} {answer[:200]!r}")
    assert refused == []


@pytest.mark.parametrize("path, envelope", [("/v1/records", "data"), ("/v1/items", "items")])
def test_an_empty_cursor_is_the_first_page(start_mock_api, path, envelope):
    """``cursor=`` is the same request as no cursor: the first page of the window asked for."""
    api = start_mock_api(records=50, api_key=API_KEY)
    spec = spec_of(api)
    auth = credential(spec, spec["paths"][path]["get"], api)
    query = "limit=7&updated_since=2000-01-01T00:00:00Z"
    first = call(api, "get", path, query=query, auth=auth)
    assert first[0] == 200 and len(json.loads(first[1])[envelope]) == 7
    assert call(api, "get", path, query=f"{query}&cursor=", auth=auth) == first
