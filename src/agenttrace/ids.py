"""Run ids: sortable, human-friendly, safe as a directory name."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def new_run_id(now: datetime | None = None) -> str:
    """A new run id such as `20261124T153012-3f9a`: UTC start time, then 4 random hex digits."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def is_safe_run_id(value: str) -> bool:
    """Whether a run id can name a store directory (no separators, no dot-dot, at most 128 chars)."""
    return bool(_SAFE.match(value)) and ".." not in value
