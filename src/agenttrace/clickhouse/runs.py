"""Runs in a ClickHouse database: which there are, and which one a RUN argument names."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import queries
from ..analysis.resolve import LAST
from ..errors import AmbiguousRunError, QueryError, RunNotFoundError
from .database import SETTINGS, first_line
from .translate import VARIANTS

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def run_ids(client: Any, since: dt.datetime | None = None) -> list[tuple[str, dt.datetime]]:
    """(run id, first record's time) of every run with a record since `since`, oldest first."""
    try:
        result = client.query(
            queries.load(f"{VARIANTS}/run_ids.sql"), parameters={"since": since or EPOCH}, settings=SETTINGS
        )
    except Exception as exc:
        hint = " (run `agenttrace clickhouse init --to ...` first?)" if "UNKNOWN_TABLE" in str(exc) else ""
        raise QueryError(f"ClickHouse: {first_line(exc)}{hint}") from exc
    return [(str(r[0]), r[1]) for r in result.result_rows]


def resolve_run(client: Any, ref: str, where: str) -> str:
    """The run `ref` (an id, a unique prefix, or `last`) names in the database."""
    known = run_ids(client)
    if not known:
        raise RunNotFoundError(f"no runs in {where}")
    if ref == LAST:
        return max(known, key=lambda r: (r[1], r[0]))[0]
    ids = [r for r, _ in known]
    if ref in ids:
        return ref
    matches = [r for r in ids if r.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no run matches {ref!r} in {where} (see `agenttrace runs --engine ...`)")
    shown = ", ".join(matches[:5]) + (f", and {len(matches) - 5} more" if len(matches) > 5 else "")
    raise AmbiguousRunError(f"run prefix {ref!r} matches {len(matches)} runs: {shown}")
