"""The one JSON error shape of the public contract: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rooms import RoomExistsError, RoomNotFoundError, ValidationError
from rooms.appointments import AppointmentConflict, AppointmentRefused
from signalling.auth import AuthError, ForbiddenError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise anywhere under a handler to answer with the contract's JSON error."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}
        # More for the client to act on, beside code and message (e.g. retry_after).
        self.extra = extra or {}


def api_error(exc: Exception) -> ApiError | None:
    """The one mapping from what handlers raise to the contract's status, code and message,
    for REST and socket.io alike; None for an unexpected exception (an internal error)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return ApiError(400, str(exc), "invalid_field")
    if isinstance(exc, AuthError):
        return ApiError(401, str(exc), exc.code, {"WWW-Authenticate": "Bearer"})
    if isinstance(exc, ForbiddenError):
        return ApiError(403, str(exc), exc.code)
    if isinstance(exc, RoomNotFoundError):
        return ApiError(404, f"no room {exc.args[0]!r}", "room_not_found")
    if isinstance(exc, RoomExistsError):
        return ApiError(409, f"room {exc.args[0]!r} exists already", "room_exists")
    if isinstance(exc, AppointmentConflict):
        return ApiError(409, exc.message, exc.code)
    if isinstance(exc, AppointmentRefused):
        return ApiError(403, exc.message, exc.code)
    return None


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "error")
        message = exc.reason
        if exc.status == 413:
            message = "request body too large"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return error_response(exc.status, code, message, headers)
    except Exception as exc:
        error = api_error(exc)
        if error is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, "internal_error", "internal server error")
        return web.json_response(error_body(error.code, error.message, **error.extra),
                                 status=error.status, headers=error.headers)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413/415 ApiError."""
    if request.content_type != "application/json":
        raise ApiError(415, "expected Content-Type: application/json")
    raw = await request.read()  # aiohttp enforces client_max_size: 413 past it
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body is not valid JSON", "invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object", "invalid_json")
    return body
