"""Write a sealed run's derived tables (`store.derived`): its views, computed once from its parts.

`derive_run` is what `agenttrace run`'s supervisor calls once the verdict is in the store (and
what the in-process `audit_and_record` calls; `bench/audit_latency.py` calls it for the runs it
writes). It never raises: derived tables are a cache, and a run without them is read as before.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..store.derived import (
    EMPTY,
    PARTITION,
    TABLE_SUFFIX,
    DerivedEntry,
    derived_names,
    new_batch_dir,
    place_run,
    spool_has_records,
    started_key,
    views_digest,
)
from ..store.files import run_parts
from ..store.layout import StoreLayout
from ..store.manifest import Manifest, relative
from .sandbox import sql_literal

log = logging.getLogger(__name__)


def derive_run(
    store: Path | StoreLayout, run_id: str, manifest: Manifest | None = None
) -> DerivedEntry | None:
    """Compute the run's views and write them as its derived tables. `manifest`: the supervisor's
    own (complete) manifest of the run; its parts are verified against it and the tables computed
    from the verified bytes. Returns what was written (for the manifest's `derived` entry), or
    None when the run is not sealed, its records differ from its manifest, or writing failed."""
    return derive_runs(store, [run_id], {run_id: manifest} if manifest is not None else None).get(run_id)


def derive_runs(
    store: Path | StoreLayout, run_ids: list[str], manifests: dict[str, Manifest] | None = None
) -> dict[str, DerivedEntry]:
    """`derive_run` for several runs at once, over one computation of the views (they are per
    run: each run's rows are the same whichever other runs are computed with it). Returns the
    entries written, by run. Never raises."""
    layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
    try:
        return _derive(layout, run_ids, manifests)
    except Exception as exc:  # a cache: never the reason a run or a command fails
        log.debug("runs %s: derived tables not written: %s", run_ids[:3], exc, exc_info=True)
        return {}


def _derive(
    layout: StoreLayout, run_ids: list[str], manifests: dict[str, Manifest] | None
) -> dict[str, DerivedEntry]:
    from .database import Database

    sealed = [r for r in run_ids if not spool_has_records(layout, r)]
    if not sealed:
        return {}
    parts = {r: sorted(relative(layout, p) for p in run_parts(layout, r)) for r in sealed}
    batch = new_batch_dir(layout)
    try:
        with Database(layout, runs=sealed, verify=manifests is not None, manifests=manifests) as db:
            if db.warnings:  # a corrupt part: leave these runs to the views
                log.debug("not derived: %s", db.warnings[0])
                return {}
            db.materialize()
            starts = {r["run_id"]: r["started"] for r in db.report("run_starts")}
            troubled = {run for run, _reason, _part in db.problems} | set(db.snapshot.live_runs)
            chosen = [r for r in sealed if r not in troubled and r in starts]
            if not chosen:
                return {}
            with_run = {r["table_name"] for r in db.report("views_with_run_id")}
            per_run = [n for n in derived_names() if n in with_run]
            if len(chosen) == 1:  # the supervisor's case: a file per view, straight
                (batch / f"{PARTITION}={chosen[0]}").mkdir(mode=0o700)
                for name in per_run:
                    db.export(
                        f"SELECT * FROM {name} WHERE run_id = {sql_literal(chosen[0])}",
                        batch / f"{PARTITION}={chosen[0]}" / f"{name}_0{TABLE_SUFFIX}",
                    )
            runs_list = "[" + ", ".join(sql_literal(r) for r in chosen) + "]"
            for name in per_run if len(chosen) > 1 else []:  # a statement per view, a file per run
                db.export(f"SELECT * FROM {name} WHERE false", batch / f"{EMPTY}{name}{TABLE_SUFFIX}")
                db.export(
                    f"SELECT *, run_id AS {PARTITION} FROM {name} WHERE list_contains({runs_list}, run_id)",
                    batch,
                    partition=name,
                )
            if db.problems or db.warnings:  # a part turned out corrupt while computing
                return {}
        done: dict[str, DerivedEntry] = {}
        for run_id in chosen:
            if sorted(relative(layout, p) for p in run_parts(layout, run_id)) != parts[run_id]:
                continue  # a part arrived meanwhile: the tables may miss it
            # A supervised run's tables count only through its manifest's entry: no stamp, so that
            # a run whose manifest is gone (read as one without a supervisor) is computed from
            # its parts.
            entry = DerivedEntry(
                views=views_digest(), started=started_key(starts[run_id]), parts=parts[run_id]
            )
            stamp = not (manifests and run_id in manifests)
            if place_run(layout, batch, run_id, per_run, entry, stamp=stamp):
                done[run_id] = entry
        return done
    finally:
        shutil.rmtree(batch, ignore_errors=True)


__all__ = ["derive_run", "derive_runs"]
