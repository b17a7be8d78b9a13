"""Settings, each with the environment variable that sets it. One table, read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

STORE_ENV = "AGENTTRACE_STORE"
TOKEN_ENV = "AGENTTRACE_TOKEN"
"""The bearer token `agenttrace serve` requires, when no --token is given."""
"""Where the store lives. Default `./.agenttrace`."""

FLUSH_INTERVAL_ENV = "AGENTTRACE_FLUSH_INTERVAL"
"""Seconds between spool flushes (and the batch processor's schedule delay). Default 0.5.
A crash of the traced process loses at most the spans ended in the last interval."""

MAX_ATTRIBUTE_BYTES_ENV = "AGENTTRACE_MAX_ATTRIBUTE_BYTES"
"""Largest tool argument, tool result or message payload the API records, in bytes. Default 65536."""

MAX_ARTIFACT_BYTES_ENV = "AGENTTRACE_MAX_ARTIFACT_BYTES"
"""Largest evidence or deliverable file copied into the artifact store, in bytes. Default 100 MiB;
a larger file is hashed and recorded, not copied."""

DEFAULT_STORE = ".agenttrace"
DEFAULT_FLUSH_INTERVAL = 0.5
DEFAULT_MAX_ATTRIBUTE_BYTES = 64 * 1024
DEFAULT_MAX_ARTIFACT_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    store: Path
    flush_interval: float
    max_attribute_bytes: int
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:
        raise ConfigError(f"{name} must be between 0 and 3600 seconds, got {raw!r}")
    return value


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def store_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The store directory: the explicit value, else $AGENTTRACE_STORE, else ./.agenttrace."""
    raw = explicit if explicit is not None else os.environ.get(STORE_ENV) or DEFAULT_STORE
    return Path(raw).expanduser().absolute()


def load(
    store: str | os.PathLike[str] | None = None,
    flush_interval: float | None = None,
    max_attribute_bytes: int | None = None,
) -> Settings:
    """Settings from explicit values, then the environment, then defaults. Raises ConfigError."""
    if flush_interval is None:
        raw = os.environ.get(FLUSH_INTERVAL_ENV)
        flush_interval = _positive_float(FLUSH_INTERVAL_ENV, raw) if raw else DEFAULT_FLUSH_INTERVAL
    elif not 0 < flush_interval <= 3600:
        raise ConfigError(f"flush_interval must be between 0 and 3600 seconds, got {flush_interval!r}")
    if max_attribute_bytes is None:
        raw = os.environ.get(MAX_ATTRIBUTE_BYTES_ENV)
        max_attribute_bytes = (
            _positive_int(MAX_ATTRIBUTE_BYTES_ENV, raw) if raw else DEFAULT_MAX_ATTRIBUTE_BYTES
        )
    raw = os.environ.get(MAX_ARTIFACT_BYTES_ENV)
    max_artifact_bytes = _positive_int(MAX_ARTIFACT_BYTES_ENV, raw) if raw else DEFAULT_MAX_ARTIFACT_BYTES
    return Settings(store_path(store), flush_interval, max_attribute_bytes, max_artifact_bytes)
