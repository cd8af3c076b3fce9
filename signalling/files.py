"""Media files over HTTP: signed links and byte-range responses, for replays and live HLS.

A signed link carries its capability in the path, ``{prefix}/s/{expires}.{hmac}/{file}``, so that
a playlist's relative URLs hand it on to their segments and a ``<video>`` element, a player or a
CDN fetches them without a token. Each :class:`UrlSigner` signs for one purpose: a replay's
link opens no live stream and the reverse.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
from typing import BinaryIO

from aiohttp import hdrs, web

from signalling.auth import ForbiddenError
from signalling.errors import ApiError

_SIGNATURE = re.compile(r"(\d{1,12})\.([0-9a-f]{64})")
CHUNK_BYTES = 256 * 1024
CONTENT_TYPES = {".webm": "video/webm", ".mp4": "video/mp4", ".m4s": "video/iso.segment",
                 ".m3u8": "application/vnd.apple.mpegurl", ".jpg": "image/jpeg"}


class UrlSigner:
    """HMAC-SHA256 over ``purpose``, the resource and the expiry, keyed from the node secret."""

    def __init__(self, secret: str, purpose: str, ttl: int, *, granularity: int = 1) -> None:
        self._key = hashlib.sha256(f"fairwire {purpose} urls\0".encode() + secret.encode()
                                   ).digest()
        self.ttl = ttl
        # Expiries rounded up to this many seconds: everyone who asks within that window
        # gets the same URLs, so a CDN caches one copy of each segment, not one per viewer.
        self.granularity = granularity

    def sign(self, resource: str, expires: int) -> str:
        message = f"{resource}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def expiry(self, now: float) -> int:
        step = self.granularity
        return math.ceil((now + self.ttl) / step) * step

    def token(self, resource: str, now: float) -> str:
        """The ``{expires}.{signature}`` path element for ``resource``."""
        expires = self.expiry(now)
        return f"{expires}.{self.sign(resource, expires)}"

    def check(self, resource: str, signature: str, now: float) -> None:
        """403 ``invalid_signature`` for a forged or tampered link, ``signature_expired`` late."""
        match = _SIGNATURE.fullmatch(signature)
        if match is None or not hmac.compare_digest(
                self.sign(resource, int(match.group(1))), match.group(2)):
            raise ForbiddenError("this link is not valid", "invalid_signature")
        if int(match.group(1)) < now:
            raise ForbiddenError("this link has expired: open the page again",
                                 "signature_expired")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """RFC 9110 §14.1.2: the one byte range asked for, as (first, last) inclusive; None for
    the whole file (no header, or several ranges, which a server may answer in full).
    Raises ValueError when the range cannot be satisfied (-> 416)."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":  # a suffix: the last N bytes
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                raise ValueError("empty suffix range")
            return max(0, size - suffix), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        raise ValueError(f"not a byte range: {header!r}") from None
    if first < 0 or first > last or first >= size:
        raise ValueError(f"range {header!r} is outside the {size} bytes")
    return first, min(last, size - 1)


async def serve_file(request: web.Request, name: str, size: int, source: BinaryIO,
                     cache_control: str) -> web.StreamResponse:
    """``source`` (``size`` bytes, closed here) as the answer, honouring one byte range."""
    with source:
        try:
            span = parse_range(request.headers.get(hdrs.RANGE), size)
        except ValueError as exc:
            raise ApiError(416, str(exc), "range_not_satisfiable",
                           headers={hdrs.CONTENT_RANGE: f"bytes */{size}"}) from None
        first, last = span if span is not None else (0, size - 1)
        suffix = name[name.rfind("."):]
        response = web.StreamResponse(status=206 if span is not None else 200, headers={
            hdrs.CONTENT_TYPE: CONTENT_TYPES.get(suffix, "application/octet-stream"),
            hdrs.ACCEPT_RANGES: "bytes",
            hdrs.CACHE_CONTROL: cache_control,
            hdrs.CONTENT_LENGTH: str(last - first + 1 if size else 0),
            hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*",
        })
        if span is not None:
            response.headers[hdrs.CONTENT_RANGE] = f"bytes {first}-{last}/{size}"
        await response.prepare(request)
        if request.method != hdrs.METH_HEAD and size:
            source.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = await asyncio.to_thread(source.read, min(CHUNK_BYTES, left))
                if not chunk:
                    break
                await response.write(chunk)
                left -= len(chunk)
        await response.write_eof()
        return response
