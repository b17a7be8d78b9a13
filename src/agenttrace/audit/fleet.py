"""Many runs audited over one database (`agenttrace audit --all`): each run with its own gate set
(the one it recorded, as `agenttrace audit RUN` uses), the views computed once for all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import QueryError, StoreError
from .gates import audit_gates
from .verdict import Verdict, audit


def audit_many(
    db: Any,
    run_ids: Sequence[str],
    gates_dir: Path | None,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Verdict], list[tuple[str, str]]]:
    """(verdicts, (run, error) for each run that could not be audited), in `run_ids` order."""
    verdicts: list[Verdict] = []
    errors: list[tuple[str, str]] = []
    if not run_ids:
        return verdicts, errors
    db.materialize()
    recorded = {row["run_id"]: row["recorded_gates"] for row in db.report("recorded_gates_all")}
    for done, run_id in enumerate(run_ids, 1):
        try:
            verdicts.append(audit(db, run_id, audit_gates(recorded.get(run_id), gates_dir)))
        except (QueryError, StoreError) as exc:  # this run only (a broken gate, a ConfigError, stops all)
            errors.append((run_id, str(exc)))
        if progress is not None:
            progress(done)
    return verdicts, errors
