"""The one JSON error shape of the public contract: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rooms import RoomExistsError, RoomNotFoundError, ValidationError
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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except ValidationError as exc:
        return error_response(400, "invalid_field", str(exc))
    except AuthError as exc:
        return error_response(401, exc.code, str(exc), {"WWW-Authenticate": "Bearer"})
    except ForbiddenError as exc:
        return error_response(403, exc.code, str(exc))
    except RoomNotFoundError as exc:
        return error_response(404, "room_not_found", f"no room {exc.args[0]!r}")
    except RoomExistsError as exc:
        return error_response(409, "room_exists", f"room {exc.args[0]!r} exists already")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "error")
        message = exc.reason
        if exc.status == 413:
            message = "request body too large"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return error_response(exc.status, code, message, headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")


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
