"""SpanSink: the one place in a process where spans for a store are turned into records and written.

The exporter (end records) and the pending-span processor (start records) share one sink per
store. Nothing here raises into the traced program: failures are logged once, then counted.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from opentelemetry.sdk.trace import ReadableSpan

from .errors import AgentTraceError
from .records import spans_to_batch
from .store.layout import StoreLayout
from .store.schema import END, START
from .store.writer import StoreWriter

log = logging.getLogger("agenttrace")

MAX_PENDING = 100_000
"""Start records waiting for the next flush; beyond this they are dropped (and counted)."""


class SpanSink:
    """Writes start and end records of one store; shared by every exporter and processor for it."""

    def __init__(self, store: Path, flush_interval: float) -> None:
        self.layout = StoreLayout(store)
        self.flush_interval = flush_interval
        self.exported = 0
        self.failed_batches = 0
        self.dropped_pending = 0
        self.first_error: str | None = None
        self._init_state()

    def _init_state(self) -> None:
        self._pending: deque[ReadableSpan] = deque()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._writer: StoreWriter | None = None
        self._flusher: threading.Thread | None = None
        self._stopped = False

    # -- hot path -------------------------------------------------------------------------------
    def add_start(self, span: ReadableSpan) -> None:
        """Queue a start record for a span that just started (cheap; written at the next flush)."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped_pending += 1
            return
        self._pending.append(span)
        if self._flusher is None:
            self._start_flusher()

    # -- writing --------------------------------------------------------------------------------
    def write(self, spans: Sequence[ReadableSpan]) -> bool:
        """Write end records for `spans`, plus queued start records. Never raises."""
        try:
            with self._write_lock:
                batches: list[pa.RecordBatch] = []
                started = self._drain_pending()
                if started:
                    batches.append(spans_to_batch(started, START))
                if spans:
                    batches.append(spans_to_batch(spans, END))
                if not batches:
                    return True
                table = pa.Table.from_batches(batches)
                if self._writer is None:
                    self._writer = StoreWriter(self.layout)
                self._writer.append(table)
                self.exported += len(spans)
            return True
        except Exception as exc:
            self._fail(exc)
            return False

    def _drain_pending(self) -> list[ReadableSpan]:
        started = []
        pending = self._pending
        while pending:
            span = pending.popleft()
            if span.end_time is None:  # ended spans get their end record instead
                started.append(span)
        return started

    def flush(self) -> bool:
        return self.write(())

    def seal_run(self, run_id: str) -> None:
        """Turn a finished run's spool into a Parquet part now. Never raises."""
        try:
            with self._write_lock:
                if self._writer is not None:
                    self._writer.seal_run(run_id)
        except Exception as exc:
            self._fail(exc)

    def close(self) -> None:
        """Flush, seal the spool into Parquet, stop the flusher. The sink reopens if used again."""
        self._stopped = True
        self._wake.set()
        self.flush()
        try:
            with self._write_lock:
                if self._writer is not None:
                    writer, self._writer = self._writer, None
                    writer.close()
        except Exception as exc:
            self._fail(exc)
        self._stopped = False
        self._flusher = None
        if self.failed_batches:
            log.warning(
                "agenttrace: %d span batch(es) could not be stored in %s (first error: %s)",
                self.failed_batches,
                self.layout.root,
                self.first_error,
            )

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

    # -- background flusher ---------------------------------------------------------------------
    def _start_flusher(self) -> None:
        with _registry_lock:
            if self._flusher is not None:
                return
            thread = threading.Thread(target=self._flush_loop, name="agenttrace-flush", daemon=True)
            self._flusher = thread
            thread.start()

    def _flush_loop(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_interval)
            if self._stopped:
                return
            if self._pending:
                self.flush()

    def _after_fork(self) -> None:
        if self._writer is not None:
            self._writer.abandon()
            _abandoned.append(self._writer)  # the parent owns its files; never touch them here
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
