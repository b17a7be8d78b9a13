"""The process tree as spans: the watcher reports each process of the agent's tree as it starts,
execs and ends, and each becomes a `process` span (source `watcher`) under its parent process's."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from .. import constants
from ..capture.redact import redact_argv
from .watcher import Proc, ProcessWatcher

DECLARED_TRACE_ID = "agenttrace.process.traceparent.trace_id"
DECLARED_SPAN_ID = "agenttrace.process.traceparent.span_id"
"""The span named by the TRACEPARENT a process was exec'd with, where it is not its parent's."""


@dataclass
class Orphan:
    pid: int
    argv: list[str]
    age_s: float
    span_id: str | None
    """The span of the process that started it (its parent process), if known."""
    killed: bool = False


class ProcessSpans:
    """The watcher's callbacks: one span per process, ended with its exit code or signal."""

    def __init__(
        self,
        tracer: trace.Tracer,
        run_id: str,
        root: Span,
        lookup: Callable[[int], Proc | None],
        signal_name: Callable[[int], str],
    ) -> None:
        self._tracer = tracer
        self._run_id = run_id
        self._root = root
        self._lookup = lookup
        self._signal_name = signal_name

    def span_of(self, pid: int) -> Span | None:
        """The span of a process the watcher knows (the one that started another, say)."""
        proc = self._lookup(pid)
        return proc.handle if proc is not None and isinstance(proc.handle, Span) else None

    @staticmethod
    def program(proc: Proc) -> dict[str, str | list[str]]:
        """What a process runs, as span attributes (secrets redacted); changes at exec. With the span
        its TRACEPARENT names, where that is not its parent's (see `ProcessWatcher._declare`): the
        reports draw it there; its parent stays the process that started it."""
        argv = redact_argv(proc.argv)
        attributes: dict[str, str | list[str]] = {
            "process.executable.name": proc.name,
            "process.command_line": shlex.join(argv),
            "process.command_args": argv,
        }
        if proc.declared is not None:
            trace_id, _, span_id = proc.declared.partition("-")
            attributes[DECLARED_TRACE_ID] = trace_id
            attributes[DECLARED_SPAN_ID] = span_id
        return attributes

    def started(self, proc: Proc) -> None:
        parent_span = self.span_of(proc.ppid) or self._root
        proc.handle = self._tracer.start_span(
            f"process {proc.name}",
            context=trace.set_span_in_context(parent_span) if parent_span else otel_context.Context(),
            start_time=proc.start_ns,
            attributes={
                constants.RUN_ID: self._run_id,
                constants.SPAN_TYPE: "process",
                "agenttrace.process.source": "watcher",
                "process.pid": proc.pid,
                "process.parent_pid": proc.ppid,
                **self.program(proc),
            },
        )

    def exec(self, proc: Proc) -> None:
        span = proc.handle
        if isinstance(span, Span):
            span.update_name(f"process {proc.name}")
            attributes = self.program(proc)
            if proc.declared is None and (getattr(span, "attributes", None) or {}).get(DECLARED_SPAN_ID):
                attributes |= {DECLARED_TRACE_ID: "", DECLARED_SPAN_ID: ""}  # its new program has none
            span.set_attributes(attributes)

    def ended(self, proc: Proc) -> None:
        span = proc.handle
        if not isinstance(span, Span):
            return
        if proc.exit_code is not None:
            span.set_attribute("process.exit.code", proc.exit_code)
            if proc.exit_code != 0:
                span.set_status(Status(StatusCode.ERROR, f"exit code {proc.exit_code}"))
        if proc.signal is not None:
            span.set_attribute("agenttrace.process.signal", str(proc.signal))
            span.set_status(Status(StatusCode.ERROR, f"killed by signal {self._signal_name(proc.signal)}"))
        span.set_attribute("agenttrace.process.exit_known", proc.exit_known)
        span.end(end_time=proc.end_ns)

    def orphans(self, watcher: ProcessWatcher) -> list[Orphan]:
        """The processes still alive when the agent's root process exited, marked so on their spans."""
        now = time.time_ns()
        found = []
        for proc in watcher.alive():
            span = proc.handle
            if isinstance(span, Span):
                span.set_attribute("agenttrace.process.alive_at_exit", True)
                span.set_attribute("agenttrace.process.age_at_exit_s", round((now - proc.start_ns) / 1e9, 3))
            parent_span = self.span_of(proc.ppid)
            span_id = f"{parent_span.get_span_context().span_id:016x}" if parent_span is not None else None
            found.append(Orphan(proc.pid, proc.argv, (now - proc.start_ns) / 1e9, span_id))
        return found

    def still_running(self, proc: Proc) -> None:
        """End the span of a process left running (`--on-orphans fail`): the record says so."""
        span = proc.handle
        if isinstance(span, Span):
            span.set_attribute("agenttrace.process.still_running", True)
            span.set_status(Status(StatusCode.ERROR, "still running when the supervisor exited"))
            span.end()


__all__ = ["Orphan", "ProcessSpans"]
