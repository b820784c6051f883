"""The OpenAPI 3.1 description served at ``/openapi.json``."""

from __future__ import annotations

from .config import MAX_MUTATION, SCHEMA_MODES, MockApiConfig

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
    unauthorised = _err("missing or invalid bearer token")
    unauthorised["headers"] = {
        "WWW-Authenticate": {"description": 'Bearer realm="mock-api"', "schema": {"type": "string"}}
    }
    return {**responses, "401": unauthorised}


def openapi_document(config: MockApiConfig) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ingestion-patterns mock source API",
            "version": "1.0.0",
            "description": "Records created and updated over time; keyset cursor pagination.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Record": _RECORD, "Error": _ERROR},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/records": {
                "get": {
                    "summary": "Records ordered by (updated_at, id), one page at a time",
                    "description": "Send `Accept: application/x-ndjson` for JSON lines with the paging in "
                    "the `X-Next-Cursor` header; otherwise a JSON envelope.",
                    "parameters": [
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
                            "description": "the next_cursor of the previous page (opaque); empty, like absent, "
                            "asks for the first page",
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
                    ],
                    "responses": _secured(
                        {
                            "200": {
                                "description": "a page",
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
                            "400": _err("bad parameter"),
                            "429": _err("rate limited; see Retry-After"),
                            "503": _err("transient failure; retry"),
                            "504": _err("the upstream timed out; retry"),
                        }
                    ),
                }
            },
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
