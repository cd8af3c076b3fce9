"""What the HTTP providers (LibreTranslate, DeepL) share: whose aiohttp session it is, and how
an HTTP answer or a network error becomes a :class:`TranslationError`.

Nothing here logs or formats a request's headers or body: they carry the API keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import aiohttp

from translate.provider import FailureKind, TranslationError

SessionFactory = Callable[[], aiohttp.ClientSession]

# How much of a server's error text goes into a failure's message (it ends up in logs).
SERVER_MESSAGE_LIMIT = 300


class ProviderSession:
    """A provider's aiohttp session: the caller's when it gave one (left open at ``close``),
    else one made on first use, by ``factory`` or with aiohttp's defaults, and closed at
    ``close``. Made on first use because aiohttp wants a session made inside the event loop."""

    def __init__(
        self, session: aiohttp.ClientSession | None, factory: SessionFactory | None
    ) -> None:
        if session is not None and factory is not None:
            raise ValueError("give a session or a session factory, not both")
        self._given = session
        self._factory = factory
        self._owned: aiohttp.ClientSession | None = None
        self._closed = False

    def get(self, provider: str) -> aiohttp.ClientSession:
        if self._closed:
            # A new session now would never be closed.
            raise TranslationError(FailureKind.UNAVAILABLE, f"{provider}: closed")
        if self._given is not None:
            return self._given
        if self._owned is None:
            self._owned = (self._factory or aiohttp.ClientSession)()
        return self._owned

    async def close(self) -> None:
        self._closed = True
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.close()


def kind_of_status(status: int, special: Mapping[int, FailureKind]) -> FailureKind:
    """The failure an HTTP status means; ``special`` holds a provider's own statuses."""
    if status in special:
        return special[status]
    if status in (401, 403):
        return FailureKind.AUTH
    if status == 429:
        return FailureKind.RATE_LIMITED
    if 400 <= status < 500:
        return FailureKind.REJECTED
    return FailureKind.UNAVAILABLE


def parse_json(body: bytes) -> object:
    """The JSON value of a body, None when it is not JSON (an HTML error page, a proxy's)."""
    try:
        value: object = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return None
    return value


def server_message(answer: object, key: str) -> str | None:
    """The server's own words in an error answer such as ``{"error": "..."}``, shortened."""
    if not isinstance(answer, dict):
        return None
    text = answer.get(key)
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    return text if len(text) <= SERVER_MESSAGE_LIMIT else text[:SERVER_MESSAGE_LIMIT] + "…"


def status_failure(
    provider: str,
    status: int,
    answer: object,
    message_key: str,
    special: Mapping[int, FailureKind],
) -> TranslationError:
    said = server_message(answer, message_key)
    message = f"{provider}: HTTP {status}" + (f": {said}" if said else "")
    return TranslationError(kind_of_status(status, special), message)


@contextlib.asynccontextmanager
async def start_bounded(provider: str, seconds: float, what: str) -> AsyncIterator[None]:
    """What ``start()`` does inside may take ``seconds``: past them, or on an aiohttp timeout,
    the provider is unavailable (a slow start is a provider that is not there)."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise TranslationError(
            FailureKind.UNAVAILABLE, f"{provider}: no {what} within {seconds} s") from exc
    except TranslationError as exc:
        if exc.kind is FailureKind.TIMEOUT:
            raise TranslationError(FailureKind.UNAVAILABLE, str(exc)) from exc
        raise


@contextlib.contextmanager
def network_failures(provider: str, special: Mapping[int, FailureKind]) -> Iterator[None]:
    """Turns aiohttp's errors inside the block into TranslationErrors. A cancellation (the
    caller's asyncio.timeout) is no error here and passes through untouched."""
    try:
        yield
    except aiohttp.ClientResponseError as exc:
        # Only from a caller's session made with raise_for_status=True.
        raise TranslationError(
            kind_of_status(exc.status, special), f"{provider}: HTTP {exc.status}"
        ) from exc
    except TimeoutError as exc:
        # aiohttp's own timeouts (a caller's session may set them); never the caller's
        # asyncio.timeout, which reaches this code as a cancellation.
        raise TranslationError(FailureKind.TIMEOUT, f"{provider}: {type(exc).__name__}") from exc
    except aiohttp.ClientError as exc:
        raise TranslationError(
            FailureKind.UNAVAILABLE, f"{provider}: {type(exc).__name__}: {exc}"
        ) from exc
