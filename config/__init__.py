"""Typed settings for a Fairwire node: :func:`load_config` is the one way to get them."""

from config.settings import (
    DEFAULT_API_KEY,
    DEFAULT_JWT_SECRET,
    ConfigError,
    Settings,
    load_config,
)

__all__ = ["DEFAULT_API_KEY", "DEFAULT_JWT_SECRET", "ConfigError", "Settings", "load_config"]
