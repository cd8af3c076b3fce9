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


def _signed_file(owner: str, summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "description": "No credentials: the signed path is the capability; a tampered or "
                           "expired signature is refused with 403.",
            "parameters": [{"name": name, "in": "path", "required": True,
                            "schema": {"type": "string"}}
                           for name in (owner, "signature", "file")] + [
                {"name": "Range", "in": "header", "required": False,
                 "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The file",
                        "content": {"application/octet-stream": {"schema": {
                            "type": "string", "format": "binary"}}}},
                "206": {"description": "The byte range asked for",
                        "content": {"application/octet-stream": {"schema": {
                            "type": "string", "format": "binary"}}}},
                "416": {"description": "Range not satisfiable",
                        "content": {"application/json": {"schema": _ERROR}}},
                **_error_responses(403, 404),
            },
        },
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
            "record": {"type": "boolean",
                       "description": "Record it (default: livestreams yes, meetings no); "
                                      "changing it needs the `record` grant"},
            "languages": {"type": "array", "items": {"type": "string"}},
            "visibility": {"enum": ["public", "private"],
                           "description": "Default: livestreams public, meetings private"},
            "delivery": {"enum": ["webrtc", "hls"],
                         "description": "How a livestream's viewers watch: webrtc (real time, "
                                        "the default) or hls (live HLS, when a host sends "
                                        "them there because the node is full)"},
            "lobby": {"type": "boolean",
                      "description": "Meetings: newcomers wait to be admitted from the start "
                                     "(moderators turn it on and off later)"},
            "created_at": {"type": "number"},
            "started_at": {"type": ["number", "null"]},
            "ended_at": {"type": ["number", "null"]},
            "publishing": {"type": "boolean", "description": "Someone publishes now"},
            "publishing_changed_at": {"type": ["number", "null"]},
            "on_air": {"type": "boolean",
                       "description": "Live and publishing (or within FAIRWIRE_LIVE_GRACE)"},
            "participant_count": {"type": "integer", "description": "GET of one room only"},
        },
    }
    editable = ("name", "category", "owner", "scheduled_start", "scheduled_end", "record",
                "languages", "visibility", "status", "delivery", "lobby")
    room_create = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "kind"],
        "properties": {
            key: room["properties"][key]  # type: ignore[index]
            for key in ("id", "kind", *editable)
        },
    }
    room_edit = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {key: room["properties"][key] for key in editable},  # type: ignore[index]
    }
    link = {
        "type": "object",
        "required": ["token", "token_id", "expires_in", "expires_at", "url"],
        "properties": {
            "token": {"type": "string", "description": "The link token (JWT)"},
            "token_id": {"type": "string", "description": "What DELETE /api/tokens/{id} takes"},
            "expires_in": {"type": "integer"},
            "expires_at": {"type": "integer", "description": "UNIX seconds"},
            "url": {"type": "string", "description": "The room page with the token"},
            "identity": {"type": "string"},
            "name": {"type": "string"},
        },
    }
    link_record = {
        "type": "object",
        "properties": {
            "token_id": {"type": "string"}, "room": {"type": "string"},
            "identity": {"type": "string"}, "name": {"type": "string"},
            "role": {"enum": ["exhibitor", "buyer", "host", "visitor"]},
            "issued_at": {"type": "number"}, "expires_at": {"type": "number"},
            "revoked": {"type": "boolean"},
        },
    }
    participant = {
        "type": "object",
        "properties": {
            "identity": {"type": "string"}, "name": {"type": "string"},
            "role": {"enum": ["exhibitor", "buyer", "host", "visitor"]},
            "joined_at": {"type": "number"}, "language": {"type": "string"},
            "guest": {"type": "boolean"},
            "tracks": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "kind": {"enum": ["audio", "video"]},
                "codec": {"type": "string"}, "profile": {"type": "string"},
                "source": {"type": "string"}, "muted": {"type": "boolean"}}}},
        },
    }
    question = {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "identity": {"type": "string"},
            "name": {"type": "string"}, "text": {"type": "string"},
            "at": {"type": "number"}, "offset": {"type": ["number", "null"]},
            "votes": {"type": "integer"}, "answered": {"type": "boolean"},
            "pinned": {"type": "boolean"}, "hidden": {"type": "boolean"},
        },
    }
    room_id_parameter = {"name": "room_id", "in": "path", "required": True,
                         "schema": {"type": "string"}}
    manager: list[dict[str, list[str]]] = [{"apiKey": []}, {"token": []}]
    nullable_url = {"type": ["string", "null"]}
    replay = {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "room": {"type": "string"},
            "title": {"type": "string"}, "category": {"type": "string"},
            "owner": {"type": ["string", "null"]},
            "owner_name": {"type": ["string", "null"], "description": "The owner's display name"},
            "kind": {"enum": ["livestream", "meeting"]},
            "participant": {"type": ["string", "null"],
                            "description": "Meetings are recorded per participant: whose"},
            "participant_name": {"type": ["string", "null"]},
            "start": {"type": "number"}, "end": {"type": "number"},
            "duration": {"type": "number", "description": "seconds"},
            "tracks": {"type": "array", "items": {"type": "object", "properties": {
                "kind": {"type": "string"}, "codec": {"type": "string"},
                "width": {"type": "integer"}, "height": {"type": "integer"}}}},
            "size": {"type": "integer"},
            "playback_url": nullable_url, "hls_url": nullable_url,
            "thumbnail_url": nullable_url, "url_expires_at": {"type": "integer"},
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
                       "items": {"enum": ["publish", "subscribe", "moderate", "record",
                                          "start-live"]},
                       "description": "Narrows the role's grants. `start-live` (exhibitor and "
                                      "host links, the operator only) is held only when named "
                                      "here: it lets the bearer create livestreams of their "
                                      "own (POST /api/rooms)."},
            "language": {"type": "string"},
        },
    }
    self_started = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "description": "What a start-live token sends: `kind` is livestream and `owner` the "
                       "token's identity (either may be left out); no `id`.",
        "properties": {
            key: room["properties"][key]  # type: ignore[index]
            for key in ("kind", *editable)
        },
    }
    created = {
        "allOf": [{"$ref": "#/components/schemas/Room"}, {"type": "object", "properties": {
            "studio_url": {"type": "string",
                           "description": "Self-started lives only: the owner's studio link"},
            "studio_link": {"$ref": "#/components/schemas/Link"},
        }}],
    }
    unix_seconds = {"type": "number", "minimum": 0,
                    "description": "UNIX time in seconds (an integer or a decimal)"}
    person: list[dict[str, list[str]]] = [{"token": []}]
    party = {"type": "object", "properties": {"identity": {"type": "string"},
                                              "name": {"type": "string"}}}
    appointment = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "organizer": party, "counterpart": party,
            "title": {"type": "string"},
            "start": {"type": "integer", "description": "UNIX seconds (UTC)"},
            "end": {"type": "integer", "description": "UNIX seconds; the slot is [start, end)"},
            "status": {"enum": ["proposed", "accepted", "declined", "cancelled"]},
            "created_at": {"type": "number"},
            "answered_at": {"type": ["number", "null"]},
            "cancelled_by": {"type": ["string", "null"]},
            "room": {"type": ["string", "null"],
                     "description": "The private meeting opened for it at its start"},
            "reminded": {"type": "boolean"},
        },
    }
    agenda_entry = {"allOf": [{"$ref": "#/components/schemas/Appointment"}, {
        "type": "object",
        "properties": {
            "with": party,
            "side": {"enum": ["organizer", "counterpart"],
                     "description": "Which side the caller is"},
            "start_local": {"type": "string", "format": "date-time",
                            "description": "ISO 8601 in the asked time zone"},
            "end_local": {"type": "string", "format": "date-time"},
            "actions": {"type": "array",
                        "items": {"enum": ["accept", "decline", "cancel", "join"]},
                        "description": "What the caller may do now"},
        },
    }]}
    appointment_id_parameter = {"name": "appointment_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}
    one_appointment = {"application/json": {"schema": {
        "$ref": "#/components/schemas/Appointment"}}}
    window = [
        {"name": "from", "in": "query", "schema": unix_seconds,
         "description": "Slots ending after this time (default: a week ago)"},
        {"name": "to", "in": "query", "schema": unix_seconds,
         "description": "Slots starting before this time (default: no bound)"},
    ]

    def appointment_change(summary: str, description: str, *statuses: int) -> dict[str, Any]:
        return {"post": {
            "summary": summary, "description": description, "security": person,
            "parameters": [appointment_id_parameter],
            "responses": {"200": {"description": "The appointment as it is now",
                                  "content": one_appointment},
                          **_error_responses(401, 403, 404, *statuses, 429)},
        }}
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
                "RoomEdit": room_edit,
                "SelfStartedLive": self_started,
                "RoomCreated": created,
                "TokenRequest": token_request,
                "Link": link,
                "LinkRecord": link_record,
                "Participant": participant,
                "Appointment": appointment,
                "AgendaEntry": agenda_entry,
            },
        },
        "paths": {
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "OK"}}}},
            "/readyz": {"get": {"summary": "Ready to take work (store reachable); which "
                                           "translators run, with their language pairs",
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
                        {"name": "visibility", "in": "query",
                         "schema": {"enum": ["public", "private"]}},
                        {"name": "from", "in": "query", "schema": unix_seconds,
                         "description": "The schedule from this time (inclusive)"},
                        {"name": "to", "in": "query", "schema": unix_seconds,
                         "description": "The schedule until this time (exclusive)"},
                    ],
                    "description": "Public rooms for anyone; with the API key every room, with "
                                   "a room's token that room too. With `from` and/or `to` the "
                                   "schedule: rooms taking place in [from, to) (starting in it, "
                                   "running into it, or live now and so running until now), "
                                   "sorted by start (the earlier of scheduled and actual); rooms "
                                   "with no time at all are left out. A bad value, or `to` not "
                                   "after `from`, is 400 `invalid_field` naming the parameter.",
                    "security": [{}, {"apiKey": []}, {"token": []}],
                    "responses": {"200": {"description": "Rooms", "content": {
                        "application/json": {"schema": {
                            "type": "object",
                            "properties": {"rooms": {"type": "array", "items": {
                                "$ref": "#/components/schemas/Room"}}}}}}},
                        **_error_responses(400, 401)},
                },
                "post": {
                    "summary": "Create a room, or start a livestream of one's own",
                    "description": "The API key creates any room. A token with the "
                                   "`start-live` grant creates a livestream owned by its "
                                   "bearer (public unless `visibility` is private; `status` "
                                   "scheduled, from now unless `scheduled_start` says when, or "
                                   "live) and gets `studio_url`, a studio link for it; a few a "
                                   "minute per identity.",
                    "security": [{"apiKey": []}, {"token": []}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"oneOf": [
                            {"$ref": "#/components/schemas/RoomCreate"},
                            {"$ref": "#/components/schemas/SelfStartedLive"}]}}}},
                    "responses": {"201": {"description": "Created", "content": {
                        "application/json": {"schema": {
                            "$ref": "#/components/schemas/RoomCreated"}}}},
                        **_error_responses(400, 401, 403, 409, 413, 415, 429)},
                },
            },
            "/api/rooms/{room_id}": {
                "parameters": [{"name": "room_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "get": {"summary": "One room (a private one only with its token or the API key: "
                               "404 otherwise)",
                        "security": [{}, {"apiKey": []}, {"token": []}],
                        "responses": {
                    "200": {"description": "The room", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Room"}}}},
                    **_error_responses(401, 404)}},
                "patch": {
                    "summary": "Edit a room, or move it through scheduled -> live -> ended",
                    "description": "The API key or a host token of the room; the owner "
                                   "exhibitor's token may change `status` only.",
                    "security": manager,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/RoomEdit"}}}},
                    "responses": {"200": {"description": "Updated", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Room"}}}},
                                  **_error_responses(400, 401, 403, 404, 409, 413, 415, 429)},
                },
            },
            "/api/rooms/{room_id}/participants": {
                "get": {
                    "summary": "Who is in the room, a page at a time",
                    "security": manager,
                    "parameters": [
                        room_id_parameter,
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    ],
                    "responses": {"200": {"description": "A page", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "participants": {"type": "array", "items": {
                                "$ref": "#/components/schemas/Participant"}},
                            "next": {"type": ["string", "null"]},
                            "total": {"type": "integer"}}}}}},
                        **_error_responses(400, 401, 403, 404)},
                },
            },
            "/api/rooms/{room_id}/links": {
                "get": {
                    "summary": "The room's unexpired links, newest first (never the tokens)",
                    "security": manager,
                    "parameters": [room_id_parameter],
                    "responses": {"200": {"description": "Links", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "links": {"type": "array", "items": {
                                "$ref": "#/components/schemas/LinkRecord"}}}}}}},
                        **_error_responses(401, 403, 404)},
                },
            },
            "/api/rooms/{room_id}/guest": {
                "post": {
                    "summary": "A visitor's link for a public room (no credentials)",
                    "description": "Rate-limited per address (FAIRWIRE_GUEST_TOKENS_PER_MINUTE)."
                                   " Private rooms are not found.",
                    "security": [{}],
                    "parameters": [room_id_parameter],
                    "requestBody": {"required": False, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "properties": {"name": {"type": "string"},
                                                  "language": {"type": "string"}}}}}},
                    "responses": {"201": {"description": "The guest's link", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Link"}}}},
                        **_error_responses(400, 404, 409, 413, 415, 429)},
                },
            },
            "/api/rooms/{room_id}/questions": {
                "get": {
                    "summary": "A livestream's questions, in the order asked",
                    "description": "A token of the room with `subscribe`, or the API key. "
                                   "Hidden questions have `text: \"\"` except for their asker "
                                   "and the room's moderators.",
                    "security": manager,
                    "parameters": [room_id_parameter],
                    "responses": {"200": {"description": "Questions", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "questions": {"type": "array", "items": question}}}}}},
                        **_error_responses(401, 403, 404)},
                },
            },
            "/api/rooms/{room_id}/stats": {
                "get": {
                    "summary": "Live figures (the operator, the room's hosts and its owner)",
                    "security": manager,
                    "parameters": [room_id_parameter],
                    "responses": {"200": {"description": "Figures", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            name: {"type": "number"} for name in (
                                "current", "peak", "unique_viewers", "total_watch_seconds",
                                "average_watch_seconds", "questions_asked",
                                "questions_answered", "chat_messages")}}}}},
                        **_error_responses(401, 403, 404)},
                },
            },
            "/api/rooms/{room_id}/attendance": {
                "get": {
                    "summary": "Each person's visits and watch time (JSON, or CSV with "
                               "Accept: text/csv)",
                    "security": manager,
                    "parameters": [room_id_parameter],
                    "responses": {"200": {"description": "Attendance", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "attendance": {"type": "array", "items": {
                                "type": "object", "properties": {
                                    "identity": {"type": "string"},
                                    "name": {"type": "string"},
                                    "role": {"type": "string"},
                                    "sessions": {"type": "array", "items": {
                                        "type": "object", "properties": {
                                            "joined_at": {"type": "number"},
                                            "left_at": {"type": ["number", "null"]}}}},
                                    "watch_seconds": {"type": "number"}}}}}}},
                        "text/csv": {"schema": {"type": "string"}}}},
                        **_error_responses(401, 403, 404)},
                },
            },
            "/api/replays": {
                "get": {
                    "summary": "Replays of finished livestreams, newest first",
                    "description": "A token of a room (with `subscribe`) lists that room's "
                                   "replays; the API key all. URLs in the answer are signed "
                                   "and expire (`url_expires_at`).",
                    "security": manager,
                    "parameters": [
                        {"name": name, "in": "query", "required": False,
                         "schema": {"type": "string"}}
                        for name in ("room", "owner", "category", "cursor")
                    ] + [{"name": "limit", "in": "query", "required": False,
                          "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                    "responses": {"200": {"description": "A page of replays", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "replays": {"type": "array", "items": replay},
                            "next_cursor": {"type": ["string", "null"]}}}}}},
                        **_error_responses(400, 401)},
                },
            },
            "/api/replays/{replay_id}": {
                "get": {
                    "summary": "One replay; its files are served at the signed URLs it gives, "
                               "with byte ranges (RFC 9110 §14)",
                    "security": manager,
                    "parameters": [{"name": "replay_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "The replay", "content": {
                        "application/json": {"schema": replay}}},
                        **_error_responses(401, 404)},
                },
            },
            "/api/tokens/{token_id}": {
                "delete": {
                    "summary": "Revoke a link: its connections end at their next renewal",
                    "security": manager,
                    "parameters": [{"name": "token_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "Revoked"},
                                  **_error_responses(401, 403, 404, 429)},
                },
            },
            "/api/tokens": {
                "post": {
                    "summary": "Issue a link: a room token (JWT, HS256) and its URL",
                    "description": "The API key, or a host token for its own room (no host "
                                   "links). `ttl` defaults to 7 days, at most "
                                   "FAIRWIRE_TOKEN_MAX_TTL.",
                    "security": manager,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
                    "responses": {"200": {"description": "The link", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Link"}}}},
                        **_error_responses(400, 401, 403, 404, 413, 415, 429)},
                },
            },
            "/replays/{replay_id}/s/{signature}/{file}": _signed_file(
                "replay_id", "A replay's file (the replay, HLS VOD, thumbnail), with byte "
                "ranges; `signature` comes from the replay's URLs"),
            "/hls/{room}/index.m3u8": {
                "get": {
                    "summary": "Live HLS of an H.264 livestream on air: redirects to the "
                               "playlist's signed address (RFC 8216, fMP4 segments of ~2 s)",
                    "security": manager,
                    "parameters": [{"name": "room", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {"302": {"description": "The signed playlist", "headers": {
                        "Location": {"schema": {"type": "string"}}}},
                        **_error_responses(401, 403, 404)},
                },
            },
            "/hls/{room}/s/{signature}/{file}": _signed_file(
                "room", "A live HLS file: the playlist (cached ~1 s) or a segment (immutable)"),
            "/api/appointments": {
                "post": {
                    "summary": "Propose a time slot to someone",
                    "description": "The caller is the identity of any room link they hold "
                                   "(guests and the API key: 403 `forbidden`). Refused with "
                                   "409 `overlap` when the slot overlaps an accepted "
                                   "appointment of either side (of the other side's calendar "
                                   "the message says only that they are not free then). A "
                                   "slot lasts 5 minutes to 8 hours, starts within a year and "
                                   "not in the past; 10 proposals a minute per identity. Both "
                                   "sides' connections get socket.io `appointment`.",
                    "security": person,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {
                            "type": "object", "additionalProperties": False,
                            "required": ["with", "title", "start", "end"],
                            "properties": {
                                "with": {"type": "string",
                                         "description": "The identity to meet"},
                                "with_name": {"type": "string",
                                              "description": "Their name, until they answer"},
                                "title": {"type": "string", "maxLength": 200},
                                "start": unix_seconds, "end": unix_seconds}}}}},
                    "responses": {"201": {"description": "Proposed", "headers": {
                        "Location": {"schema": {"type": "string"}}},
                        "content": one_appointment},
                        **_error_responses(400, 401, 403, 409, 413, 415, 429)},
                },
            },
            "/api/appointments/{appointment_id}": {
                "get": {
                    "summary": "One appointment (its two parties only: 404 for anyone else)",
                    "security": person,
                    "parameters": [appointment_id_parameter],
                    "responses": {"200": {"description": "The appointment",
                                          "content": one_appointment},
                                  **_error_responses(401, 403, 404)},
                },
            },
            "/api/appointments/{appointment_id}/accept": appointment_change(
                "Accept a proposal", "The counterpart only (else 403 `not_counterpart`), "
                "once (409 `already_answered`), before its end (409 `appointment_over`); 409 "
                "`overlap` when it overlaps an accepted appointment of either side now. The "
                "role and language of the caller's link become their meeting link's.", 409),
            "/api/appointments/{appointment_id}/decline": appointment_change(
                "Decline a proposal", "The counterpart only, once.", 409),
            "/api/appointments/{appointment_id}/cancel": appointment_change(
                "Cancel a proposal or an accepted appointment",
                "Either side, before its end; 409 `appointment_cancelled` the second time.",
                409),
            "/api/appointments/{appointment_id}/join": {
                "post": {
                    "summary": "A link of one's own into the appointment's meeting",
                    "description": "Once its meeting is open (from its start), for a page "
                                   "that was not connected when `meeting-ready` went out; 409 "
                                   "`meeting_not_open` before, or after its end.",
                    "security": person,
                    "parameters": [appointment_id_parameter],
                    "responses": {"200": {"description": "The link", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "room": {"type": "string"},
                            "url": {"type": "string",
                                    "description": "The room page with the caller's token"},
                        }}}}},
                        **_error_responses(401, 403, 404, 409, 429)},
                },
            },
            "/api/agenda": {
                "get": {
                    "summary": "The caller's appointments, either side, any status, by start",
                    "description": "Times as UNIX seconds and as ISO 8601 in `tz`.",
                    "security": person,
                    "parameters": [{"name": "tz", "in": "query", "schema": {
                        "type": "string", "default": "UTC"},
                        "description": "An IANA time zone, e.g. Asia/Shanghai"}, *window],
                    "responses": {"200": {"description": "The agenda", "content": {
                        "application/json": {"schema": {"type": "object", "properties": {
                            "time_zone": {"type": "string"},
                            "from": {"type": "number"}, "to": {"type": ["number", "null"]},
                            "appointments": {"type": "array", "items": {
                                "$ref": "#/components/schemas/AgendaEntry"}}}}}}},
                        **_error_responses(400, 401, 403)},
                },
            },
            "/api/agenda.ics": {
                "get": {
                    "summary": "The agenda as an iCalendar file (RFC 5545)",
                    "description": "The token as a Bearer header, or (for calendar apps, "
                                   "which send no headers) as `?token=`: a room link or "
                                   "session token, never the API key. `id`: that appointment "
                                   "alone. Times in UTC; proposals TENTATIVE, accepted "
                                   "CONFIRMED, declined and cancelled CANCELLED.",
                    "security": person,
                    "parameters": [{"name": "token", "in": "query",
                                    "schema": {"type": "string"}},
                                   {"name": "id", "in": "query", "schema": {"type": "string"}},
                                   *window],
                    "responses": {"200": {"description": "The calendar", "content": {
                        "text/calendar": {"schema": {"type": "string"}}}},
                        **_error_responses(400, 401, 403, 404)},
                },
            },
            "/whip/{room}": _sdp_exchange("WHIP ingest (RFC 9725)", "publish"),
            "/whep/{room}": _sdp_exchange("WHEP playback", "subscribe"),
        },
    }
