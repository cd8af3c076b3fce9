"""Fairwire settings: one frozen object from defaults, an optional TOML file and the environment.

Precedence, lowest first: built-in defaults, the TOML file (``--config`` or ``FAIRWIRE_CONFIG``),
environment variables ``FAIRWIRE_<NAME>``. Every value is checked once here; a bad one raises
:class:`ConfigError` naming the setting, and ``fairwire serve`` prints that one line and exits.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

# Development defaults: fine on a laptop, refused in production mode.
DEFAULT_API_KEY = "fairwire-dev-api-key"
DEFAULT_JWT_SECRET = "fairwire-dev-jwt-secret-change-me"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
MIN_SECRET_BYTES = 32

ENV_PREFIX = "FAIRWIRE_"

Mode = Literal["dev", "production"]


class ConfigError(ValueError):
    """A setting is missing or has a bad value; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Fairwire node reads at start-up. Documented setting by setting in README.md."""

    # Empty: by mode. A first run in dev mode is reachable from this machine only; production
    # (behind a proxy or in a container) listens on every interface.
    host: str = ""
    port: int = 8080
    mode: Mode = "dev"
    api_key: str = DEFAULT_API_KEY
    jwt_secret: str = DEFAULT_JWT_SECRET
    redis_url: str | None = None
    data_dir: Path = Path("data")
    public_url: str | None = None
    node_id: str = ""
    max_body_bytes: int = 64 * 1024
    # Links (tokens in URLs) may last a whole fair; connections hold a session credential of
    # session_ttl seconds that the node renews while they stay (revocation acts on renewal).
    token_max_ttl: int = 30 * 24 * 3600
    session_ttl: int = 120
    clock_skew: int = 30
    # Visitors of public rooms get a guest link of this lifetime, so many a minute per address.
    guest_token_ttl: int = 3600
    guest_tokens_per_minute: int = 10
    # A live room whose publishers all left shows LIVE this much longer, then "starting soon".
    live_grace: int = 60
    # Replay URLs (playback, HLS, thumbnail) carry a signature valid this long (seconds).
    replay_url_ttl: int = 6 * 3600
    rate_limit_per_minute: int = 600
    cors_origins: tuple[str, ...] = ("*",)
    ice_servers: tuple[str, ...] = ()
    # Every peer connection's media goes through this one UDP port (0: any free one, logged at
    # start-up); candidates advertise media_host, or the machine's first IPv4 address.
    media_host: str = "0.0.0.0"
    media_port: int = 0
    # Machine translation of chat and questions: the providers in order of preference (each
    # used for the language pairs it has), and what each needs.
    translators: tuple[str, ...] = ("apertium",)
    libretranslate_url: str | None = None
    libretranslate_api_key: str | None = None
    deepl_api_key: str | None = None
    deepl_url: str | None = None  # None: the free API (https://api-free.deepl.com)
    translation_timeout_ms: int = 5000
    glossary: Path | None = None
    log_level: str = "INFO"
    # Each room's event log keeps at most this many events, none older than this (seconds):
    # a client that was away longer catches up from a fresh snapshot instead.
    event_log_max_events: int = 1000
    event_log_max_age: int = 3600

    @property
    def in_memory(self) -> bool:
        return self.redis_url is None

    @property
    def all_interfaces(self) -> bool:
        return self.host in ("0.0.0.0", "::")

    @property
    def listen_url(self) -> str:
        """The URL to open: the public one, or this node's own address."""
        shown = "127.0.0.1" if self.all_interfaces else self.host
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"  # RFC 3986 §3.2.2: an IPv6 literal in brackets
        return self.public_url or f"http://{shown}:{self.port}"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
TRANSLATORS = ("apertium", "libretranslate", "deepl")


def _parse_int(name: str, raw: object, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{name}: expected an integer, got {raw!r}")
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range {low}..{high}")
    return value


def _parse_list(raw: object) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        return tuple(str(item).strip() for item in raw if str(item).strip())
    return tuple(part.strip() for part in str(raw).split(",") if part.strip())


def _coerce(name: str, raw: object) -> object:
    """Turn a raw value (string from the environment, or TOML value) into the field's type."""
    setting = f"{ENV_PREFIX}{name.upper()}"
    if name == "port":
        return _parse_int(setting, raw, 1, 65535)
    if name == "media_port":
        return _parse_int(setting, raw, 0, 65535)
    if name == "max_body_bytes":
        return _parse_int(setting, raw, 1024, 64 * 1024 * 1024)
    if name == "token_max_ttl":
        return _parse_int(setting, raw, 60, 366 * 24 * 3600)
    if name == "session_ttl":
        return _parse_int(setting, raw, 10, 24 * 3600)
    if name == "clock_skew":
        return _parse_int(setting, raw, 0, 300)
    if name == "guest_token_ttl":
        return _parse_int(setting, raw, 60, 7 * 24 * 3600)
    if name == "guest_tokens_per_minute":
        return _parse_int(setting, raw, 1, 1_000_000)
    if name == "live_grace":
        return _parse_int(setting, raw, 0, 24 * 3600)
    if name == "replay_url_ttl":
        return _parse_int(setting, raw, 60, 30 * 24 * 3600)
    if name == "rate_limit_per_minute":
        return _parse_int(setting, raw, 1, 1_000_000)
    if name == "event_log_max_events":
        return _parse_int(setting, raw, 10, 1_000_000)
    if name == "event_log_max_age":
        return _parse_int(setting, raw, 10, 30 * 24 * 3600)
    if name == "translation_timeout_ms":
        return _parse_int(setting, raw, 100, 60_000)
    if name == "glossary":
        return Path(str(raw)) if str(raw).strip() else None
    if name in ("cors_origins", "ice_servers", "translators"):
        return _parse_list(raw)
    if name == "data_dir":
        return Path(str(raw))
    if not isinstance(raw, str):
        raise ConfigError(f"{setting}: expected a string, got {raw!r}")
    value = raw.strip()
    if name == "redis_url":
        return value or None
    if name in ("public_url", "libretranslate_url", "deepl_url"):
        return value.rstrip("/") or None
    if name in ("libretranslate_api_key", "deepl_api_key"):
        return value or None
    if name == "log_level":
        return value.upper()
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _check(settings: Settings) -> None:
    if settings.mode not in ("dev", "production"):
        raise ConfigError(f"FAIRWIRE_MODE: must be 'dev' or 'production', got {settings.mode!r}")
    if not settings.host or any(ch.isspace() or ch in "/:@" for ch in settings.host.strip("[]")):
        if not _is_ip(settings.host):
            raise ConfigError(f"FAIRWIRE_HOST: {settings.host!r} is not a host name or address")
    if not settings.api_key:
        raise ConfigError("FAIRWIRE_API_KEY: must not be empty")
    if not settings.jwt_secret:
        raise ConfigError("FAIRWIRE_JWT_SECRET: must not be empty")
    if settings.redis_url is not None:
        scheme = urlparse(settings.redis_url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"FAIRWIRE_REDIS_URL: expected redis://, rediss:// or unix://, "
                f"got {settings.redis_url!r}"
            )
    if settings.public_url is not None:
        parsed = urlparse(settings.public_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"FAIRWIRE_PUBLIC_URL: not an http(s) URL: {settings.public_url!r}")
    if settings.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"FAIRWIRE_LOG_LEVEL: unknown level {settings.log_level!r}")
    try:
        ipaddress.IPv4Address(settings.media_host)
    except ValueError:
        raise ConfigError(
            f"FAIRWIRE_MEDIA_HOST: {settings.media_host!r} is not an IPv4 address") from None
    for translator in settings.translators:
        if translator not in TRANSLATORS:
            raise ConfigError(f"FAIRWIRE_TRANSLATORS: unknown translator {translator!r} "
                              f"(known: {', '.join(TRANSLATORS)})")
    if "libretranslate" in settings.translators and not settings.libretranslate_url:
        raise ConfigError("FAIRWIRE_LIBRETRANSLATE_URL: needed for the libretranslate translator")
    if "deepl" in settings.translators and not settings.deepl_api_key:
        raise ConfigError("FAIRWIRE_DEEPL_API_KEY: needed for the deepl translator")
    for name in ("libretranslate_url", "deepl_url"):
        url = getattr(settings, name)
        if url is not None and urlparse(url).scheme not in ("http", "https"):
            raise ConfigError(f"FAIRWIRE_{name.upper()}: not an http(s) URL: {url!r}")
    if settings.glossary is not None and not settings.glossary.is_file():
        raise ConfigError(f"FAIRWIRE_GLOSSARY: no such file: {settings.glossary}")
    for server in settings.ice_servers:
        if not server.startswith(("stun:", "turn:", "turns:")):
            raise ConfigError(f"FAIRWIRE_ICE_SERVERS: not a stun:/turn: URL: {server!r}")
    if settings.mode == "production":
        if settings.jwt_secret == DEFAULT_JWT_SECRET:
            raise ConfigError("FAIRWIRE_JWT_SECRET: production mode refuses the default secret")
        if len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"FAIRWIRE_JWT_SECRET: production mode needs at least {MIN_SECRET_BYTES} bytes"
            )
        if settings.api_key == DEFAULT_API_KEY:
            raise ConfigError("FAIRWIRE_API_KEY: production mode refuses the default API key")
        if len(settings.api_key) < 16:
            raise ConfigError("FAIRWIRE_API_KEY: production mode needs at least 16 characters")


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from defaults, the TOML file at ``path`` (or ``FAIRWIRE_CONFIG``) and
    the environment. Raises :class:`ConfigError` with one line naming the bad setting."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}

    file_path = path if path is not None else env.get(f"{ENV_PREFIX}CONFIG") or None
    if file_path is not None:
        try:
            with open(file_path, "rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"FAIRWIRE_CONFIG: no such file: {file_path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"FAIRWIRE_CONFIG: {file_path} is not valid TOML: {exc}") from None
        section = document.get("fairwire", document)
        for key, raw in section.items():
            if key not in _FIELDS:
                raise ConfigError(f"FAIRWIRE_CONFIG: unknown setting {key!r} in {file_path}")
            values[key] = _coerce(key, raw)

    for key in _FIELDS:
        raw_env = env.get(f"{ENV_PREFIX}{key.upper()}")
        if raw_env is not None:
            values[key] = _coerce(key, raw_env)

    settings = Settings(**values)  # type: ignore[arg-type]
    if not settings.host:
        settings = dataclasses.replace(
            settings, host="127.0.0.1" if settings.mode == "dev" else "0.0.0.0")
    if not settings.node_id:
        settings = dataclasses.replace(settings, node_id=f"{os.uname().nodename}-{settings.port}")
    _check(settings)
    return settings
