"""Session credentials: what keeps a connection in while its link lasts for days.

A person opens a *link* (a token in a URL, valid for the fair). Each connection then holds a
short *session credential* that this node hands out when it joins and renews while it stays
connected, so no expiry ends a live; a connection that drops reconnects with its credential
(or, once that has expired, the link). Revoking a link is seen at the next sweep, every
:func:`sweep_interval` seconds: the node asks the store (shared by every node) which of its
holders' links are revoked, once for all of them, and ends those.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from typing import Protocol

from rooms import Store
from signalling.auth import AuthError, Claims, IssuedToken, TokenIssuer
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# A credential is renewed once this share of its lifetime is gone: a renewal that is late by a
# sweep (or fails once while the store restarts) still finds its connection holding a valid one.
RENEW_AFTER_SHARE = 0.5
MAX_SWEEP_SECONDS = 30.0
MIN_SWEEP_SECONDS = 1.0


def sweep_interval(session_ttl: float) -> float:
    return min(MAX_SWEEP_SECONDS, max(MIN_SWEEP_SECONDS, session_ttl / 4))


class CredentialHolder(Protocol):
    """Connections of some kind on this node (socket.io, WHIP/WHEP sessions)."""

    def token_ids(self) -> Collection[str]:
        """The link ids the holder's connections came in with."""

    async def revoke(self, token_ids: set[str]) -> None:
        """End the connections that came in with any of these (revoked) links."""

    async def renew(self, credentials: SessionCredentials, now: float) -> None:
        """Give each connection whose credential is due a fresh one."""


class SessionCredentials:
    def __init__(self, tokens: TokenIssuer, store: Store, ttl: int) -> None:
        self.tokens = tokens
        self.store = store
        self.ttl = ttl
        self._holders: list[CredentialHolder] = []
        self._task: asyncio.Task[None] | None = None

    def watch(self, holder: CredentialHolder) -> None:
        self._holders.append(holder)

    async def verify(self, token: str) -> Claims:
        """A link or session credential that is valid and not revoked; :class:`AuthError`
        (``invalid_token``, ``token_expired``, ``token_revoked``) otherwise."""
        claims = self.tokens.verify(token)
        if claims.token_id and await self.store.revoked((claims.token_id,)):
            raise AuthError("this link was revoked", "token_revoked")
        return claims

    def issue(self, claims: Claims, now: float) -> IssuedToken:
        return self.tokens.session_credential(claims, self.ttl, now)

    def due(self, claims: Claims, now: float) -> bool:
        return claims.expires_at - now < self.ttl * RENEW_AFTER_SHARE

    async def sweep(self, now: float) -> None:
        """Revoke what was revoked, then renew what is due."""
        held = [set(holder.token_ids()) for holder in self._holders]
        every = set().union(*held)
        revoked = await self.store.revoked(every) if every else set()
        for holder, ids in zip(self._holders, held, strict=True):
            if ids & revoked:
                await holder.revoke(ids & revoked)
        for holder in self._holders:
            await holder.renew(self, now)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        interval = sweep_interval(self.ttl)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:  # the store went away for a moment: try again next sweep
                log.exception("renewing session credentials failed; retrying")
