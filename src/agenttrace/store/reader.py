"""A consistent view of what a store holds: finished parts, live spool records, and live writers.

Readers never see a half-written part (parts appear by rename), ignore `.tmp` leftovers, and skip
a corrupt part with a warning that names it. Segments whose writer died are recovered into a
Parquet part on the way (best effort: a read-only store is read as it is); only a dead writer's:
a live writer's lock is always held (it appears by rename already locked), and a live writer seals
its own segments. Recovery can race with another reader and store a record twice; the `spans` view
keeps one row per span, so that is safe. A segment that vanishes while it is read was sealed by its
writer meanwhile: its records are in a part listed after the spool is read. Files recovery creates
(parts, quarantined segments) are 0600, folders 0700.

Each kind of record (spans, log records, metric data points) has its own parts folder and its own
spool folder (`layout.spool_run_dir`), read with its own schema: a segment is never read as
another kind's.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ..errors import StoreError
from .layout import LOGS, SAMPLES, SPANS, StoreLayout
from .parts import list_parts, part_problem, write_part
from .schema import KIND_SCHEMAS, LOG_SCHEMA, SAMPLE_SCHEMA, SPAN_SCHEMA
from .spool import (
    DIR_MODE,
    FILE_MODE,
    LOCK_SUFFIX,
    SEGMENT_SUFFIX,
    read_segment,
    try_claim,
    writer_alive,
    writer_id_of,
)

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    span_parts: list[Path] = field(default_factory=list)
    sample_parts: list[Path] = field(default_factory=list)
    spool_spans: pa.Table = field(default_factory=SPAN_SCHEMA.empty_table)
    live_runs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    log_parts: list[Path] = field(default_factory=list)
    spool_logs: pa.Table = field(default_factory=LOG_SCHEMA.empty_table)
    spool_samples: pa.Table = field(default_factory=SAMPLE_SCHEMA.empty_table)

    def parts(self, kind: str) -> list[Path]:
        """The parts of one kind (`spans`, `logs`, `samples`)."""
        return {SPANS: self.span_parts, LOGS: self.log_parts, SAMPLES: self.sample_parts}[kind]

    def spool(self, kind: str) -> pa.Table:
        """The spool records of one kind."""
        return {SPANS: self.spool_spans, LOGS: self.spool_logs, SAMPLES: self.spool_samples}[kind]

    def set_spool(self, kind: str, table: pa.Table) -> None:
        setattr(self, {SPANS: "spool_spans", LOGS: "spool_logs", SAMPLES: "spool_samples"}[kind], table)


def run_ids(layout: StoreLayout) -> list[str]:
    """Every run id with parts or spool records, sorted."""
    return layout.run_ids()


def snapshot(layout: StoreLayout, runs: list[str] | None = None, *, recover: bool = True) -> Snapshot:
    """Everything needed to query `runs` (all runs when None). Raises StoreError if unreadable."""
    layout.require_readable()
    snap = Snapshot()
    spool_tables: dict[str, list[pa.Table]] = {kind: [] for kind in KIND_SCHEMAS}
    spool_runs = runs if runs is not None else _spool_run_dirs(layout)
    for run_id in spool_runs:
        if not layout.spool_run_dir(run_id).is_dir():
            continue
        live = False
        for kind in (LOGS, SAMPLES, SPANS):  # spans last: their folder holds the other kinds'
            directory = layout.spool_run_dir(run_id, kind)
            if directory.is_dir() and _read_run_spool(
                layout, directory, run_id, kind, spool_tables[kind], snap.warnings, recover
            ):
                live = True
        if live:
            snap.live_runs.append(run_id)
    for kind in KIND_SCHEMAS:
        target = snap.parts(kind)
        for part in list_parts(layout.root / kind, runs):
            problem = part_problem(part)
            if problem is None:
                target.append(part)
            else:
                snap.warnings.append(f"skipped corrupt part {part}: {problem}")
    if spool_tables[SPANS]:
        snap.spool_spans = pa.concat_tables(spool_tables[SPANS])
    if spool_tables[LOGS]:
        snap.spool_logs = pa.concat_tables(spool_tables[LOGS])
    if spool_tables[SAMPLES]:
        snap.spool_samples = pa.concat_tables(spool_tables[SAMPLES])
    return snap


def _spool_run_dirs(layout: StoreLayout) -> list[str]:
    if not layout.spool_dir.is_dir():
        return []
    return sorted(p.name for p in layout.spool_dir.iterdir() if p.is_dir())


def _read_run_spool(
    layout: StoreLayout,
    directory: Path,
    run_id: str,
    kind: str,
    tables: list[pa.Table],
    warnings: list[str],
    recover: bool,
) -> bool:
    """Read one run's spool of one kind; recover dead writers' segments. Returns whether a live
    writer holds it."""
    schema = KIND_SCHEMAS[kind]
    try:
        segments = sorted(p for p in directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX))
        entries = list(directory.iterdir())
        locks = [p for p in entries if p.name.endswith(LOCK_SUFFIX)]
    except OSError as exc:
        raise StoreError(f"cannot read spool {directory}: {exc.strerror or exc}") from exc
    by_writer: dict[str, list[Path]] = {}
    for seg in segments:
        by_writer.setdefault(writer_id_of(seg), []).append(seg)
    live_writers = {lock.name[: -len(LOCK_SUFFIX)] for lock in locks if writer_alive(lock)}
    for writer_id, segs in by_writer.items():
        if (
            writer_id in live_writers
            or not recover
            or not _recover(layout, run_id, kind, writer_id, segs, warnings)
        ):
            for seg in segs:
                read = read_segment(seg, schema)
                if read.missing:  # sealed by its writer meanwhile: in a part, listed later
                    continue
                if read.problem:
                    warnings.append(f"skipped spool segment {seg}: {read.problem}")
                tables.append(read.table)
    if recover:
        for lock in locks:
            writer_id = lock.name[: -len(LOCK_SUFFIX)]
            if writer_id not in live_writers and writer_id not in by_writer:
                with contextlib.suppress(OSError):
                    lock.unlink()
        for leftover in entries:  # a lock a writer died taking, before renaming it into place
            name = leftover.name
            if name.startswith(".") and name.endswith(".tmp") and not writer_alive(leftover):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()  # only succeeds once empty
    return bool(live_writers)


def _recover(
    layout: StoreLayout, run_id: str, kind: str, writer_id: str, segments: list[Path], warnings: list[str]
) -> bool:
    """Turn a dead writer's segments into one Parquet part. False if not possible right now.
    A segment that cannot be read at all is moved to the quarantine folder, never deleted."""
    schema = KIND_SCHEMAS[kind]
    directory = layout.spool_run_dir(run_id, kind)
    lock_path = directory / f"{writer_id}{LOCK_SUFFIX}"
    if not os.access(directory, os.W_OK):
        return False
    fd = try_claim(lock_path)
    if fd is None:
        return False
    try:
        tables = []
        unreadable = []
        for seg in segments:
            read = read_segment(seg, schema)
            if read.problem:
                unreadable.append((seg, read.problem))
            tables.append(read.table)
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        if table.num_rows:
            write_part(table, layout.partition_dir(kind, run_id))
        for seg, problem in unreadable:
            target = layout.quarantine_dir / run_id / seg.name
            layout.quarantine_dir.mkdir(mode=DIR_MODE, exist_ok=True)
            target.parent.mkdir(mode=DIR_MODE, exist_ok=True)
            os.replace(seg, target)
            os.chmod(target, FILE_MODE)  # a dead writer of an older version may have made it 0644
            warnings.append(f"moved unreadable spool segment {seg} to {target}: {problem}")
        for seg in segments:
            seg.unlink(missing_ok=True)
        lock_path.unlink(missing_ok=True)
    except (OSError, StoreError) as exc:
        log.warning("agenttrace: could not recover spool of run %s: %s", run_id, exc)
        return False
    finally:
        os.close(fd)
    return True
