"""The OpenAPI 3.1 description of the REST API, served at ``GET /api/openapi.json``."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_responses(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad input", 401: "Missing or invalid credentials", 403: "Not allowed",
        404: "Not found", 409: "Conflict", 413: "Body too large", 415: "Wrong content type",
        429: "Rate limited", 503: "Not ready",
    }
    return {
        str(status): {
            "description": text[status],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for status in statuses
    }


def _sdp_exchange(summary: str, grant: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"token": []}],
            "description": f"Needs a room token with the `{grant}` grant.",
            "parameters": [{"name": "room", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True,
                            "content": {"application/sdp": {"schema": {"type": "string"}}}},
            "responses": {
                "201": {
                    "description": "Session created; the body is the SDP answer",
                    "headers": {"Location": {"schema": {"type": "string"}},
                                "ETag": {"schema": {"type": "string"}}},
                    "content": {"application/sdp": {"schema": {"type": "string"}}},
                },
                **_error_responses(400, 401, 403, 404, 409, 413, 415, 429),
            },
        },
        "options": {"summary": "CORS preflight", "responses": {"204": {"description": "OK"}}},
    }


def openapi_document() -> dict[str, Any]:
    room = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "kind": {"enum": ["livestream", "meeting"]},
            "category": {"type": "string"},
            "owner": {"type": "string"},
            "scheduled_start": {"type": ["number", "null"], "description": "UNIX seconds"},
            "scheduled_end": {"type": ["number", "null"]},
            "status": {"enum": ["scheduled", "live", "ended"]},
            "record": {"type": "boolean"},
            "languages": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "number"},
            "started_at": {"type": ["number", "null"]},
            "ended_at": {"type": ["number", "null"]},
        },
    }
    room_create = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "kind"],
        "properties": {
            key: room["properties"][key]  # type: ignore[index]
            for key in ("id", "name", "kind", "category", "owner", "scheduled_start",
                        "scheduled_end", "record", "languages", "status")
        },
    }
    token_request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["room", "identity", "role"],
        "properties": {
            "room": {"type": "string"},
            "identity": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": ["exhibitor", "buyer", "host", "visitor"]},
            "ttl": {"type": "integer", "minimum": 1},
            "grants": {"type": "array",
                       "items": {"enum": ["publish", "subscribe", "moderate", "record"]}},
            "language": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Fairwire", "version": "0.1.0",
                 "description": "Real-time media server for online trade fairs."},
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "The operator's API key"},
                "token": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"},
                                       "message": {"type": "string"}},
                    }},
                },
                "Room": room,
                "RoomCreate": room_create,
                "TokenRequest": token_request,
            },
        },
        "paths": {
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "OK"}}}},
            "/readyz": {"get": {"summary": "Ready to take work (store reachable)",
                                "responses": {"200": {"description": "Ready"},
                                              **_error_responses(503)}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Text format 0.0.4"}}}},
            "/api/rooms": {
                "get": {
                    "summary": "List rooms",
                    "parameters": [
                        {"name": "kind", "in": "query", "schema": {"enum": ["livestream",
                                                                            "meeting"]}},
                        {"name": "status", "in": "query",
                         "schema": {"enum": ["scheduled", "live", "ended"]}},
                        {"name": "category", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "Rooms", "content": {
                        "application/json": {"schema": {
                            "type": "object",
                            "properties": {"rooms": {"type": "array", "items": {
                                "$ref": "#/components/schemas/Room"}}}}}}},
                        **_error_responses(400)},
                },
                "post": {
                    "summary": "Create a room",
                    "security": [{"apiKey": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/RoomCreate"}}}},
                    "responses": {"201": {"description": "Created", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Room"}}}},
                        **_error_responses(400, 401, 409, 413, 415, 429)},
                },
            },
            "/api/rooms/{room_id}": {
                "parameters": [{"name": "room_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "get": {"summary": "One room", "responses": {
                    "200": {"description": "The room", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Room"}}}},
                    **_error_responses(404)}},
                "patch": {
                    "summary": "Move a room through scheduled -> live -> ended",
                    "security": [{"apiKey": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "required": ["status"],
                                   "properties": {"status": {
                                       "enum": ["scheduled", "live", "ended"]}}}}}},
                    "responses": {"200": {"description": "Updated"},
                                  **_error_responses(400, 401, 404, 409, 429)},
                },
            },
            "/api/tokens": {
                "post": {
                    "summary": "Issue a room token (JWT, HS256)",
                    "security": [{"apiKey": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
                    "responses": {"200": {"description": "The token", "content": {
                        "application/json": {"schema": {
                            "type": "object",
                            "properties": {"token": {"type": "string"},
                                           "expires_in": {"type": "integer"}}}}}},
                        **_error_responses(400, 401, 404, 413, 415, 429)},
                },
            },
            "/whip/{room}": _sdp_exchange("WHIP ingest (RFC 9725)", "publish"),
            "/whep/{room}": _sdp_exchange("WHEP playback", "subscribe"),
        },
    }
