"""Access tokens (JWT, HS256, RFC 7519) and the operator's API key.

A token names one identity in one room with a role and the grants that role allows (possibly
narrowed). Every HTTP endpoint and socket.io event asks :func:`require` with the grant it needs.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from rooms import Grant, Role, ValidationError, grants_for
from rooms.model import MAX_NAME_CHARS, check_identity, check_language, check_room_id

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "fairwire"
# RFC 7519 §4.1.4: allow a little clock skew between the issuing and the verifying node.
CLOCK_SKEW_SECONDS = 30
TOKEN_FIELDS = frozenset({"room", "identity", "name", "role", "ttl", "grants", "language"})
DEFAULT_TOKEN_TTL = 3600


class AuthError(Exception):
    """The caller is not who they claim (HTTP 401)."""

    def __init__(self, message: str, code: str = "unauthorized") -> None:
        super().__init__(message)
        self.code = code


class ForbiddenError(Exception):
    """The caller is known but may not do this (HTTP 403)."""

    def __init__(self, message: str, code: str = "forbidden") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says about its bearer."""

    identity: str
    name: str
    room: str
    role: Role
    grants: frozenset[Grant]
    language: str
    expires_at: int
    token_id: str

    def can(self, grant: Grant) -> bool:
        return grant in self.grants


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    secret: str
    max_ttl: int

    def issue(
        self,
        *,
        room: str,
        identity: str,
        name: str,
        role: Role,
        ttl: int = DEFAULT_TOKEN_TTL,
        grants: Iterable[Grant] | None = None,
        language: str = "en",
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": JWT_ISSUER,
            "sub": identity,
            "name": name,
            "room": room,
            "role": role.value,
            "grants": sorted(g.value for g in grants_for(role, grants)),
            "lang": language,
            "iat": issued,
            "nbf": issued - CLOCK_SKEW_SECONDS,
            "exp": issued + ttl,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self.secret, algorithm=JWT_ALGORITHM)

    def issue_from_request(self, body: Mapping[str, Any]) -> tuple[str, int]:
        """Validate a ``POST /api/tokens`` body; returns the token and its lifetime."""
        unknown = set(body) - TOKEN_FIELDS
        if unknown:
            raise ValidationError(sorted(unknown)[0], "unknown field")
        for required in ("room", "identity", "role"):
            if required not in body:
                raise ValidationError(required, "is required")
        room = check_room_id(body["room"])
        identity = check_identity(body["identity"])
        name = body.get("name", identity)
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise ValidationError("name", f"a non-empty string of at most {MAX_NAME_CHARS}")
        try:
            role = Role(body["role"])
        except ValueError:
            raise ValidationError("role", "one of exhibitor, buyer, host, visitor") from None
        ttl = body.get("ttl", DEFAULT_TOKEN_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= self.max_ttl:
            raise ValidationError("ttl", f"whole seconds from 1 to {self.max_ttl}")
        grants: list[Grant] | None = None
        if "grants" in body:
            raw = body["grants"]
            if not isinstance(raw, list):
                raise ValidationError("grants", "a list of grant names")
            try:
                grants = [Grant(g) for g in raw]
            except ValueError:
                raise ValidationError("grants", "publish, subscribe, moderate, record") from None
        language = check_language(body.get("language", "en"))
        token = self.issue(
            room=room, identity=identity, name=name.strip(), role=role, ttl=ttl,
            grants=grants, language=language,
        )
        return token, ttl

    def verify(self, token: str, now: float | None = None) -> Claims:
        """Check signature, expiry and shape; raises :class:`AuthError` on any doubt."""
        try:
            data = jwt.decode(
                token,
                self.secret,
                algorithms=[JWT_ALGORITHM],
                issuer=JWT_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "sub", "iss"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired", "token_expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}", "invalid_token") from None
        if now is not None and data["exp"] + CLOCK_SKEW_SECONDS < now:
            raise AuthError("token expired", "token_expired")
        try:
            role = Role(data["role"])
            claimed = frozenset(Grant(g) for g in data["grants"])
            return Claims(
                identity=check_identity(data["sub"]),
                name=str(data.get("name") or data["sub"]),
                room=check_room_id(data["room"]),
                role=role,
                # Never trust more than the role allows, whatever the token says.
                grants=claimed & grants_for(role),
                language=str(data.get("lang", "en")),
                expires_at=int(data["exp"]),
                token_id=str(data.get("jti", "")),
            )
        except (KeyError, ValueError, TypeError):
            raise AuthError("invalid token: malformed claims", "invalid_token") from None


def bearer_token(authorization: str | None) -> str:
    """The credential of an ``Authorization: Bearer <x>`` header (RFC 6750 §2.1)."""
    if not authorization:
        raise AuthError("missing Authorization: Bearer header", "missing_credentials")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("expected Authorization: Bearer <credential>", "missing_credentials")
    return value.strip()


def check_api_key(authorization: str | None, api_key: str) -> None:
    presented = bearer_token(authorization)
    if not hmac.compare_digest(presented.encode(), api_key.encode()):
        raise AuthError("invalid API key", "invalid_api_key")


def require(claims: Claims, grant: Grant, room: str | None = None) -> None:
    """Refuse (403) a token without ``grant``, or one issued for another room."""
    if room is not None and claims.room != room:
        raise ForbiddenError(f"token is for room {claims.room!r}, not {room!r}", "wrong_room")
    if not claims.can(grant):
        raise ForbiddenError(f"token lacks the {grant.value!r} grant", "missing_grant")
