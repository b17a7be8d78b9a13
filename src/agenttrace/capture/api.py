"""The Python API: `run`, `step`, `tool`, `tool_call` and `llm`.

import agenttrace

with agenttrace.run("triage-bot") as run:
    with agenttrace.step("plan"):
        ...
    agenttrace.llm("gpt-4o", input_messages=msgs, output_messages=[reply],
                   finish_reason="stop", input_tokens=812, output_tokens=64, start_time=t0)
    search(query="flaky tests")          # a function decorated with @agenttrace.tool
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import config, constants
from ..errors import ConfigError
from ..ids import is_safe_run_id, new_run_id
from . import active_runs, environment
from .messages import to_genai_list
from .sink import sink_for
from .tracing import configure, current_store, is_configured
from .tracing import tracer as _tracer

if TYPE_CHECKING:
    import os

    from ..objective.spec import Objective

P = ParamSpec("P")
R = TypeVar("R")


def _json(value: Any, limit: int | None = None) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr, ensure_ascii=False)
    limit = limit or config.load().max_attribute_bytes
    if len(text.encode("utf-8", "surrogatepass")) > limit:
        text = (
            text.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")
            + constants.TRUNCATED_SUFFIX
        )
    return text


def _record_error(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute(constants.ERROR_TYPE, type(exc).__qualname__)


@dataclass
class Run:
    """A run in progress. `id` is its run id; `span` its root span."""

    id: str
    name: str
    span: Span
    store: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def trace_id(self) -> str:
        return f"{self.span.get_span_context().trace_id:032x}"


@contextlib.contextmanager
def run(
    name: str = "agent run",
    *,
    run_id: str | None = None,
    store: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    objective: str | os.PathLike[str] | Mapping[str, Any] | Objective | None = None,
) -> Iterator[Run]:
    """Record everything inside the block as one run, under a root span named `name`.

    `objective` (an objective TOML file, the same as a mapping, or an `Objective`) says what done
    means; it is validated before the block runs (ConfigError naming the key), stored with the
    run, and verified when the block ends (deliverables, criteria, files cited by claims), for
    `agenttrace audit` to judge.

    The run gets a new id (or `run_id`) and a new trace, and its root span carries a snapshot of the
    environment (argv, cwd, git commit and dirty flag, Python and package versions, host; the
    names but never the values of environment variables). An exception marks the run failed and
    propagates. On exit the run's records are flushed to the store before the block returns.
    """
    if run_id is not None and not is_safe_run_id(run_id):
        raise ConfigError(f"run id {run_id!r} must be 1-128 letters, digits, '.', '_', ':' or '-'")
    if store is not None or not is_configured():
        configure(store)
    supervised = _supervised_run() if run_id is None else None
    goal = _objective(objective)
    if goal is not None and supervised:
        raise ConfigError(
            "this process runs under `agenttrace run`, whose run it joins: give the objective to "
            "`agenttrace run --objective FILE` instead"
        )
    rid = run_id or (supervised[0] if supervised else new_run_id())
    attrs: dict[str, Any] = {
        constants.RUN_ID: rid,
        constants.SPAN_TYPE: "run",
        constants.RUN_NAME: name,
        **environment.snapshot(),
        **(attributes or {}),
    }
    if goal is not None:
        attrs[constants.OBJECTIVE] = goal.as_json()
    if supervised:  # under `agenttrace run`: this block is the agent's part of that run
        attrs[constants.SPAN_TYPE], attrs[constants.STEP_KIND] = "step", "agent"
    tracer = _tracer()
    # A run is its own trace: start from an empty context, not from whatever span is current.
    context = supervised[1] if supervised else otel_context.Context()
    root = tracer.start_span(name, context=context, kind=SpanKind.INTERNAL, attributes=attrs)
    active_runs.register(root.get_span_context().trace_id, rid)
    store_dir = current_store() or str(config.store_path(store))
    settings = config.load(store_dir)
    sink = sink_for(settings.store, settings.flush_interval)
    dropped_before = sink.dropped_spans
    handle = Run(id=rid, name=name, span=root, store=store_dir, attributes=attrs)
    cwd = Path.cwd()
    before = _files_now(cwd, settings.store) if goal is not None else None
    started = time.time_ns()
    token = otel_context.attach(trace.set_span_in_context(root))
    cancelled = False
    try:
        yield handle
    except BaseException as exc:
        cancelled = isinstance(exc, KeyboardInterrupt)
        _record_error(root, exc)
        root.set_attribute(constants.RUN_STATE, "cancelled" if cancelled else "failed")
        raise
    finally:
        otel_context.detach(token)
        try:
            if not supervised:
                _verify_in_process(root, rid, settings, cwd, goal, before, started, cancelled)
        finally:  # an interrupt during verification still ends the run
            if sink.dropped_spans > dropped_before:  # the batch processor's queue overflowed
                root.set_attribute(constants.SPANS_DROPPED, sink.dropped_spans - dropped_before)
            root.end()
            _finish(rid, store_dir)


def _objective(value: Any) -> Objective | None:
    from ..objective.spec import Objective, load_objective, parse_objective

    if value is None or isinstance(value, Objective):
        return value
    if isinstance(value, Mapping):
        return parse_objective(value)
    return load_objective(Path(value))


def _files_now(cwd: Path, store: Path) -> dict[str, tuple[int, int]]:
    from ..supervise import artifacts

    return artifacts.snapshot(cwd, [store])


def _verify_in_process(
    root: Span,
    run_id: str,
    settings: config.Settings,
    cwd: Path,
    goal: Objective | None,
    before: dict[str, tuple[int, int]] | None,
    started: int,
    cancelled: bool,
) -> None:
    """The verification phase of an `agenttrace.run()` block (what `agenttrace run` does after
    the agent exits). Never raises: a failure is recorded on the run."""
    from ..objective import claims
    from ..objective.verification import Verifier
    from ..supervise import artifacts

    cited = claims.claimed_files(root.get_span_context().trace_id)
    if goal is None and not cited:
        return
    try:
        root.set_attribute(constants.AGENT_DURATION, round((time.time_ns() - started) / 1e9, 3))
        if before is not None:
            for artifact in artifacts.changes(cwd, before, [settings.store]):
                root.add_event("agenttrace.artifact", artifacts.event(artifact))
        verifier = Verifier.for_run(root, run_id, cwd, settings, _tracer())
        verifier.verify(goal, cited, skip_commands="the run was cancelled" if cancelled else None)
    except Exception as exc:  # telemetry never breaks the agent
        root.set_attribute("agenttrace.verify.error", f"{type(exc).__name__}: {exc}")


def _supervised_run() -> tuple[str, otel_context.Context] | None:
    """The run of `agenttrace run` this process belongs to, and the context to join it in."""
    import os

    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    run_id = os.environ.get("AGENTTRACE_RUN_ID")
    traceparent = os.environ.get("TRACEPARENT")
    if not run_id or not is_safe_run_id(run_id) or not traceparent:
        return None
    if trace.get_current_span().get_span_context().is_valid:
        return run_id, otel_context.get_current()
    return run_id, TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def _finish(run_id: str, store: str, settings: config.Settings | None = None) -> None:
    """Make a finished run durable: flush every processor, then seal the run's spool into Parquet.
    `settings`: the command's, resolved once by the caller (else resolved here for `store`)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush()
    settings = settings if settings is not None else config.load(store)
    sink_for(settings.store, settings.flush_interval).seal_run(run_id)


@contextlib.contextmanager
def step(
    name: str, *, kind: str | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """A named step of the agent's work (`kind`: llm, tool, agent, verify or other). Exceptions
    are recorded on the step and propagate."""
    attrs = {constants.SPAN_TYPE: "step", constants.STEP_KIND: kind or "other", **(attributes or {})}
    with _tracer().start_as_current_span(
        name, attributes=attrs, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as exc:
            _record_error(span, exc)
            raise


class ToolCall:
    """An open tool call: set `result` (or call `set_result`) before the block ends."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def set_result(self, result: Any) -> None:
        self.span.set_attribute(constants.GEN_AI_TOOL_CALL_RESULT, _json(result))


@contextlib.contextmanager
def tool_call(
    name: str,
    *,
    call_id: str | None = None,
    arguments: Any = None,
    description: str | None = None,
) -> Iterator[ToolCall]:
    """A GenAI `execute_tool` span for one tool call. `call_id` is the id the model gave the call
    (it links the call to the LLM step that asked for it). Exceptions are recorded and propagate."""
    attrs: dict[str, Any] = {
        constants.GEN_AI_OPERATION: "execute_tool",
        constants.GEN_AI_TOOL_NAME: name,
        constants.GEN_AI_TOOL_TYPE: "function",
    }
    if call_id:
        attrs[constants.GEN_AI_TOOL_CALL_ID] = call_id
    if description:
        attrs[constants.GEN_AI_TOOL_DESCRIPTION] = description
    if arguments is not None:
        attrs[constants.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(arguments)
    with _tracer().start_as_current_span(
        f"execute_tool {name}", attributes=attrs, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield ToolCall(span)
        except BaseException as exc:
            _record_error(span, exc)
            raise


@overload
def tool(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def tool(
    func: Callable[P, R] | None = None, /, *, name: str | None = None, description: str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or async) so that every call is an `execute_tool` span with its
    arguments and result. An exception is recorded as an error on the span and re-raised."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        tool_name = name or fn.__name__
        doc = description or (inspect.getdoc(fn) or "").split("\n", 1)[0] or None
        signature = inspect.signature(fn)

        def bound_arguments(args: Any, kwargs: Any) -> dict[str, Any]:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return {"args": list(args), "kwargs": dict(kwargs)}
            bound.apply_defaults()
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with tool_call(tool_name, arguments=bound_arguments(args, kwargs), description=doc) as call:
                    result = await fn(*args, **kwargs)  # type: ignore[misc]
                    call.set_result(result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with tool_call(tool_name, arguments=bound_arguments(args, kwargs), description=doc) as call:
                result = fn(*args, **kwargs)
                call.set_result(result)
                return result

        return wrapper

    return decorate(func) if func is not None else decorate


def llm(
    model: str,
    *,
    input_messages: Sequence[Mapping[str, Any] | str] | None = None,
    output_messages: Sequence[Mapping[str, Any] | str] | None = None,
    finish_reason: str | Sequence[str] | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    provider: str | None = None,
    operation: str = "chat",
    response_id: str | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    error: BaseException | str | None = None,
    cost_usd: float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> str:
    """Record one LLM call made without an instrumentor, after it returned. Returns its span id.

    Messages may be in GenAI shape (`{"role", "parts"}`) or OpenAI chat shape; tool calls in the
    output keep their ids. Times are nanoseconds since the epoch (`time.time_ns()`); pass
    `start_time` taken before the call for a true duration.
    """
    attrs: dict[str, Any] = {constants.GEN_AI_OPERATION: operation, constants.GEN_AI_REQUEST_MODEL: model}
    if provider:
        attrs[constants.GEN_AI_PROVIDER] = provider
    if response_id:
        attrs[constants.GEN_AI_RESPONSE_ID] = response_id
    if finish_reason is not None:
        reasons = [finish_reason] if isinstance(finish_reason, str) else list(finish_reason)
        attrs[constants.GEN_AI_FINISH_REASONS] = reasons
    if input_tokens is not None:
        attrs[constants.GEN_AI_INPUT_TOKENS] = int(input_tokens)
    if output_tokens is not None:
        attrs[constants.GEN_AI_OUTPUT_TOKENS] = int(output_tokens)
    if cost_usd is not None:
        attrs[constants.LLM_COST_USD] = float(cost_usd)
    for key, messages in (
        (constants.GEN_AI_INPUT_MESSAGES, input_messages),
        (constants.GEN_AI_OUTPUT_MESSAGES, output_messages),
    ):
        normalised = to_genai_list(messages)
        if normalised is not None:
            attrs[key] = _json(normalised)
    attrs.update(attributes or {})
    end = end_time or time.time_ns()
    span = _tracer().start_span(
        f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=start_time or end
    )
    if error is not None:
        if isinstance(error, BaseException):
            _record_error(span, error)
        else:
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attribute(constants.ERROR_TYPE, error)
    span.end(end_time=end)
    return f"{span.get_span_context().span_id:016x}"
