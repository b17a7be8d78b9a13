"""Plain values for JSON and CSV, and short human forms for tables and trees."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-ready form: datetimes as ISO 8601 UTC, intervals as seconds, maps as objects."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_json(records: Any) -> str:
    return json.dumps(plain(records), indent=2, ensure_ascii=False)


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                "" if v is None else json.dumps(plain(v)) if isinstance(v, dict | list) else plain(v)
                for v in row
            ]
        )
    return out.getvalue()


def duration(seconds: float | None) -> str:
    """`850 ms`, `12.3 s`, `4m 05s`, `2h 03m`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1000:.2f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def moment(value: datetime | None, utc_suffix: bool = True) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if utc_suffix else "")


def clock(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%H:%M:%S.%f")[:-3]


def size(n: float | None) -> str:
    """`512 B`, `4.0 KiB`, `1.0 GiB`, `140.4 GiB`; `-` when unknown."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def percent(fraction: float | None) -> str:
    """A fraction 0..1 as `60%`; `-` when unknown."""
    return "-" if fraction is None else f"{fraction * 100:.0f}%"
