"""The OpenAPI 3.1 description served at ``/openapi.json``."""

from __future__ import annotations

from .config import API_KEY_HEADER, MAX_MUTATION, SCHEMA_MODES, MockApiConfig

_RECORD = {
    "type": "object",
    "required": ["id", "name", "email", "amount", "status", "category", "version", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "amount": {"type": "number"},
        "status": {"type": "string", "enum": ["active", "pending", "suspended", "closed"]},
        "category": {"type": "string"},
        "version": {"type": "integer", "description": "0 at creation, +1 on every update"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time", "description": "only ever moves forward"},
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}


def _err(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _secured(responses: dict) -> dict:
    """``responses`` of an operation behind the bearer token, with the 401 every one of them can answer."""
    return {**responses, "401": _unauthorised("missing or invalid bearer token", 'Bearer realm="mock-api"')}


def _unauthorised(description: str, challenge: str) -> dict:
    answer = _err(description)
    answer["headers"] = {"WWW-Authenticate": {"description": challenge, "schema": {"type": "string"}}}
    return answer


_RETRY_AFTER = {"Retry-After": {"description": "whole seconds to wait", "schema": {"type": "integer"}}}
_RECORD_COUNT = {
    "X-Record-Count": {
        "description": "the number of records in the body (a shorter body was cut off: retry)",
        "schema": {"type": "integer"},
    }
}


def _page_parameters(config: MockApiConfig, cursor_from: str) -> list[dict]:
    """The query parameters of both record listings; ``cursor_from``: where a client finds the cursor."""
    return [
        {
            "name": "updated_since",
            "in": "query",
            "schema": {"type": "string", "format": "date-time"},
            "description": "inclusive lower bound on updated_at (first page only)",
        },
        {
            "name": "updated_before",
            "in": "query",
            "schema": {"type": "string", "format": "date-time"},
            "description": "exclusive upper bound on updated_at (first page only)",
        },
        {
            "name": "cursor",
            "in": "query",
            "schema": {"type": "string"},
            "description": f"{cursor_from} (opaque); empty, like absent, asks for the first page",
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": config.max_page_size,
                "default": config.default_page_size,
            },
        },
    ]


def _page_failures() -> dict:
    """The failures both record listings answer besides a 401."""
    limited = _err("rate limited; see Retry-After")
    limited["headers"] = _RETRY_AFTER
    return {
        "400": _err("bad parameter"),
        "429": limited,
        "503": _err("transient failure; retry"),
        "504": _err("the upstream timed out; retry"),
    }


def _items_operation(config: MockApiConfig) -> dict:
    page = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}},
    }
    link = {
        "description": 'the next page\'s absolute URL (RFC 8288): `<http://host/v1/items?limit=100&cursor=...>; rel="next"`;'
        " absent on the last page",
        "schema": {"type": "string"},
    }
    return {
        "summary": "The records of /v1/records in another shape: an items envelope, Link header paging, an API key",
        "description": "The same records (ids, fields, updated_at) in the same (updated_at, id) order as "
        '`/v1/records`. Follow the `Link` header\'s `rel="next"` URL until there is none; it carries the '
        "page size and an opaque cursor. Always JSON.",
        "security": [{"apiKey": []}],
        "parameters": _page_parameters(config, 'the cursor in the previous page\'s Link rel="next" URL'),
        "responses": {
            "200": {
                "description": "a page",
                "headers": {"Link": link, **_RECORD_COUNT},
                "content": {"application/json": {"schema": page}},
            },
            **_page_failures(),
            "401": _unauthorised(
                f"missing or invalid API key in the {API_KEY_HEADER} header",
                f'ApiKey realm="mock-api", header="{API_KEY_HEADER}"',
            ),
        },
    }


def openapi_document(config: MockApiConfig) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ingestion-patterns mock source API",
            "version": "1.0.0",
            "description": "Records created and updated over time, keyset-paged, as two resources: "
            "/v1/records (bearer token, cursor in the body or X-Next-Cursor) and /v1/items (API key, "
            "items envelope, Link header).",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
            },
            "schemas": {"Record": _RECORD, "Error": _ERROR},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/records": {
                "get": {
                    "summary": "Records ordered by (updated_at, id), one page at a time",
                    "description": "Send `Accept: application/x-ndjson` for JSON lines with the paging in "
                    "the `X-Next-Cursor` header; otherwise a JSON envelope.",
                    "parameters": _page_parameters(config, "the next_cursor of the previous page"),
                    "responses": _secured(
                        {
                            "200": {
                                "description": "a page",
                                "headers": {
                                    "X-Next-Cursor": {
                                        "description": "with application/x-ndjson: the next page's cursor; "
                                        "absent on the last page",
                                        "schema": {"type": "string"},
                                    },
                                    **_RECORD_COUNT,
                                },
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "properties": {
                                                "data": {
                                                    "type": "array",
                                                    "items": {"$ref": "#/components/schemas/Record"},
                                                },
                                                "next_cursor": {"type": ["string", "null"]},
                                                "has_more": {"type": "boolean"},
                                            },
                                        }
                                    },
                                    "application/x-ndjson": {"schema": {"$ref": "#/components/schemas/Record"}},
                                },
                            },
                            **_page_failures(),
                        }
                    ),
                }
            },
            "/v1/items": {"get": _items_operation(config)},
            "/admin/mutate": {
                "post": {
                    "summary": "Create and update records now",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "create": {"type": "integer", "minimum": 0, "maximum": MAX_MUTATION},
                                        "update": {"type": "integer", "minimum": 0, "maximum": MAX_MUTATION},
                                    },
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                    "responses": _secured({"200": {"description": "what changed"}, "400": _err("bad body")}),
                }
            },
            "/admin/schema": {
                "post": {
                    "summary": "Make the served schema drift",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["mode"],
                                    "properties": {"mode": {"type": "string", "enum": list(SCHEMA_MODES)}},
                                }
                            }
                        },
                    },
                    "responses": _secured({"200": {"description": "the new mode"}, "400": _err("bad mode")}),
                }
            },
            "/admin/export": {
                "get": {
                    "summary": "Every current record by id (JSON lines)",
                    "responses": _secured({"200": {"description": "the whole source"}}),
                }
            },
            "/health": {"get": {"security": [], "summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
            "/openapi.json": {
                "get": {
                    "security": [],
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }
