"""StoreWriter: appends Arrow record batches to a store, durably, from many threads and processes.

Records are of one of the store's kinds (`layout.KINDS`: spans, the default; OTLP log records;
metric data points), each with its schema (`schema.KIND_SCHEMAS`), its own spool folder and its own
Parquet parts: `append(batch, kind=LOGS)`. Everything below holds for every kind, and the bounds are
shared: a run with spans and logs open holds two spools, and `max_open_runs` counts spools.

Each append is split by `RunId` and written to that run's spool segment before `append` returns
(it then survives a crash of the process); it is fsynced then too, or with `sync=False` at the
next `sync()` (it then survives a crash of the machine). A segment that grows past `seal_rows` or
`seal_bytes` is sealed: its records are written as an immutable Parquet part (tmp, fsync, rename)
and then the segment is removed. `close` seals everything. Writers never share a file, so
concurrent writers cannot clobber each other: every time a writer opens a run's spool it takes a
fresh spool id (`<writer id>.<generation>`) for its lock and segment names.

Bounds, whatever the number of runs clients open: at most `max_open_runs` runs have a spool open
at once (DEFAULT_MAX_OPEN_RUNS = 256, fewer when the soft RLIMIT_NOFILE is low: see
`default_max_open_runs`). An open run holds two descriptors (its lock and its segment) and a few
KB of memory. Opening one more run seals the least recently written one first: the writer itself
writes its segment into a Parquet part, releases it and forgets the run (a later record of it
opens a fresh spool). One thread at a time does such sealing, so that a flood of new runs costs
about one core and appends to open runs go on beside it. So this writer holds at most
2 x `max_open_runs` descriptors, plus one per thread that is sealing or fsyncing at that moment.
A live writer never leaves a segment of its own for readers to recover: a seal that fails keeps
the spool (and its lock) and is retried at the next `sync()`, `seal_run()` or `close()`; when every
open run waits for such a retry, `append` refuses new runs with StoreError rather than open more
files.

`on_part` is told of every Parquet part this writer writes (`PartWritten`), with the sha256 of the
exact bytes written, and whether a spool segment read back at seal time was not what this writer
wrote (`tampered`): each segment then keeps a running sha256 of everything written to it (hashed
outside the writer's lock). That costs about as much CPU as the rest of an append, so a writer
without `on_part` compares only sizes at seal time (a segment found changed is still quarantined,
with a warning).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import resource
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from ..errors import StoreError
from ..ids import is_safe_run_id
from .batches import conform, split_by_run
from .layout import SPANS, StoreLayout
from .parts import PartWritten, put_part
from .run_spool import RunSpool
from .schema import KIND_SCHEMAS
from .spool import DIR_MODE, FILE_MODE, SpoolSegment, parse_segment

log = logging.getLogger("agenttrace")

DEFAULT_SEAL_ROWS = 200_000
DEFAULT_SEAL_BYTES = 128 << 20
DEFAULT_MAX_OPEN_RUNS = 256
"""Runs with an open spool (two descriptors each) before the least recently written is sealed."""
MIN_OPEN_RUNS = 4
OPEN_RUN_WAIT_S = 10.0
"""How long an append waits for a spool slot while every open run is being sealed by others."""


def default_max_open_runs() -> int:
    """DEFAULT_MAX_OPEN_RUNS, or fewer so that open spools use at most a quarter of the soft
    RLIMIT_NOFILE (the process needs its descriptors for other things too)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_OPEN_RUNS
    return max(MIN_OPEN_RUNS, min(DEFAULT_MAX_OPEN_RUNS, soft // 8))


_Key = tuple[str, str]
"""(kind, run id): one spool."""


class StoreWriter:
    """Durable, append-only writer of records (spans by default) into one store."""

    def __init__(
        self,
        layout: StoreLayout,
        *,
        seal_rows: int = DEFAULT_SEAL_ROWS,
        seal_bytes: int = DEFAULT_SEAL_BYTES,
        max_open_runs: int | None = None,
        on_part: Callable[[PartWritten], None] | None = None,
    ) -> None:
        layout.require_writable()
        self.layout = layout
        self.writer_id = f"w{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.seal_rows = seal_rows
        self.seal_bytes = seal_bytes
        self.max_open_runs = max(1, max_open_runs) if max_open_runs else default_max_open_runs()
        self.on_part = on_part
        self.records_written = 0
        self.evicted = 0
        """Runs sealed early because `max_open_runs` were open."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a spool was released
        self._evicting = threading.Lock()
        self._runs: OrderedDict[_Key, RunSpool] = OrderedDict()  # least recently written first
        self._held = 0  # spools holding files: in _runs, in _retry, or being sealed by a thread
        self._retry: list[RunSpool] = []  # taken out of _runs, seal failed, lock still held
        self._generation = itertools.count(1)
        self._unsynced: set[RunSpool] = set()
        self._closed = False

    # -- appending ----------------------------------------------------------------------------------
    def append(self, data: pa.RecordBatch | pa.Table, *, sync: bool = True, kind: str = SPANS) -> None:
        """Append records of `kind` (its schema: `schema.KIND_SCHEMAS`; columns it lacks are null):
        on return they survive a crash of this process, and with `sync` (the default) a crash of
        the machine; without it, after the next `sync()`. Raises StoreError."""
        if data.num_rows == 0:
            return
        schema = KIND_SCHEMAS.get(kind)
        if schema is None:
            raise StoreError(f"no such kind of record: {kind!r}")
        if data.schema != schema:
            data = conform(data, schema)
        groups = split_by_run(data)
        for run_id, _ in groups:
            if not is_safe_run_id(run_id):
                raise StoreError(f"run id {run_id!r} cannot name a store folder")
        written: list[tuple[RunSpool, SpoolSegment]] = []
        full: list[RunSpool] = []
        for run_id, rows in groups:
            spool, segment = self._write_run((kind, run_id), rows, sync)
            segment.digest_pending()  # outside the writer's lock: other appends go on meanwhile
            written.append((spool, segment))
            if segment.closed:  # rotated: past the seal size
                full.append(spool)
        if sync:
            for spool, segment in written:
                self._fsync(spool, segment)
        with self._lock:
            self.records_written += data.num_rows
        for spool in full:
            try:
                self._seal_closed(spool)
            except StoreError as exc:  # the records are in the spool: the seal is retried later
                log.warning("agenttrace: %s (retried later)", exc)

    def _write_run(
        self, key: _Key, rows: pa.RecordBatch | pa.Table, sync: bool
    ) -> tuple[RunSpool, SpoolSegment]:
        """Write one run's rows of one kind to its spool, opening one (and sealing the least
        recently written spool to make room) if needed. Returns the spool and the segment written to."""
        deadline = time.monotonic() + OPEN_RUN_WAIT_S
        while True:
            with self._lock:
                self._check_open()
                spool = self._runs.get(key)
                if spool is not None or self._held < self.max_open_runs:
                    return self._write_locked(key, spool, rows, sync)
            # Full. One thread at a time seals to make room: a flood of new runs then costs
            # about one core, and the appends of open runs (other clients) keep the other.
            with self._evicting:
                with self._lock:
                    self._check_open()
                    if key in self._runs or self._held < self.max_open_runs:
                        continue  # room was made meanwhile
                    victim = self._pop_victim()
                    if victim is None:
                        self._wait_for_slot(deadline)
                        continue
                self._retire(victim, raise_errors=False)  # outside the lock: appends go on

    def _write_locked(
        self, key: _Key, spool: RunSpool | None, rows: pa.RecordBatch | pa.Table, sync: bool
    ) -> tuple[RunSpool, SpoolSegment]:
        if spool is None:
            spool = self._open_spool(key)
        self._runs.move_to_end(key)
        segment = self._append_rows(spool, rows)
        if sync:
            self._unsynced.discard(spool)
        else:
            self._unsynced.add(spool)
        if segment.rows >= self.seal_rows or segment.nbytes >= self.seal_bytes:
            spool.rotate()
        return spool, segment

    def evictions_needed(self, run_ids: set[str] | list[str], kind: str = SPANS) -> int:
        """How many other runs appending records of these runs would seal to make room (a hint:
        other threads open and seal runs meanwhile)."""
        with self._lock:
            new = sum(1 for run_id in run_ids if (kind, run_id) not in self._runs)
            return max(0, min(new, self._held + new - self.max_open_runs))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("writer is closed")

    def _pop_victim(self) -> RunSpool | None:
        """Take the least recently written run out of `_runs` (under the lock), its segment
        finished, for the caller to seal; None when every held spool is already being sealed."""
        if not self._runs:
            return None
        _, spool = self._runs.popitem(last=False)
        self.evicted += 1
        self._unsynced.discard(spool)
        spool.rotate()
        return spool

    def _wait_for_slot(self, deadline: float) -> None:
        """Every spool slot is held by spools other threads are sealing, or by failed seals."""
        sealing = self._held - len(self._runs) - len(self._retry)
        remaining = deadline - time.monotonic()
        if sealing <= 0 or remaining <= 0:
            raise StoreError(
                f"cannot open another run: all {self.max_open_runs} open runs wait for a seal "
                "into Parquet that failed (is the disk full?)"
            )
        self._changed.wait(remaining)

    def _open_spool(self, key: _Key) -> RunSpool:
        kind, run_id = key
        spool_id = f"{self.writer_id}.{next(self._generation)}"
        try:
            spool = RunSpool(
                self.layout.spool_run_dir(run_id, kind), run_id, spool_id, self.on_part is not None, kind
            )
        except OSError as exc:
            raise StoreError(f"cannot open spool for run {run_id}: {exc.strerror or exc}") from exc
        self._runs[key] = spool
        self._held += 1
        return spool

    def _append_rows(self, spool: RunSpool, rows: pa.RecordBatch | pa.Table) -> SpoolSegment:
        """Write to the spool's segment; on failure set the segment aside (its complete batches
        are sealed later) and raise StoreError."""
        segment = spool.segment
        try:
            segment = spool.current()
            segment.append(rows)
        except (OSError, pa.ArrowException) as exc:
            if segment is not None:
                spool.discard(segment)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreError(f"cannot write spool in {spool.directory}: {reason}") from exc
        return segment

    # -- durability ----------------------------------------------------------------------------------
    def sync(self) -> None:
        """fsync what `append(..., sync=False)` wrote, and retry seals that failed. Raises
        StoreError.

        The fsyncs run outside the writer's lock, one duplicated descriptor at a time, so appends
        (the receiver's requests, the exporter's batches) are not held up behind the disk."""
        with self._lock:
            pending = list(self._unsynced)
            self._unsynced.clear()
        failure: StoreError | None = None
        for spool in pending:
            with self._lock:
                segment = spool.segment
            if segment is not None:
                try:
                    self._fsync(spool, segment)
                except StoreError as exc:
                    failure = failure or exc
        self._retry_failed()
        if failure is not None:
            raise failure

    def _fsync(self, spool: RunSpool, segment: SpoolSegment) -> None:
        """fsync one segment without holding the writer's lock. A segment finished meanwhile is
        fsynced by path; one already gone was sealed into a part, which was fsynced first."""
        try:
            with self._lock:
                fd = None if segment.closed else os.dup(segment.fileno())
            if fd is None:
                try:
                    fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    return
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with self._lock:
                if spool.segment is segment:
                    spool.discard(segment)
            raise StoreError(f"cannot write spool in {spool.directory}: {exc.strerror or exc}") from exc

    # -- sealing -------------------------------------------------------------------------------------
    def seal_run(self, run_id: str, kind: str | None = None) -> None:
        """Seal one run's spools (of every kind, or of `kind`) into Parquet and release them (the
        run is finished). Raises StoreError (the spool is then kept, and the seal retried at the
        next `sync()`).

        The Parquet part is written outside the writer's lock: appends to other runs go on, and a
        late record of this run opens a fresh spool of its own."""
        with self._lock:
            keys = [(kind, run_id)] if kind is not None else [(k, run_id) for k in KIND_SCHEMAS]
            spools = [s for s in (self._runs.pop(key, None) for key in keys) if s is not None]
            for spool in spools:
                self._unsynced.discard(spool)
                spool.rotate()
        failure: StoreError | None = None
        for spool in spools:
            try:
                self._retire(spool, raise_errors=True)
            except StoreError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def flush_parts(self) -> None:
        """Seal every open segment into Parquet now (the runs stay open). Raises StoreError."""
        with self._lock:
            spools = list(self._runs.values())
            for spool in spools:
                spool.rotate()
                self._unsynced.discard(spool)
        errors: list[StoreError] = []
        for spool in spools:
            try:
                self._seal_closed(spool)
            except StoreError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _retire(self, spool: RunSpool, *, raise_errors: bool) -> None:
        """Seal a spool taken out of `_runs` and release it; if the seal fails, keep it (its lock
        held: readers must not recover a live writer's segments) for a retry."""
        try:
            self._seal_closed(spool)
        except StoreError as exc:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._retry.append(spool)
            if not keep:  # the writer is going away: its segments are left for readers to recover
                self._release(spool, remove=False)
            if raise_errors:
                raise
            log.warning("agenttrace: %s (retried later)", exc)
            return
        self._release(spool)

    def _retry_failed(self) -> None:
        with self._lock:
            spools, self._retry = self._retry, []
        for spool in spools:
            self._retire(spool, raise_errors=False)

    def _release(self, spool: RunSpool, *, remove: bool = True) -> None:
        try:
            spool.lock.release(remove=remove)
        finally:
            with self._lock:
                self._held -= 1
                self._changed.notify_all()
                if remove and (spool.kind, spool.run_id) not in self._runs:
                    with contextlib.suppress(OSError):
                        spool.directory.rmdir()  # only once empty (other writers may use it)
                        if spool.kind != SPANS:  # the run's folder, once no kind is left in it
                            spool.directory.parent.rmdir()

    def _seal_closed(self, spool: RunSpool) -> None:
        """Write the spool's finished segments as one part and remove them. Raises StoreError (the
        segments then stay queued on the spool)."""
        with spool.seal_mutex:
            with self._lock:
                segments = list(spool.closed)
            if not segments:
                return
            event = self._seal_segments(spool, segments)
            with self._lock:
                spool.closed = [s for s in spool.closed if s not in segments]
        if event is not None:
            self._notify(event)

    def _seal_segments(self, spool: RunSpool, segments: list[SpoolSegment]) -> PartWritten | None:
        run_id, schema = spool.run_id, spool.schema
        tables: list[pa.Table] = []
        problems: list[str] = []
        tampered: list[SpoolSegment] = []
        for segment in segments:
            try:
                data = segment.path.read_bytes()
            except FileNotFoundError:
                problems.append(f"spool segment {segment.path} is gone")
                continue
            except OSError as exc:
                raise StoreError(f"cannot read spool segment {segment.path}: {exc.strerror or exc}") from exc
            problem = segment.check(data)
            intact = (
                problem is not None
                and len(data) > segment.nbytes
                and not segment.check(data[: segment.nbytes])
            )
            if intact:  # bytes added after what this writer wrote: its own records are whole
                data = data[: segment.nbytes]
            read = parse_segment(data, schema)
            if problem is None and read.problem is not None:  # cannot happen unless Arrow changed
                problem = f"spool segment {segment.path}: {read.problem}"
            if problem is not None:
                problems.append(problem)
                tampered.append(segment)
                if not intact:  # changed within: none of its records are kept (forged, or garbled:
                    continue  # Arrow does not check that strings are UTF-8)
            tables.append(read.table)
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        event = None
        # A part even of no rows when something was wrong: the report of it must reach on_part.
        if table.num_rows or problems:
            part = put_part(table, self.layout.partition_dir(spool.kind, run_id))
            event = PartWritten(
                run_id, part.path, part.sha256, table.num_rows, "; ".join(problems) or None, spool.kind
            )
        for segment in segments:
            if segment in tampered:
                self._quarantine(run_id, segment.path)
            else:
                segment.path.unlink(missing_ok=True)
        return event

    def _quarantine(self, run_id: str, path: Path) -> None:
        """Keep a segment that is not what this writer wrote, for a person to look at."""
        target = self.layout.quarantine_dir / run_id / path.name
        try:
            self.layout.quarantine_dir.mkdir(mode=DIR_MODE, exist_ok=True)
            target.parent.mkdir(mode=DIR_MODE, exist_ok=True)
            os.replace(path, target)
            os.chmod(target, FILE_MODE)
        except OSError as exc:
            log.warning("agenttrace: cannot quarantine %s (%s); removing it", path, exc.strerror or exc)
            path.unlink(missing_ok=True)
            return
        log.warning("agenttrace: spool segment %s was changed by someone else; kept in %s", path, target)

    def _notify(self, event: PartWritten) -> None:
        if self.on_part is None:
            return
        try:
            self.on_part(event)
        except Exception:  # the hook's failure must not fail the write that already happened
            log.exception("agenttrace: on_part callback failed for %s", event.path)

    # -- closing -------------------------------------------------------------------------------------
    def close(self, timeout: float = 30.0) -> None:
        """Seal everything into Parquet and release the spool. Safe to call twice. Waits (up to
        `timeout`) for seals other threads have under way. Raises StoreError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            spools = list(self._runs.values())
            self._runs.clear()
            self._unsynced.clear()
            for spool in spools:
                spool.rotate()
            spools += self._retry
            self._retry = []
        errors: list[StoreError] = []
        for spool in spools:
            try:
                self._seal_closed(spool)
            except StoreError as exc:  # the segment stays in the spool; readers recover it
                errors.append(exc)
                self._release(spool, remove=False)
                continue
            self._release(spool)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._held > 0 and (remaining := deadline - time.monotonic()) > 0:
                self._changed.wait(remaining)
        if errors:
            raise errors[0]

    def abandon(self) -> None:
        """Forget everything without writing (in a forked child: the parent owns these files)."""
        self._runs = OrderedDict()
        self._retry = []
        self._closed = True

    @property
    def open_runs(self) -> int:
        """Spools holding files right now (open, being sealed, or waiting for a seal retry)."""
        return self._held
