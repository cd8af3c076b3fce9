"""Access tokens (JWT, HS256, RFC 7519) and the operator's API key.

A token names one identity in one room with a role and the grants that role allows (possibly
narrowed). Every HTTP endpoint and socket.io event asks :func:`require` with the grant it needs.

Two uses of the same format: a *link* token is what a URL carries and lasts as long as its
issuer chose (days, for a fair); a *session credential* is what the node hands each connection
(minutes) and renews while it stays connected (:mod:`signalling.credentials`). A session
credential names the link it came from (``lnk``), so revoking the link ends both.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from rooms import Grant, Role, ValidationError, grants_for
from rooms.model import (
    MAX_NAME_CHARS,
    check_identity,
    check_language,
    check_room_id,
    grantable,
)

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "fairwire"
# RFC 7519 §4.1.4: allow a little clock skew between the issuing and the verifying node.
CLOCK_SKEW_SECONDS = 30
TOKEN_FIELDS = frozenset({"room", "identity", "name", "role", "ttl", "grants", "language"})
# A link handed out for a fair lasts its week unless the issuer says otherwise.
DEFAULT_TOKEN_TTL = 7 * 24 * 3600
TokenUse = Literal["link", "session"]


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
    token_id: str  # the link's id, for a session credential too: what revocation names
    guest: bool = False
    use: TokenUse = "link"
    link_expires_at: int = 0  # when the link it came from expires (its own expiry for a link)

    def can(self, grant: Grant) -> bool:
        return grant in self.grants


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    token_id: str
    issued_at: int
    expires_at: int
    claims: Claims

    @property
    def ttl(self) -> int:
        return self.expires_at - self.issued_at


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    secret: str
    max_ttl: int
    # RFC 7519 §4.1.4: how far the issuing and the verifying node's clocks may disagree.
    clock_skew: int = CLOCK_SKEW_SECONDS

    def issue_link(
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
        guest: bool = False,
    ) -> IssuedToken:
        issued = int(time.time() if now is None else now)
        claims = Claims(identity=identity, name=name, room=room, role=role,
                        grants=grants_for(role, grants), language=language,
                        expires_at=issued + ttl, token_id=secrets.token_hex(8), guest=guest,
                        link_expires_at=issued + ttl)
        return self._encode(claims, issued)

    def session_credential(self, claims: Claims, ttl: int, now: float) -> IssuedToken:
        """A short credential for a connection holding ``claims`` (from a link or an earlier
        credential): same bearer and grants, ``ttl`` seconds from ``now``."""
        issued = int(now)
        renewed = dataclasses.replace(claims, expires_at=issued + ttl, use="session")
        return self._encode(renewed, issued)

    def _encode(self, claims: Claims, issued: int) -> IssuedToken:
        payload: dict[str, Any] = {
            "iss": JWT_ISSUER,
            "sub": claims.identity,
            "name": claims.name,
            "room": claims.room,
            "role": claims.role.value,
            "grants": sorted(g.value for g in claims.grants),
            "lang": claims.language,
            "iat": issued,
            "nbf": issued - self.clock_skew,
            "exp": claims.expires_at,
            "use": claims.use,
        }
        if claims.use == "session":
            payload["jti"] = secrets.token_hex(8)
            payload["lnk"] = claims.token_id
            payload["lexp"] = claims.link_expires_at
        else:
            payload["jti"] = claims.token_id
        if claims.guest:
            payload["gst"] = True
        token = jwt.encode(payload, self.secret, algorithm=JWT_ALGORITHM)
        return IssuedToken(token, claims.token_id, issued, claims.expires_at, claims)

    def issue_from_request(self, body: Mapping[str, Any], now: float | None = None
                           ) -> IssuedToken:
        """Validate a ``POST /api/tokens`` body and issue the link it asks for."""
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
        ttl = body.get("ttl", min(DEFAULT_TOKEN_TTL, self.max_ttl))
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
                names = ", ".join(g.value for g in Grant)
                raise ValidationError("grants", names) from None
        language = check_language(body.get("language", "en"))
        return self.issue_link(
            room=room, identity=identity, name=name.strip(), role=role, ttl=ttl,
            grants=grants, language=language, now=now,
        )

    def verify(self, token: str, now: float | None = None) -> Claims:
        """Check signature, expiry and shape; raises :class:`AuthError` on any doubt."""
        try:
            # The times are checked below against ``now`` (tests and renewals pass it in).
            data = jwt.decode(
                token,
                self.secret,
                algorithms=[JWT_ALGORITHM],
                issuer=JWT_ISSUER,
                options={"require": ["exp", "sub", "iss"], "verify_iat": False,
                         "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}", "invalid_token") from None
        current = time.time() if now is None else now
        try:
            expires, not_before = float(data["exp"]), float(data.get("nbf", 0))
        except (TypeError, ValueError):
            raise AuthError("invalid token: malformed times", "invalid_token") from None
        if expires + self.clock_skew < current:
            raise AuthError("token expired", "token_expired")
        if not_before - self.clock_skew > current:
            raise AuthError("invalid token: not yet valid", "invalid_token")
        try:
            role = Role(data["role"])
            claimed = frozenset(Grant(g) for g in data["grants"])
            use = data.get("use", "link")
            if use not in ("link", "session"):
                raise ValueError(use)
            return Claims(
                identity=check_identity(data["sub"]),
                name=str(data.get("name") or data["sub"]),
                room=check_room_id(data["room"]),
                role=role,
                # Never trust more than the role may hold, whatever the token says.
                grants=claimed & grantable(role),
                language=str(data.get("lang", "en")),
                expires_at=int(data["exp"]),
                token_id=str(data["lnk"] if use == "session" else data.get("jti", "")),
                guest=data.get("gst") is True,
                use=use,
                link_expires_at=int(data["lexp"] if use == "session" else data["exp"]),
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


def is_api_key(presented: str, api_key: str) -> bool:
    """Whether a bearer credential is the operator's key (compared in constant time)."""
    return hmac.compare_digest(presented.encode(), api_key.encode())


def require(claims: Claims, grant: Grant, room: str | None = None) -> None:
    """Refuse (403) a token without ``grant``, or one issued for another room."""
    if room is not None and claims.room != room:
        raise ForbiddenError(f"token is for room {claims.room!r}, not {room!r}", "wrong_room")
    require_grant(claims.grants, grant)


def require_grant(grants: frozenset[Grant], grant: Grant) -> None:
    """Refuse (403) without ``grant`` among what the caller holds in its room."""
    if grant not in grants:
        raise ForbiddenError(f"no {grant.value!r} grant in this room", "missing_grant")
