"""Durations on the command line: `90`, `2s`, `500ms`, `5m`, `1h30m`."""

from __future__ import annotations

import re

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
