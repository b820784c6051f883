"""The REST API declaration (``pull.rest_api.spec``): what it accepts, what it refuses and why, and
that it imports without Dagster; and the client's pure parts: requests that follow each other, and a
JSON page read into records by its fast and its slow path alike."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from ingestion_patterns.pull.rest_api import spec as rest_spec
from ingestion_patterns.pull.rest_api.client import PageRequest, first_request, next_request, read_json_records, resolve
from ingestion_patterns.pull.rest_api.spec import RestApiSpec, json_path

BASE = {"base_url": "https://api.example.com"}


def declare(**fields: Any) -> RestApiSpec:
    return RestApiSpec.model_validate({**BASE, **fields})


def refused(match: str, **fields: Any) -> None:
    with pytest.raises(ValidationError, match=match):
        declare(**fields)


def test_the_defaults_are_one_anonymous_json_page():
    spec = declare(path="v1/orders")
    assert spec.url == "https://api.example.com/v1/orders"
    assert spec.paginator.type == "single_page"
    assert (spec.records.format, spec.records.path) == ("json", "")
    assert spec.auth is None and spec.incremental is None and spec.secret_envs() == []


@pytest.mark.parametrize(
    "auth, env",
    [
        ({"type": "bearer", "token_env": "GITHUB_TOKEN"}, "GITHUB_TOKEN"),
        ({"type": "api_key", "name": "X-API-Key", "value_env": "KEY"}, "KEY"),
        ({"type": "api_key", "name": "api_key", "location": "query", "value_env": "KEY"}, "KEY"),
        ({"type": "basic", "username": "me", "password_env": "PASSWORD"}, "PASSWORD"),
        (
            {
                "type": "oauth2_client_credentials",
                "token_url": "https://auth.example.com/token",
                "client_id": "id",
                "client_secret_env": "SECRET",
                "scopes": ["a", "b"],
            },
            "SECRET",
        ),
    ],
)
def test_each_auth_scheme_names_its_secret_by_variable(auth, env):
    spec = declare(auth=auth)
    assert spec.auth is not None and spec.auth.type == auth["type"]
    assert spec.secret_envs() == [env]


def test_an_unknown_auth_type_lists_the_known_ones():
    refused("'bearer', 'api_key', 'basic', 'oauth2_client_credentials'", auth={"type": "digest"})


def test_a_secret_written_in_place_of_its_variable_is_refused():
    refused("names an environment variable", auth={"type": "bearer", "token_env": "ghp-abc.def"})


@pytest.mark.parametrize("header", ["Authorization", "cookie"])
def test_credentials_in_static_headers_are_refused(header):
    refused("declare them under auth", headers={header: "x"})


@pytest.mark.parametrize(
    "url, match",
    [
        ("api.example.com", "absolute http"),
        ("ftp://x.io", "absolute http"),
        ("https://u:p@x.io", "must not hold credentials"),
    ],
)
def test_base_url_must_be_an_absolute_http_url_without_credentials(url, match):
    with pytest.raises(ValidationError, match=match):
        RestApiSpec.model_validate({"base_url": url})


@pytest.mark.parametrize(
    "cursor",
    [{}, {"cursor_path": "meta.next", "cursor_header": "X-Next"}],
)
def test_a_cursor_comes_from_exactly_one_place(cursor):
    refused("exactly one place", paginator={"type": "cursor", **cursor})


def test_a_page_size_needs_its_parameter():
    refused("limit_param and limit go together", paginator={"type": "cursor", "cursor_header": "X", "limit": 10})
    refused("page_size_param and page_size go together", paginator={"type": "page_number", "page_size": 10})


def test_next_url_needs_a_path_into_the_body():
    refused("next_url_path: Field required", paginator={"type": "next_url"})
    refused("not at the body itself", paginator={"type": "next_url", "next_url_path": "$"})


def test_offset_needs_a_positive_limit():
    refused("limit: Field required", paginator={"type": "offset"})
    refused("greater than 0", paginator={"type": "offset", "limit": 0})


def test_a_malformed_json_path_is_named():
    refused("'data..results' is not a JSON path", records={"path": "data..results"})


@pytest.mark.parametrize(
    "paginator",
    [
        {"type": "cursor", "cursor_path": "next"},
        {"type": "next_url", "next_url_path": "links.next"},
        {"type": "offset", "limit": 10, "total_path": "total"},
        {"type": "page_number", "total_pages_path": "pages"},
    ],
)
def test_ndjson_records_with_a_paginator_that_reads_the_body_are_refused(paginator):
    refused("records are NDJSON", paginator=paginator, records={"format": "ndjson"})


def test_ndjson_with_a_cursor_header_is_fine_and_has_no_path():
    declare(paginator={"type": "cursor", "cursor_header": "X-Next-Cursor"}, records={"format": "ndjson"})
    refused("records.path is for format 'json'", records={"format": "ndjson", "path": "items"})


def test_the_incremental_parameter_cannot_also_be_static():
    refused(
        "would be overwritten",
        params={"updated_since": "2020-01-01"},
        incremental={"cursor_field": "updated_at", "param": "updated_since"},
    )


def test_a_misspelt_field_is_refused():
    refused("Extra inputs are not permitted", paginator={"type": "offset", "limit": 10, "limits": 5})


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    seen.add(model)
    for field in model.model_fields.values():
        for candidate in rest_spec.__dict__.values():
            named = isinstance(candidate, type) and issubclass(candidate, BaseModel)
            if named and candidate not in seen and candidate.__name__ in str(field.annotation):
                _models(candidate, seen)


def test_every_field_is_described() -> None:
    models: set[type[BaseModel]] = set()
    _models(RestApiSpec, models)
    assert len(models) >= 10
    missing = [f"{m.__name__}.{name}" for m in models for name, f in m.model_fields.items() if not f.description]
    assert missing == []


def test_the_declaration_imports_without_dagster():
    code = "import sys, ingestion_patterns.pull.rest_api.spec; assert 'dagster' not in sys.modules, 'dagster imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_paths():
    assert json_path("") == json_path("$") == json_path(".") == ()
    assert json_path("$.data.results") == json_path("data.results") == ("data", "results")
    document = {"data": {"results": [{"id": 7}]}, "next": None}
    assert resolve(document, "data.results.0.id") == 7
    assert resolve(document, "data.missing") is None
    assert resolve(document, "data.results.3") is None
    assert resolve(document, "") is document


def test_offset_and_page_number_requests_follow_each_other():
    spec = declare(params={"state": "open"}, paginator={"type": "offset", "limit": 2, "total_path": "total"})
    first = first_request(spec)
    assert first == PageRequest("https://api.example.com", (("state", "open"), ("offset", "0"), ("limit", "2")))
    after = next_request(spec, first, values={"total": 5}, headers={}, links={}, count=2)
    assert after is not None and after.param("offset") == "2" and after.param("state") == "open"
    assert (
        next_request(spec, after.with_param("offset", "4"), values={"total": 5}, headers={}, links={}, count=1) is None
    )
    pages = declare(paginator={"type": "page_number", "total_pages_path": "pages"})
    request = first_request(pages)
    assert next_request(pages, request, values={"pages": 2}, headers={}, links={}, count=3) == request.with_param(
        "page", "2"
    )
    assert (
        next_request(pages, request.with_param("page", "2"), values={"pages": 2}, headers={}, links={}, count=3) is None
    )


def test_the_incremental_window_goes_in_the_first_request():
    spec = declare(
        incremental={
            "cursor_field": "updated_at",
            "param": "since",
            "initial_value": "2024-01-01T00:00:00Z",
            "end_param": "until",
        }
    )
    assert first_request(spec).params == (("since", "2024-01-01T00:00:00Z"),)
    assert first_request(spec, since="2025-01-01", until="2025-02-01").params == (
        ("since", "2025-01-01"),
        ("until", "2025-02-01"),
    )


RECORDS = [
    {"id": 1, "updated_at": "2024-01-01T00:00:00Z", "owner": {"login": "a"}, "tags": ["x"]},
    {"id": 2, "updated_at": "2024-01-02T00:00:00Z", "note": "second", "tags": []},
]


def test_a_page_reads_the_same_by_the_fast_and_the_slow_path():
    document = {"data": {"results": RECORDS}, "meta": {"total": 2, "next": "2024-01-02T00:00:00Z"}}
    compact = orjson.dumps(document)  # one line: pyarrow reads the document whole
    pretty = orjson.dumps(document, option=orjson.OPT_INDENT_2)  # lines: orjson, then the list as JSON lines
    fast, slow = (
        read_json_records(compact, "data.results", "meta.total"),
        read_json_records(pretty, "data.results", "meta.total"),
    )
    assert fast[0].to_pylist() == slow[0].to_pylist() and fast[0].num_rows == 2
    assert fast[1] == slow[1] == []
    assert fast[2] == slow[2] == {"meta.total": 2}
    # A value pyarrow would read as a timestamp comes as the text the API sent.
    assert read_json_records(compact, "data.results", "meta.next")[2] == {"meta.next": "2024-01-02T00:00:00Z"}


@pytest.mark.parametrize("body", [b'{"items": []}', b'{"items": null}', b"{}", b"[]"])
def test_no_records_is_an_empty_page(body):
    table, rejects, _ = read_json_records(body, "items" if body != b"[]" else "")
    assert table.num_rows == 0 and rejects == []


def test_a_value_in_the_list_that_is_not_an_object_is_a_reject():
    table, rejects, _ = read_json_records(b'{"items": [{"id": 1}, null, {"id": 2}]}', "items")
    assert table.column("id").to_pylist() == [1, 2]
    assert [(r.raw, r.reason) for r in rejects] == [(b"null", "a JSON null, not an object")]


def test_records_path_that_is_not_a_list_is_an_error():
    with pytest.raises(ValueError, match="records.path 'items' is a JSON object, not a list"):
        read_json_records(b'{"items": {"id": 1}}', "items")
