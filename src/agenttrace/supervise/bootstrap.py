"""Zero-code instrumentation of a Python agent under `agenttrace run`, set up when there is something
to record (the sitecustomize in `agenttrace/_bootstrap`, which the supervisor puts first on
PYTHONPATH, calls in here at the first import of a library to instrument, of the OpenTelemetry API,
or at the first process the program starts; `http_hook` at its first model-API request).

It does what `opentelemetry-instrument` does, pointed at the supervisor: an SDK TracerProvider
whose spans go over OTLP/HTTP to the supervisor's receiver (`child_export`), start records of the
spans still open every flush interval, the run's TRACEPARENT attached as the current context,
every subprocess traced exactly (pid, argv, exit code, duration; its TRACEPARENT handed on), each
GenAI library's instrumentor turned on when the program imports the library (`instrumentors`: the
list the supervisor handed down), and model-API calls over plain HTTP (`http_hook`: urllib,
requests) recorded as spans. Spans still queued are sent when the process exits. Nothing here
raises into the program.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Any

from . import instrumentors as _instrumentors
from .instrumentors import GENAI_INSTRUMENTORS, LIBRARY_OF, PREFERENCE, TRIGGERS, genai_instrumentors

log = logging.getLogger(__name__)

RUN_ID_ENV = "AGENTTRACE_RUN_ID"
ACTIVATION_WAIT_S = 10.0
"""How long a process started, or a model call, waits for another thread setting tracing up."""

_lock = threading.RLock()
"""Held while tracing is set up (which imports): never waited for from an import hook."""
_state = "off"
"""off -> activating -> on | failed."""
_root: Any = None
"""The context of the run's TRACEPARENT: the parent of this process's spans that have no other."""
_table_lock = threading.Lock()
"""Guards the two tables below; held for no import."""
_candidates: dict[str, list[_instrumentors.Instrumentor]] | None = None
_waiting: list[str] = []
"""Modules imported while another thread was setting tracing up: instrumented once it is."""


def active() -> bool:
    """Whether this process's spans go to the run (tracing is set up)."""
    return _state == "on"


def activate(wait: float = ACTIVATION_WAIT_S) -> bool:
    """Set up tracing for the run in the environment, once: the SDK TracerProvider, its exporter to
    the receiver, the pending-span processor, the run's TRACEPARENT as the current context, and
    subprocess tracing if `subprocess` is imported. True when it is (or already was) set up. Waits
    at most `wait` seconds for another thread doing it (0 from an import hook: that thread sees to
    what this one imported)."""
    global _state
    if _state == "on":
        return True
    acquired = _lock.acquire(timeout=wait) if wait > 0 else _lock.acquire(blocking=False)
    if not acquired:
        return False
    try:
        if _state != "off":
            return _state == "on"  # done, failed, or this very thread is setting it up (an import)
        _state = "activating"
        try:
            ok = _set_up()
        except Exception as exc:  # telemetry never breaks the program
            log.debug("agenttrace: tracing not set up: %s", exc)
            ok = False
        _state = "on" if ok else "failed"
    finally:
        _lock.release()
    if ok:
        if "subprocess" in sys.modules:
            _step(_trace_subprocesses)
        for module in _take_waiting():
            _instrument(module)
    return ok


def _set_up() -> bool:
    global _root
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not os.environ.get(RUN_ID_ENV) or not endpoint:
        return False
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from .. import config
    from .child_export import OtlpHttpExporter, OtlpPendingProcessor

    settings = config.load()
    exporter = OtlpHttpExporter(endpoint.rstrip("/") + "/v1/traces")
    provider = TracerProvider(resource=Resource.create({}))  # OTEL_RESOURCE_ATTRIBUTES: the run id
    provider.add_span_processor(OtlpPendingProcessor(exporter, settings.flush_interval))
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            schedule_delay_millis=settings.flush_interval * 1000,
            max_queue_size=65_536,
            max_export_batch_size=4096,
        )
    )
    # configure() (agenttrace.run() in the agent) then does nothing: everything goes to the receiver
    provider._agenttrace_supervised = True  # type: ignore[attr-defined]
    trace.set_tracer_provider(provider)
    traceparent = os.environ.get("TRACEPARENT")
    if traceparent:
        _root = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        otel_context.attach(_root)
    return True


def parent_context() -> Any:
    """The context a span of the bootstrap's own starts in: the current one, or the run's root when
    the current one has no span (a thread other than the one that set tracing up)."""
    from opentelemetry import trace

    if _root is not None and not trace.get_current_span().get_span_context().is_valid:
        return _root
    return None


def _step(step: Any) -> None:
    try:
        step()
    except Exception as exc:  # the rest of the instrumentation still stands
        log.debug("agenttrace: bootstrap step %s failed: %s", getattr(step, "__name__", step), exc)


def _take_waiting() -> list[str]:
    with _table_lock:
        waiting = list(_waiting)
        _waiting.clear()
    return waiting


# -- what the sitecustomize calls -----------------------------------------------------------------


def on_import(module: str) -> None:
    """`module` (a GenAI library's trigger module, or `opentelemetry`) was just imported: set up
    tracing and turn on the instrumentor of every library the module triggers."""
    if not activate(wait=0):
        if _state in ("activating", "off"):  # another thread is setting up: it instruments this too
            with _table_lock:
                _waiting.append(module)
            if _state == "on":  # it finished meanwhile
                for waiting in _take_waiting():
                    _instrument(waiting)
        return
    _instrument(module)


def trace_subprocesses() -> None:
    """The program starts its first process: set up tracing, and wrap subprocess.Popen."""
    if activate():
        _step(_trace_subprocesses)


# -- GenAI instrumentors, enabled when their library is first imported ---------------------------


def _instrument(module: str) -> None:
    """Turn on, once, the instrumentor of every library this module triggers: the first of each
    library's candidates that turns on (the rest are never loaded). Taking a library's candidates
    out of the table is atomic, so two threads importing it never both do it."""
    global _candidates
    if _candidates is None:
        try:
            found = _instrumentors.handed_down()
        except Exception as exc:
            log.debug("agenttrace: no GenAI instrumentors: %s", exc)
            found = {}
        with _table_lock:
            if _candidates is None:
                _candidates = found
    with _table_lock:
        libraries = [lib for lib in _candidates if module in TRIGGERS.get(lib, (lib,))]
        todo = [(lib, _candidates.pop(lib)) for lib in libraries]
    for library, candidates in todo:
        for instrumentor in candidates:
            try:
                instance = instrumentor.load()()
                instance.instrument()
            except Exception as exc:  # a library version it does not support: try the next
                log.debug("agenttrace: %s not enabled: %s", instrumentor.distribution, exc)
                continue
            # BaseInstrumentor declines a library version it does not support without raising
            if getattr(instance, "is_instrumented_by_opentelemetry", True):
                log.debug("agenttrace: %s instrumented by %s", library, instrumentor.distribution)
                break


# -- subprocesses -------------------------------------------------------------------------------
_SPAN = "_agenttrace_span"


def _argv(args: Any, shell: bool) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
        return ["/bin/sh", "-c", text] if shell else [text]
    return [os.fsdecode(a) for a in args]


def _trace_subprocesses() -> None:
    """Wrap subprocess.Popen: a `process` span from spawn to the moment its exit status is read."""
    import shlex
    import subprocess

    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from .. import constants
    from ..capture.redact import redact_argv

    popen = subprocess.Popen
    if getattr(popen, "_agenttrace_wrapped", False):
        return
    hook = next((n for n in ("_handle_exitstatus", "_handle_exitcode") if hasattr(popen, n)), None)
    if hook is None:  # an interpreter whose Popen differs: the watcher still sees its processes
        return
    # the sitecustomize's stub, when the first process is still to come: what it stands for
    original_init = getattr(popen.__init__, "_agenttrace_original", popen.__init__)
    original_handle = getattr(popen, hook)
    tracer = trace.get_tracer("agenttrace")
    propagator = TraceContextTextMapPropagator()

    def __init__(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        span: Span | None = None
        if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
            original_init(self, args, *rest, **kwargs)
            return
        try:
            argv = _argv(args, bool(kwargs.get("shell")))
            executable = os.path.basename(os.fsdecode(kwargs.get("executable") or argv[0])) if argv else "?"
            span = tracer.start_span(
                f"process {executable}",
                context=parent_context(),
                attributes={
                    constants.SPAN_TYPE: "process",
                    "agenttrace.process.source": "python",
                    "process.executable.name": executable,
                    "process.command_line": shlex.join(redact_argv(argv)),
                    "process.command_args": redact_argv(argv),
                    "process.parent_pid": os.getpid(),
                },
            )
            carrier: dict[str, str] = {}
            propagator.inject(carrier, context=trace.set_span_in_context(span))
            env = kwargs.get("env")
            kwargs["env"] = {**(os.environ if env is None else env), "TRACEPARENT": carrier["traceparent"]}
        except Exception:  # never break the spawn
            span = None
        try:
            original_init(self, args, *rest, **kwargs)
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                if isinstance(exc, FileNotFoundError):
                    span.set_attribute("process.exit.code", 127)
                span.end()
            raise
        if span is not None:
            span.set_attribute("process.pid", self.pid)
            setattr(self, _SPAN, span)

    def _handle_exitcode(self: subprocess.Popen[Any], sts: int, *a: Any, **k: Any) -> None:
        original_handle(self, sts, *a, **k)
        span = getattr(self, _SPAN, None)
        if span is None:
            return
        with contextlib.suppress(Exception):
            delattr(self, _SPAN)
            code = self.returncode
            if code is not None and code < 0:
                span.set_attribute("agenttrace.process.signal", str(-code))
                span.set_status(Status(StatusCode.ERROR, f"killed by signal {-code}"))
            elif code is not None:
                span.set_attribute("process.exit.code", code)
                if code != 0:
                    span.set_status(Status(StatusCode.ERROR, f"exit code {code}"))
            span.end()

    popen.__init__ = __init__  # type: ignore[method-assign]
    setattr(popen, hook, _handle_exitcode)
    popen._agenttrace_wrapped = True  # type: ignore[attr-defined]


__all__ = [
    "GENAI_INSTRUMENTORS",
    "LIBRARY_OF",
    "PREFERENCE",
    "TRIGGERS",
    "activate",
    "active",
    "genai_instrumentors",
    "on_import",
    "parent_context",
    "trace_subprocesses",
]
