"""StoreWriter: appends Arrow record batches to a store, durably, from many threads and processes.

Each append is split by `RunId` and written to that run's spool segment before `append` returns
(it then survives a crash of the process); it is fsynced then too, or with `sync=False` at the
next `sync()` (it then survives a crash of the machine). A segment that grows past `seal_rows` or
`seal_bytes` is sealed: its records are written as an immutable Parquet part (tmp, fsync, rename)
and then the segment is removed. `close` seals everything. Writers never share a file, so
concurrent writers cannot clobber each other.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from pathlib import Path

import pyarrow as pa

from ..errors import StoreError
from ..ids import is_safe_run_id
from .layout import SPANS, StoreLayout
from .parts import write_part
from .schema import SPAN_SCHEMA
from .spool import LOCK_SUFFIX, SEGMENT_SUFFIX, SpoolSegment, WriterLock, read_segment

DEFAULT_SEAL_ROWS = 200_000
DEFAULT_SEAL_BYTES = 128 << 20


class _RunSpool:
    def __init__(self, directory: Path, writer_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.writer_id = writer_id
        self.lock = WriterLock(directory / f"{writer_id}{LOCK_SUFFIX}")
        self.seq = 0
        self.segment: SpoolSegment | None = None

    def current(self) -> SpoolSegment:
        if self.segment is None:
            self.seq += 1
            path = self.directory / f"{self.writer_id}-{self.seq:06d}{SEGMENT_SUFFIX}"
            self.segment = SpoolSegment(path, SPAN_SCHEMA)
        return self.segment


class StoreWriter:
    """Durable, append-only writer of span records into one store."""

    def __init__(
        self,
        layout: StoreLayout,
        *,
        seal_rows: int = DEFAULT_SEAL_ROWS,
        seal_bytes: int = DEFAULT_SEAL_BYTES,
    ) -> None:
        layout.require_writable()
        self.layout = layout
        self.writer_id = f"w{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.seal_rows = seal_rows
        self.seal_bytes = seal_bytes
        self.records_written = 0
        self._lock = threading.Lock()
        self._runs: dict[str, _RunSpool] = {}
        self._unsynced: set[str] = set()
        self._closed = False

    def append(self, data: pa.RecordBatch | pa.Table, *, sync: bool = True) -> None:
        """Append records (SPAN_SCHEMA): on return they survive a crash of this process, and with
        `sync` (the default) a crash of the machine; without it, after the next `sync()`.
        Raises StoreError."""
        if data.num_rows == 0:
            return
        if data.schema != SPAN_SCHEMA:
            data = (
                data.cast(SPAN_SCHEMA)
                if isinstance(data, pa.Table)
                else pa.Table.from_batches([data]).cast(SPAN_SCHEMA)
            )
        with self._lock:
            if self._closed:
                raise StoreError("writer is closed")
            touched: list[str] = []
            for run_id, rows in _split_by_run(data):
                if not is_safe_run_id(run_id):
                    raise StoreError(f"run id {run_id!r} cannot name a store folder")
                self._append_run(run_id, rows)
                if run_id not in touched:
                    touched.append(run_id)
            for run_id in touched:
                spool = self._runs[run_id]
                segment = spool.segment
                if segment is None:
                    continue
                if sync:
                    self._guard(spool, segment.sync)
                else:
                    self._unsynced.add(run_id)
                if segment.rows >= self.seal_rows or segment.nbytes >= self.seal_bytes:
                    self._seal(spool)
            self.records_written += data.num_rows

    def sync(self) -> None:
        """fsync what `append(..., sync=False)` wrote. Raises StoreError.

        The fsyncs run outside the writer's lock, on duplicated descriptors, so appends (the
        receiver's requests, the exporter's batches) are not held up behind the disk."""
        with self._lock:
            unsynced, self._unsynced = self._unsynced, set()
            pending = []
            for run_id in unsynced:
                spool = self._runs.get(run_id)
                if spool is not None and spool.segment is not None:
                    pending.append((spool, spool.segment, os.dup(spool.segment.fileno())))
        failure: StoreError | None = None
        for spool, segment, fd in pending:
            try:
                os.fsync(fd)
            except OSError as exc:
                with self._lock:
                    if spool.segment is segment:
                        segment.abandon()
                        spool.segment = None
                failure = failure or StoreError(f"cannot write spool in {spool.directory}: {exc.strerror}")
            finally:
                os.close(fd)
        if failure is not None:
            raise failure

    def _append_run(self, run_id: str, rows: pa.RecordBatch | pa.Table) -> None:
        spool = self._runs.get(run_id)
        if spool is None:
            try:
                spool = _RunSpool(self.layout.spool_run_dir(run_id), self.writer_id)
            except OSError as exc:
                raise StoreError(f"cannot open spool for run {run_id}: {exc.strerror or exc}") from exc
            self._runs[run_id] = spool
        segment = spool.current()
        self._guard(spool, lambda: segment.append(rows))

    def _guard(self, spool: _RunSpool, action: object) -> None:
        """Run a segment write; on failure abandon the segment (its complete batches stay readable)."""
        try:
            action()  # type: ignore[operator]
        except (OSError, pa.ArrowException) as exc:
            if spool.segment is not None:
                spool.segment.abandon()
                spool.segment = None
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreError(f"cannot write spool in {spool.directory}: {reason}") from exc

    def _seal(self, spool: _RunSpool) -> None:
        segment = spool.segment
        if segment is None:
            return
        spool.segment = None
        with contextlib.suppress(OSError, pa.ArrowException):
            segment.close()
        read = read_segment(segment.path, SPAN_SCHEMA)
        if read.table.num_rows:
            run_id = spool.directory.name
            write_part(read.table, self.layout.partition_dir(SPANS, run_id))
        segment.path.unlink(missing_ok=True)

    def seal_run(self, run_id: str) -> None:
        """Seal one run's spool into Parquet and release it (the run is finished). Raises StoreError.

        The Parquet part is written outside the writer's lock: appends to other runs go on."""
        with self._lock:
            spool = self._runs.pop(run_id, None)
            self._unsynced.discard(run_id)
        if spool is None:
            return
        try:
            self._seal(spool)
        except StoreError:
            spool.lock.release(remove=False)  # the segment stays; readers recover it
            raise
        spool.lock.release(remove=True)
        with self._lock:
            if run_id not in self._runs:  # a late span of this run may have opened it again
                with contextlib.suppress(OSError):
                    spool.directory.rmdir()

    def flush_parts(self) -> None:
        """Seal every open segment into Parquet now."""
        with self._lock:
            for spool in self._runs.values():
                self._seal(spool)

    def close(self) -> None:
        """Seal everything into Parquet and release the spool. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            errors: list[StoreError] = []
            for spool in self._runs.values():
                try:
                    self._seal(spool)
                except StoreError as exc:  # the segment stays in the spool; readers recover it
                    errors.append(exc)
                    spool.lock.release(remove=False)
                    continue
                spool.lock.release(remove=True)
                with contextlib.suppress(OSError):
                    spool.directory.rmdir()
            self._runs.clear()
            if errors:
                raise errors[0]

    def abandon(self) -> None:
        """Forget everything without writing (in a forked child: the parent owns these files)."""
        self._runs = {}
        self._closed = True


def _split_by_run(data: pa.RecordBatch | pa.Table) -> list[tuple[str, pa.RecordBatch | pa.Table]]:
    """Rows by run, as zero-copy slices where rows of a run are contiguous (the usual case).

    Done in Python rather than with Arrow compute kernels: each kernel call gives up the GIL and
    then waits to get it back, which is slow while the traced program keeps the GIL busy.
    """
    run_ids = data.column("RunId").to_pylist()
    first = run_ids[0]
    if all(r == first for r in run_ids):
        return [(first or "", data)]
    bounds = [i for i in range(1, len(run_ids)) if run_ids[i] != run_ids[i - 1]]
    if len(bounds) + 1 > 4 * len(set(run_ids)):  # interleaved runs: group them once
        order = sorted(range(len(run_ids)), key=run_ids.__getitem__)
        data = data.take(pa.array(order, pa.int64()))
        run_ids = [run_ids[i] for i in order]
        bounds = [i for i in range(1, len(run_ids)) if run_ids[i] != run_ids[i - 1]]
    starts = [0, *bounds]
    ends = [*bounds, len(run_ids)]
    return [(run_ids[a] or "", data.slice(a, b - a)) for a, b in zip(starts, ends, strict=True)]
