"""Durations on the command line: `90`, `2s`, `500ms`, `5m`, `1h30m`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ..errors import ConfigError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, what: str = "duration", allow_zero: bool = False) -> float:
    """Seconds in `text`. Raises ConfigError for anything that is not a positive duration (or
    zero, with `allow_zero`)."""
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
        position = 0
        total = 0.0
        for match in _PART.finditer(raw):
            if match.start() != position:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            position = match.end()
        if position == len(raw) and raw:
            seconds = total
    if allow_zero and seconds == 0:
        return 0.0
    if not 0 < seconds < float("inf"):
        kind = "a duration (0 or more)" if allow_zero else "a positive duration"
        raise ConfigError(f"{what} {text!r} is not {kind} such as 90, 30s, 500ms, 5m or 1h30m")
    return seconds


def parse_age(text: str, what: str = "--since") -> datetime:
    """The time `text` ago (`30m`, `12h`, `1d`, `2w`, or any duration `parse_duration` reads), or
    an ISO 8601 time (UTC unless it says otherwise). Raises ConfigError."""
    raw = text.strip().lower()
    for unit, seconds in (("d", 86400.0), ("w", 604800.0)):
        number = raw[: -len(unit)]
        if raw.endswith(unit) and number.replace(".", "", 1).isdigit() and float(number) > 0:
            return datetime.now(UTC) - timedelta(seconds=float(number) * seconds)
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text, what))
    except ConfigError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is neither an age such as 30m, 12h, 1d or 2w nor an ISO time"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
