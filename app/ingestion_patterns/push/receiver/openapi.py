"""The OpenAPI 3.1 document served at ``GET /openapi.json`` (kept beside the routes it describes)."""

from __future__ import annotations

from typing import Any

from .config import ReceiverConfig

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str, headers: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def openapi_document(config: ReceiverConfig) -> dict[str, Any]:
    retry_after = {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer", "example": config.retry_after_seconds},
        }
    }
    source_param = {
        "name": "source_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }
    unavailable = _json(_ERROR, "The inbox is unavailable; retry after Retry-After seconds", retry_after)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ingestion-patterns webhook receiver",
            "version": "1.0.0",
            "description": "Receives webhooks and acknowledges them only once they are durably stored.",
        },
        "paths": {
            "/webhook/{source_id}": {
                "post": {
                    "summary": "Deliver one webhook",
                    "parameters": [
                        source_param,
                        {
                            "name": "webhook-id",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "Event id (Standard Webhooks); also the dedup key",
                        },
                        {"name": "webhook-timestamp", "in": "header", "schema": {"type": "string"}},
                        {"name": "webhook-signature", "in": "header", "schema": {"type": "string"}},
                        {
                            "name": "X-GitHub-Delivery",
                            "in": "header",
                            "schema": {"type": "string"},
                            "description": "Event id when webhook-id is absent",
                        },
                        {"name": "X-Hub-Signature-256", "in": "header", "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "description": f"Any JSON object up to {config.max_body_bytes} bytes; its top-level "
                                    '"id" is the event id when no id header is sent',
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json({"$ref": "#/components/schemas/Ack"}, "Committed durably to the inbox"),
                        "200": _json(
                            {"$ref": "#/components/schemas/Ack"}, "Duplicate: this event id is already stored"
                        ),
                        "400": _json(
                            _ERROR,
                            "Bad source id, malformed or non-interchange JSON (lone surrogates, "
                            "NaN, Infinity, numbers beyond a double), or not a JSON object",
                        ),
                        "401": _json(_ERROR, "Missing, malformed, wrong or expired signature"),
                        "404": _json(_ERROR, "No such endpoint"),
                        "413": _json(_ERROR, f"Body larger than {config.max_body_bytes} bytes"),
                        "415": _json(_ERROR, "Content-Type is not JSON"),
                        "429": _json(
                            _ERROR, "This client is past its rate limit; retry after Retry-After seconds", retry_after
                        ),
                        "503": unavailable,
                    },
                }
            },
            "/webhook/{source_id}/pending": {
                "get": {
                    "summary": "Webhooks of this source not yet processed",
                    "parameters": [
                        source_param,
                        {
                            "name": "peek",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 100},
                            "description": "Also return the oldest N pending payloads (needs the admin token)",
                        },
                    ],
                    "security": [{}, {"adminToken": []}],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Pending"}, "Pending summary"),
                        "400": _json(_ERROR, "Bad source id or peek"),
                        "401": _json(_ERROR, "peek without the admin token"),
                        "403": _json(_ERROR, "peek is disabled (no WEBHOOK_ADMIN_TOKEN)"),
                        "503": unavailable,
                    },
                }
            },
            "/health": {
                "get": {"summary": "Liveness (no I/O)", "responses": {"200": _json({"type": "object"}, "Alive")}}
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: the inbox is reachable",
                    "responses": {"200": _json({"type": "object"}, "Ready"), "503": unavailable},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI document")}}
            },
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Ack": {
                    "type": "object",
                    "required": ["status", "id"],
                    "properties": {
                        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
                        "id": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["status", "reason"],
                    "properties": {"status": {"const": "error"}, "reason": {"type": "string"}},
                },
                "Pending": {
                    "type": "object",
                    "required": ["source_id", "pending", "oldest_age_seconds"],
                    "properties": {
                        "source_id": {"type": "string"},
                        "pending": {"type": "integer"},
                        "oldest_age_seconds": {"type": ["number", "null"]},
                        "payloads": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }
