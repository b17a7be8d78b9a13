"""The OpenTelemetry side: `ParquetSpanExporter` and `PendingSpanProcessor`.

    provider.add_span_processor(PendingSpanProcessor())                        # start records
    provider.add_span_processor(BatchSpanProcessor(ParquetSpanExporter()))     # end records

The exporter is registered as the `opentelemetry_traces_exporter` entry point `agenttrace`, so
`OTEL_TRACES_EXPORTER=agenttrace opentelemetry-instrument python app.py` stores spans too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import active_runs, config
from .constants import RUN_ID
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

    @property
    def store(self) -> str:
        return str(self._sink.layout.root)

    def retarget(self, store: str | os.PathLike[str], flush_interval: float | None = None) -> None:
        """Send spans exported from now on to another store."""
        self._sink = _sink(store, flush_interval)

    @property
    def failed_batches(self) -> int:
        return self._sink.failed_batches

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self._sink.write(spans) else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._sink.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._sink.flush()


class PendingSpanProcessor(SpanProcessor):
    """Writes a `start` record for every span when it starts, so a span that never ends (the
    process crashed, hung or was killed) is still visible. Also tags spans of runs started in this
    process with `agenttrace.run.id`. `on_start` only appends to a queue; it never blocks or raises.
    """

    def __init__(self, store: str | os.PathLike[str] | None = None, *, flush_interval: float | None = None):
        self._sink = _sink(store, flush_interval)

    def retarget(self, store: str | os.PathLike[str], flush_interval: float | None = None) -> None:
        """Write start records of spans started from now on to another store."""
        self._sink = _sink(store, flush_interval)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            ctx = span.context
            if ctx is not None and active_runs._TRACE_RUNS and RUN_ID not in (span.attributes or {}):
                run_id = active_runs.run_for_trace(ctx.trace_id)
                if run_id is not None:
                    span.set_attribute(RUN_ID, run_id)
            self._sink.add_start(span)
        except Exception as exc:  # telemetry never breaks the program it observes
            self._sink._fail(exc)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        self._sink.flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._sink.flush()
