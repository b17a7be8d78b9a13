"""The OpenTelemetry side: `ParquetSpanExporter` and `PendingSpanProcessor`.

    provider.add_span_processor(PendingSpanProcessor())                        # start records
    provider.add_span_processor(BatchSpanProcessor(ParquetSpanExporter()))     # end records

The exporter is registered as the `opentelemetry_traces_exporter` entry point `agenttrace`, so
`OTEL_TRACES_EXPORTER=agenttrace opentelemetry-instrument python app.py` stores spans too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .. import config
from ..constants import RUN_ID, SPAN_TYPE
from . import active_runs
from .sink import SpanSink, sink_for


def _sink(store: str | os.PathLike[str] | None, flush_interval: float | None) -> SpanSink:
    settings = config.load(store, flush_interval)
    return sink_for(settings.store, settings.flush_interval)


class ParquetSpanExporter(SpanExporter):
    """Stores finished spans in an agenttrace store (default: $AGENTTRACE_STORE or ./.agenttrace).

    Use it with the SDK's BatchSpanProcessor. `export` never raises: a failure is logged once,
    counted in `failed_batches`, and reported as SpanExportResult.FAILURE.
    """

    def __init__(self, store: str | os.PathLike[str] | None = None, *, flush_interval: float | None = None):
        self._sink = _sink(store, flush_interval)
        self.wait_for_write = True

    @property
    def store(self) -> str:
        return str(self._sink.layout.root)

    def retarget(self, store: str | os.PathLike[str], flush_interval: float | None = None) -> None:
        """Send spans exported from now on to another store."""
        self._sink = _sink(store, flush_interval)

    @property
    def failed_batches(self) -> int:
        return self._sink.failed_batches

    @property
    def sink(self) -> SpanSink:
        return self._sink

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Store `spans`. Returns once they are written (in the kernel: a crash of this process
        loses none of them), unless a StoreBatchSpanProcessor drives this exporter: it lets the
        sink's thread write them and waits for that only in `force_flush` and `shutdown`."""
        if not self._sink.write(spans):
            return SpanExportResult.FAILURE
        if self.wait_for_write:
            self._sink.wait_written()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._sink.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._sink.flush()


class PendingSpanProcessor(SpanProcessor):
    """Writes a `start` record for every span when it starts, so a span that never ends (the
    process crashed, hung or was killed) is still visible. Also tags spans of runs started in this
    process with `agenttrace.run.id`. `on_start` only notes the span; it never blocks or raises.
    """

    def __init__(self, store: str | os.PathLike[str] | None = None, *, flush_interval: float | None = None):
        self._sink = _sink(store, flush_interval)

    def retarget(self, store: str | os.PathLike[str], flush_interval: float | None = None) -> None:
        """Write start records of spans started from now on to another store."""
        self._sink = _sink(store, flush_interval)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            if active_runs._TRACE_RUNS:
                self._tag_run(span)
            self._sink.add_start(span)
        except Exception as exc:  # telemetry never breaks the program it observes
            self._sink._fail(exc)

    def _tag_run(self, span: Span) -> None:
        ctx = span.context
        if ctx is not None and RUN_ID not in (span.attributes or {}):
            run_id = active_runs.run_for_trace(ctx.trace_id)
            if run_id is not None:
                span.set_attribute(RUN_ID, run_id)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._sink.add_end(span)
        except Exception as exc:  # telemetry never breaks the program it observes
            self._sink._fail(exc)

    def shutdown(self) -> None:
        self._sink.flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._sink.flush()


ROOM_WITHOUT_LOCK = 1024
"""While the batch processor's queue has more room than this, ending spans enqueue without taking a
lock: more threads than this would have to end spans at the same instant to overflow it."""


class StoreBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's BatchSpanProcessor, counting the spans it cannot take when its queue is full.

    Its exporter returns as soon as a batch is converted (the sink's thread writes it), which keeps
    this processor's queue short while the program is busy; `force_flush` and `shutdown` wait for
    the writing. When the queue is full, the span that just ended is dropped (the SDK would drop
    the oldest and log each one), unless it is a run's root span, which is written at once. Drops
    are counted in the sink's `dropped_spans`, which `agenttrace.run()` records on the run
    (`agenttrace.spans.dropped`) so the record says it is incomplete, and logged once at close.
    """

    def __init__(self, exporter: ParquetSpanExporter, **kwargs: float) -> None:
        super().__init__(exporter, **kwargs)  # type: ignore[arg-type]
        exporter.wait_for_write = False  # export() only converts; force_flush waits for the write
        self._store_exporter = exporter
        self._queue_max = int(kwargs.get("max_queue_size", 2048))
        self._enqueue_lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        if queue is None:  # an SDK whose internals differ: no counting, its own dropping
            super().on_end(span)
            return
        if len(queue) < self._queue_max - ROOM_WITHOUT_LOCK:  # the usual case: plenty of room
            super().on_end(span)
            return
        # Only the worker takes from the queue, so under this lock a queue with room keeps it.
        with self._enqueue_lock:
            if len(queue) < self._queue_max:
                super().on_end(span)
                return
        if (span.attributes or {}).get(SPAN_TYPE) == "run":  # a run's root span is never dropped
            self._store_exporter.export([span])
        else:
            self._store_exporter.sink.dropped_spans += 1

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        exported = super().force_flush(timeout_millis)
        return self._store_exporter.force_flush(timeout_millis) and exported
