"""SpanSink: the one place in a process where spans for a store are turned into records and written.

The exporter (end records) and the pending-span processor (start records) share one sink per
store. Nothing here raises into the traced program: failures are logged once, then counted.

Spans are converted to Arrow on the caller's thread (the batch processor's worker), which frees
the SDK's span objects at once; the writing is done by the sink's own thread. File I/O gives up
the GIL and then waits to get it back, for up to the interpreter's switch interval while the
traced program keeps it busy, so I/O on the converting thread would let the batch processor's
queue (and the garbage collector's work) pile up under load.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
from opentelemetry.sdk.trace import ReadableSpan

from ..errors import AgentTraceError
from ..store.layout import SAMPLES, SPANS, StoreLayout
from ..store.schema import END, START
from ..store.writer import PartWritten, StoreWriter
from .records import spans_to_batch

log = logging.getLogger("agenttrace")

MAX_PENDING = 100_000
"""Open spans waiting for the next flush to write their start records; beyond this, spans get only
their end record (counted in `dropped_pending`)."""
MAX_QUEUED_ROWS = 262_144
"""Converted records waiting for the writer thread; beyond this, `write` waits for it."""


class SpanSink:
    """Writes start and end records of one store; shared by every exporter and processor for it."""

    def __init__(self, store: Path, flush_interval: float) -> None:
        self.layout = StoreLayout(store)
        self.flush_interval = flush_interval
        self.exported = 0
        self.failed_batches = 0
        self.dropped_pending = 0
        self.dropped_spans = 0
        """Ended spans a StoreBatchSpanProcessor dropped because its queue was full."""
        self._dropped_reported = 0
        self._failed_reported = 0
        self.first_error: str | None = None
        self.part_listeners: list[Callable[[PartWritten], None]] = []
        """Told of every Parquet part the sink's writer writes (`agenttrace run`'s manifest)."""
        self._init_state()

    def _init_state(self) -> None:
        self._open: dict[int, ReadableSpan] = {}  # by id(span.context), which the ended span shares
        self._write_lock = threading.Lock()  # the StoreWriter
        self._cond = threading.Condition()  # the queue of converted batches
        self._queue: deque[tuple[pa.RecordBatch | pa.Table, str]] = deque()  # (records, kind)
        self._queued_rows = 0
        self._busy = False
        self._writer: StoreWriter | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._unsynced = False
        self._drain_lock = threading.Lock()  # one drainer of _open at a time

    # -- hot path -------------------------------------------------------------------------------
    def add_start(self, span: ReadableSpan) -> None:
        """Note a span that just started: if it is still open at the next flush, its start record
        is written then. Cheap (it runs on the program's thread at every span start): one dict
        insertion, atomic under the GIL, so no lock; holds the span no longer than it is open."""
        opened = self._open
        if len(opened) >= MAX_PENDING:
            self.dropped_pending += 1
            return
        opened[id(span.context)] = span
        if self._thread is None:
            self._start_thread()

    def add_end(self, span: ReadableSpan) -> None:
        """A span ended before its start record was written: its end record will say it all. (The
        SDK's ended span shares its context object with the span that started.)"""
        self._open.pop(id(span.context), None)

    # -- converting -----------------------------------------------------------------------------
    def write(self, spans: Sequence[ReadableSpan]) -> bool:
        """Convert end records for `spans`, plus start records of spans still open, and queue them
        for the writer thread (waiting if it is far behind). Never raises."""
        try:
            batches: list[pa.RecordBatch] = []
            started = self._drain_pending()
            if started:
                batches.append(spans_to_batch(started, START))
            if spans:
                batches.append(spans_to_batch(spans, END))
            if batches:
                self._enqueue(batches)
            self.exported += len(spans)
            return True
        except Exception as exc:
            self._fail(exc)
            return False

    def _drain_pending(self) -> list[ReadableSpan]:
        """Open spans noted since the last drain, each once. The dict is copied and then emptied of
        what was copied one key at a time (not swapped for a new one), so a span noted or ended by
        another thread meanwhile is neither lost nor written twice."""
        opened = self._open
        if not opened:
            return []
        with self._drain_lock:
            noted = list(opened.items())  # one C call: atomic under the GIL
            for key, _ in noted:
                opened.pop(key, None)
        return [span for _, span in noted if span.end_time is None]

    def add_samples(self, table: pa.Table) -> bool:
        """Queue metric data points (`SAMPLE_SCHEMA` rows, e.g. the GPU sampler's) for the writer
        thread, with the same crash safety as spans. Never raises."""
        try:
            self._enqueue([table], SAMPLES)
            return True
        except Exception as exc:
            self._fail(exc)
            return False

    def _enqueue(self, batches: list[pa.RecordBatch] | list[pa.Table], kind: str = SPANS) -> None:
        if self._thread is None:
            self._start_thread()
        rows = sum(batch.num_rows for batch in batches)
        with self._cond:
            while self._queued_rows and self._queued_rows + rows > MAX_QUEUED_ROWS:
                self._cond.wait(self.flush_interval)
            self._queue.extend((batch, kind) for batch in batches)
            self._queued_rows += rows
            self._cond.notify_all()

    def flush(self) -> bool:
        """Queue start records of open spans, then wait until everything queued is written.
        Returns False if the store could not take something since the sink was created."""
        self.write(())
        self._drain_queue()
        return self.failed_batches == 0

    def wait_written(self) -> None:
        """Wait until everything queued so far is written."""
        self._drain_queue()

    def _drain_queue(self) -> None:
        """Wait for the writer thread to write everything queued (or write it here if it is gone)."""
        with self._cond:
            while self._queue or self._busy:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    break
                self._cond.wait(0.05)
        if self._queue:
            self._write_queued()

    # -- writing (the writer thread, or a flush when it is gone) ---------------------------------
    def _write_queued(self) -> bool:
        with self._cond:
            if not self._queue:
                return False
            batches = list(self._queue)
            self._queue.clear()
            self._busy = True
        try:
            with self._write_lock:
                if self._writer is None:
                    self._writer = StoreWriter(self.layout, on_part=self._part_written)
                for batch, kind in batches:
                    # In the kernel now (a crash of this process loses nothing); fsynced within
                    # one flush interval (for a crash of the machine).
                    self._writer.append(batch, sync=False, kind=kind)
                self._unsynced = True
        except Exception as exc:
            self._fail(exc)
        finally:
            with self._cond:
                self._busy = False
                self._queued_rows -= sum(batch.num_rows for batch, _ in batches)
                self._cond.notify_all()
        return True

    def _part_written(self, part: PartWritten) -> None:
        for listener in list(self.part_listeners):
            listener(part)

    def sync(self) -> None:
        """fsync what was written since the last sync. Never raises."""
        try:
            with self._write_lock:
                if self._writer is not None and self._unsynced:
                    self._unsynced = False
                    self._writer.sync()
        except Exception as exc:
            self._fail(exc)

    def seal_run(self, run_id: str) -> None:
        """Turn a finished run's spool into a Parquet part now. Never raises."""
        self._drain_queue()
        try:
            with self._write_lock:
                if self._writer is not None:
                    self._writer.seal_run(run_id)
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        """Flush, seal the spool into Parquet, stop the writer thread. The sink reopens if used
        again."""
        self.flush()
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._drain_queue()
        try:
            with self._write_lock:
                if self._writer is not None:
                    writer, self._writer = self._writer, None
                    writer.close()
        except Exception as exc:
            self._fail(exc)
        with self._cond:
            self._stopped = False
            self._thread = None
        if self.dropped_spans > self._dropped_reported:
            log.warning(
                "agenttrace: %d span(s) were dropped before reaching %s: the batch processor's queue "
                "was full",
                self.dropped_spans - self._dropped_reported,
                self.layout.root,
            )
            self._dropped_reported = self.dropped_spans
        if self.failed_batches > self._failed_reported:  # each loss said once, not again at exit
            log.warning(
                "agenttrace: %d span batch(es) could not be stored in %s (first error: %s)",
                self.failed_batches - self._failed_reported,
                self.layout.root,
                self.first_error,
            )
            self._failed_reported = self.failed_batches

    def _fail(self, exc: BaseException) -> None:
        self.failed_batches += 1
        if self.first_error is None:
            self.first_error = str(exc) if isinstance(exc, AgentTraceError) else repr(exc)
            log.warning(
                "agenttrace: cannot store spans in %s: %s. The program keeps running; "
                "further failures are counted, not logged.",
                self.layout.root,
                self.first_error,
            )

    # -- the writer thread ----------------------------------------------------------------------
    def _start_thread(self) -> None:
        with _registry_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="agenttrace-writer", daemon=True)
            self._thread = thread
            thread.start()

    def _run(self) -> None:
        next_tick = time.monotonic() + self.flush_interval
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    remaining = next_tick - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                stopped = self._stopped
            self._write_queued()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.flush_interval
                if self._open:  # spans still open: write their start records
                    self.write(())
                    self._write_queued()
                if self._unsynced:
                    self.sync()
            if stopped:
                return

    def _after_fork(self) -> None:
        if self._writer is not None:
            self._writer.abandon()
            _abandoned.append(self._writer)  # the parent owns its files; never touch them here
        self.part_listeners = []
        self._init_state()


_registry_lock = threading.Lock()
_sinks: dict[Path, SpanSink] = {}
_abandoned: list[StoreWriter] = []


def sink_for(store: Path, flush_interval: float) -> SpanSink:
    """The process-wide sink for a store directory."""
    key = Path(os.path.abspath(store))
    with _registry_lock:
        sink = _sinks.get(key)
        if sink is None:
            sink = _sinks[key] = SpanSink(key, flush_interval)
        return sink


def _close_all() -> None:
    for sink in list(_sinks.values()):
        sink.close()


def _reset_after_fork() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for sink in _sinks.values():
        sink._after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_reset_after_fork)
