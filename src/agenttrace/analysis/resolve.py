"""Turn what a user typed as RUN (a full id, a unique prefix, or `last`) into a run id.

A prefix resolves from folder names. `last` resolves from the derived index (`store.derived`:
one empty file per sealed run, named by its start time) plus, for the few runs not in it (open
runs, runs sealed before derived tables existed), the `runs` view over those runs' own records:
never from a scan of every span in the store."""

from __future__ import annotations

from ..errors import AmbiguousRunError, RunNotFoundError
from ..store.derived import SUMMARY, indexed_starts, started_key, usable
from ..store.layout import StoreLayout

LAST = "last"


def resolve_run(layout: StoreLayout, ref: str) -> str:
    """The run id `ref` names. Raises RunNotFoundError or AmbiguousRunError."""
    layout.require_readable()
    known = layout.run_ids()
    if ref == LAST:
        found = last_run(layout, known)
        if found is None:
            raise RunNotFoundError(f"no runs in store {layout.root}")
        return found
    if ref in known:
        return ref
    matches = [r for r in known if r.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no run matches {ref!r} in store {layout.root} (see `agenttrace runs`)")
    shown = ", ".join(matches[:5]) + (f", and {len(matches) - 5} more" if len(matches) > 5 else "")
    raise AmbiguousRunError(f"run prefix {ref!r} matches {len(matches)} runs: {shown}")


def last_run(layout: StoreLayout, known: list[str]) -> str | None:
    """The run that started most recently (ties: the greatest id), or None in an empty store.

    The index's newest entry counts once its run's summary is verified (the supervisor's manifest
    lists its hash, or, for a run without one, its parts are those it was computed from) and says
    the same start: a name the agent wrote into the index cannot make another run `last`. Runs
    without a verified entry are computed from their own records."""
    if not known:
        return None
    present = set(known)
    indexed = indexed_starts(layout)
    rest = [r for r in known if r not in indexed]
    candidates: list[tuple[str, str]] = []
    for started, run_id in sorted(((s, r) for r, s in indexed.items() if r in present), reverse=True):
        found = usable(layout, run_id, tables=(SUMMARY,), same_views=False)
        if found is not None and found.entry.started == started:
            candidates.append((started, run_id))
            break
        rest.append(run_id)
    if rest:
        from .database import Database

        with Database(layout, runs=rest) as db:
            rows = db.report("last_run")
        if rows:
            candidates.append((started_key(rows[0]["started"]) or "", str(rows[0]["run_id"])))
    if not candidates:
        return None
    return max(candidates)[1]
