"""Turn what a user typed as RUN (a full id, a unique prefix, or `last`) into a run id."""

from __future__ import annotations

from ..errors import AmbiguousRunError, RunNotFoundError
from ..store.layout import StoreLayout
from ..store.reader import run_ids
from .database import Database

LAST = "last"


def resolve_run(layout: StoreLayout, ref: str) -> str:
    """The run id `ref` names. Raises RunNotFoundError or AmbiguousRunError."""
    layout.require_readable()
    known = run_ids(layout)
    if ref == LAST:
        if not known:
            raise RunNotFoundError(f"no runs in store {layout.root}")
        with Database(layout) as db:
            rows = db.report("last_run")
        if not rows:
            raise RunNotFoundError(f"no runs in store {layout.root}")
        return str(rows[0]["run_id"])
    if ref in known:
        return ref
    matches = [r for r in known if r.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no run matches {ref!r} in store {layout.root} (see `agenttrace runs`)")
    shown = ", ".join(matches[:5]) + (f", and {len(matches) - 5} more" if len(matches) > 5 else "")
    raise AmbiguousRunError(f"run prefix {ref!r} matches {len(matches)} runs: {shown}")
