"""Zero-code instrumentation of a Python agent under `agenttrace run` (loaded by the sitecustomize
in `agenttrace/_bootstrap`, which the supervisor puts first on PYTHONPATH).

It does what `opentelemetry-instrument` does, pointed at the supervisor: an SDK TracerProvider
whose spans go over OTLP/HTTP to the supervisor's receiver, the pending-span processor writing
start records straight into the store, the run's TRACEPARENT attached as the current context,
every subprocess traced exactly (pid, argv, exit code, duration; its TRACEPARENT handed on),
whatever GenAI instrumentors are installed turned on, and model-API calls over plain HTTP
(`http_hook`: urllib, requests) recorded as spans. It never raises into the program.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import shlex
import subprocess
import sys
import threading
from importlib import metadata
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .. import config, constants
from ..capture.redact import redact_argv
from . import http_hook

log = logging.getLogger(__name__)

RUN_ID_ENV = "AGENTTRACE_RUN_ID"
GENAI_INSTRUMENTORS = (
    "openai", "openai_v2", "openai_agents", "anthropic", "bedrock", "botocore", "cohere", "google_genai",
    "vertexai", "mistralai", "groq", "ollama", "langchain", "llama_index", "llamaindex", "crewai",
    "dspy", "haystack", "litellm", "smolagents", "autogen", "agno", "pydantic_ai", "mcp", "instructor",
    "together", "replicate", "transformers", "watsonx", "alephalpha", "sagemaker", "weaviate",
    "chromadb", "pinecone", "qdrant",
)  # fmt: skip
"""Entry-point names (group `opentelemetry_instrumentor`) of GenAI and agent-framework instrumentors."""

_installed = False


def install() -> bool:
    """Instrument this process for the run in the environment. False (and nothing done) when it
    is not running under `agenttrace run`, or is already instrumented."""
    global _installed
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if _installed or not os.environ.get(RUN_ID_ENV) or not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    settings = config.load()
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
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
        otel_context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    _installed = True
    for step in (_trace_subprocesses, _instrument_genai_on_import, http_hook.install):
        try:
            step()
        except Exception as exc:  # the rest of the instrumentation still stands
            log.debug("agenttrace: bootstrap step %s failed: %s", step.__name__, exc)
    return True


class OtlpPendingProcessor(SpanProcessor):
    """Start records over OTLP: every flush interval, spans still open are exported as they are
    (end time 0), which the supervisor's receiver stores as `start` records. So a span that never
    ends (the agent hung, crashed or was killed) is still in the run."""

    def __init__(self, exporter: SpanExporter, flush_interval: float) -> None:
        self._exporter = exporter
        self._interval = flush_interval
        self._open: dict[int, SdkSpan] = {}
        self._sent: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        with self._lock:
            self._open[span.context.span_id] = span  # type: ignore[union-attr]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agenttrace-pending", daemon=True)
                self._thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._open.pop(span.context.span_id, None)  # type: ignore[union-attr]

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                fresh = [s for sid, s in self._open.items() if sid not in self._sent]
                self._sent = {sid for sid in self._sent if sid in self._open} | {
                    s.context.span_id  # type: ignore[union-attr]
                    for s in fresh
                }
            if fresh:
                with contextlib.suppress(Exception):
                    self._exporter.export([s._readable_span() for s in fresh])  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        self._stop.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- GenAI instrumentors, enabled when their library is first imported ---------------------------
# Three tables, all data: which library an instrumentor entry point covers, which modules' import
# turns that library's instrumentor on, and which instrumentor is chosen where several are
# installed for one library. Exactly one instrumentor per library is turned on, once, so one LLM
# call is not recorded twice by two instrumentors of the same SDK. (A framework and the SDK under
# it, such as LangChain over OpenAI, are two libraries: both are instrumented, and the `steps`
# view counts the nested LLM spans of one call once.)

LIBRARY_OF = {
    "openai_v2": "openai", "llamaindex": "llama_index",
}  # fmt: skip
"""The library an instrumentor entry point covers, where it is not the entry point's own name.
(OpenInference and the official OpenAI instrumentor both name their entry point `openai`.)"""

TRIGGERS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    # LangChain instrumentors patch langchain_core, which LangGraph programs import without `langchain`
    "langchain": ("langchain_core", "langchain", "langgraph", "langchain_openai", "langchain_anthropic",
                  "langchain_community"),
    "openai_agents": ("agents",),
    "pydantic_ai": ("pydantic_ai",),
    "litellm": ("litellm",),
    "google_genai": ("google.genai",),
    "llama_index": ("llama_index",),
    "bedrock": ("boto3", "botocore"),
    "botocore": ("botocore",),
    "watsonx": ("ibm_watsonx_ai",),
    "alephalpha": ("aleph_alpha_client",),
    "crewai": ("crewai",),
    "dspy": ("dspy",),
    "smolagents": ("smolagents",),
    "autogen": ("autogen_agentchat", "autogen_core", "autogen"),
    "agno": ("agno",),
    "haystack": ("haystack",),
    "instructor": ("instructor",),
    "mcp": ("mcp",),
}  # fmt: skip
"""Top-level modules whose import (whichever comes first) turns a library's instrumentor on; a
library not listed here is turned on by the import of the module named like it."""

PREFERENCE: dict[str, tuple[str, ...]] = {
    "openai": ("openinference-instrumentation-openai", "opentelemetry-instrumentation-openai-v2",
               "opentelemetry-instrumentation-openai"),
    "anthropic": ("openinference-instrumentation-anthropic", "opentelemetry-instrumentation-anthropic"),
    "langchain": ("openinference-instrumentation-langchain", "opentelemetry-instrumentation-langchain"),
    "openai_agents": ("openinference-instrumentation-openai-agents",
                      "opentelemetry-instrumentation-openai-agents-v2",
                      "opentelemetry-instrumentation-openai-agents"),
    "pydantic_ai": ("pydantic-ai-slim",),
    "litellm": ("openinference-instrumentation-litellm", "opentelemetry-instrumentation-litellm"),
}  # fmt: skip
"""Where several instrumentors of one library are installed, the distributions in the order they
are preferred: the first that turns on is the only one. OpenInference comes first (it records the
messages, tool calls and token counts as span attributes, which `steps` shows), then the official
OpenTelemetry instrumentor, then OpenLLMetry's. Instrumentors not listed come after, OpenInference
ones first, then by distribution name. `pydantic-ai-slim` is pydantic-ai's own instrumentation
(`Agent.instrument_all()`, GenAI semantic conventions), turned on by the bootstrap itself.
(LiteLLM's own `otel` callback needs code in the program; the OpenAI SDK that LiteLLM calls is a
library of its own, instrumented under it.)"""


class _PydanticAIInstrumentor:
    """pydantic-ai's built-in OpenTelemetry instrumentation (GenAI semantic conventions, spans on
    the global TracerProvider), for every agent that does not set its own. A program that calls
    `Agent.instrument_all()` (or Logfire's `instrument_pydantic_ai()`) later overrides it."""

    def instrument(self) -> None:
        from pydantic_ai import Agent

        if getattr(Agent, "_instrument_default", False) is False:
            Agent.instrument_all(True)


@dataclasses.dataclass(frozen=True)
class _Instrumentor:
    name: str
    distribution: str
    load: Any  # () -> an object with .instrument()


BUILT_IN = {
    "pydantic_ai": (_Instrumentor("pydantic_ai", "pydantic-ai-slim", lambda: _PydanticAIInstrumentor),),
}
"""Instrumentation the bootstrap turns on itself, for libraries that carry their own."""


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _rank(library: str, instrumentor: _Instrumentor) -> tuple[int, int, str]:
    preferred = [_normalise(d) for d in PREFERENCE.get(library, ())]
    dist = _normalise(instrumentor.distribution)
    if dist in preferred:
        return (0, preferred.index(dist), dist)
    return (1, 0 if dist.startswith("openinference-") else 1, dist)


def genai_instrumentors() -> dict[str, list[_Instrumentor]]:
    """The installed GenAI instrumentors by library, each library's in the order they are tried.
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS (entry point or library names, comma-separated, as
    `opentelemetry-instrument` reads it) leaves some out: `pydantic_ai` the built-in one."""
    disabled = {
        n.strip() for n in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if n.strip()
    }
    found: dict[str, list[_Instrumentor]] = {k: list(v) for k, v in BUILT_IN.items()}
    for entry in metadata.entry_points(group="opentelemetry_instrumentor"):
        if entry.name not in GENAI_INSTRUMENTORS or entry.name in disabled:
            continue
        dist = entry.dist.name if entry.dist is not None else entry.value.split(":", 1)[0]
        library = LIBRARY_OF.get(entry.name, entry.name)
        found.setdefault(library, []).append(_Instrumentor(entry.name, dist, entry.load))
    for library in [lib for lib in found if lib in disabled]:
        del found[library]
    return {library: sorted(found[library], key=lambda i: _rank(library, i)) for library in found}


def _instrument_genai_on_import() -> None:
    """Register the installed GenAI instrumentors, each library's to be turned on when the program
    imports one of its trigger modules (importing every SDK up front would cost seconds per
    process)."""
    candidates = genai_instrumentors()
    if candidates:
        finder = _InstrumentOnImport(candidates)
        sys.meta_path.insert(0, finder)
        for module in [m for m in finder.triggers if m in sys.modules]:
            finder.instrument(module)


class _InstrumentOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, candidates: dict[str, list[_Instrumentor]]) -> None:
        self.candidates = candidates
        self.triggers: dict[str, list[str]] = {}
        for library in candidates:
            for module in TRIGGERS.get(library, (library,)):
                self.triggers.setdefault(module, []).append(library)
        self._busy = False

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.triggers or self._busy:
            return None
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy = False
        if spec is None:
            return None
        loader = spec.loader
        if loader is None and spec.submodule_search_locations is not None:
            # A namespace package (langgraph is one): the loader the import system would give it
            loader = importlib.machinery.NamespaceLoader.__new__(importlib.machinery.NamespaceLoader)
            loader._path = spec.submodule_search_locations  # type: ignore[attr-defined]
        if loader is None:
            return spec
        spec.loader = _ThenInstrument(loader, lambda: self.instrument(fullname))
        return spec

    def instrument(self, module: str) -> None:
        """Turn on, once, the instrumentor of every library this module triggers: the first of each
        library's candidates that turns on (the rest are never loaded). Taking a library's
        candidates out of the table is atomic, so two threads importing it never both do it."""
        for library in self.triggers.pop(module, []):
            for instrumentor in self.candidates.pop(library, []):
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


class _ThenInstrument(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, after: Any) -> None:
        self.inner = inner
        self.after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        self.after()

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, is_package, ...
        return getattr(self.inner, name)


# -- subprocesses -------------------------------------------------------------------------------
_SPAN = "_agenttrace_span"


def _argv(args: Any, shell: bool) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
        return ["/bin/sh", "-c", text] if shell else [text]
    return [os.fsdecode(a) for a in args]


def _trace_subprocesses() -> None:
    """Wrap subprocess.Popen: a `process` span from spawn to the moment its exit status is read."""
    popen = subprocess.Popen
    if getattr(popen, "_agenttrace_wrapped", False):
        return
    hook = next((n for n in ("_handle_exitstatus", "_handle_exitcode") if hasattr(popen, n)), None)
    if hook is None:  # an interpreter whose Popen differs: the watcher still sees its processes
        return
    original_init = popen.__init__
    original_handle = getattr(popen, hook)

    def __init__(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        span: Span | None = None
        if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
            original_init(self, args, *rest, **kwargs)
            return
        try:
            argv = _argv(args, bool(kwargs.get("shell")))
            executable = os.path.basename(os.fsdecode(kwargs.get("executable") or argv[0])) if argv else "?"
            span = trace.get_tracer("agenttrace").start_span(
                f"process {executable}",
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
            TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
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


__all__ = ["install"]

if __name__ == "__main__":  # pragma: no cover - for a manual check: python -m agenttrace.supervise.bootstrap
    print(install(), file=sys.stderr)
